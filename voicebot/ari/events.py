"""ARI events: typed parsing of the WebSocket JSON, and a self-healing event stream.

The stream is the bot's lifeline to Asterisk, so it never gives up on its own: an unreachable
Asterisk, a dropped socket or a garbage frame only cost a log line and a retry. The one
exception is a 401, because retrying with the same wrong password can never succeed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, TypeAlias

import aiohttp

from ..config import AriConfig
from ..errors import AriAuthError
from .client import ari_base_url, auth_error, basic_auth_header, redact
from .models import Channel

log = logging.getLogger(__name__)


# --- event types ------------------------------------------------------------------------


@dataclass(frozen=True)
class StasisStart:
    type: ClassVar[str] = "StasisStart"
    application: str
    timestamp: str
    channel: Channel
    args: list[str] = field(default_factory=list)
    # Set when the channel replaced another one already in the app (masquerade/transfer).
    replace_channel: Channel | None = None


@dataclass(frozen=True)
class StasisEnd:
    type: ClassVar[str] = "StasisEnd"
    application: str
    timestamp: str
    channel: Channel


@dataclass(frozen=True)
class ChannelHangupRequest:
    type: ClassVar[str] = "ChannelHangupRequest"
    application: str
    timestamp: str
    channel: Channel
    # Q.850 cause; Asterisk omits it for some soft hangups.
    cause: int | None = None


@dataclass(frozen=True)
class ChannelDestroyed:
    type: ClassVar[str] = "ChannelDestroyed"
    application: str
    timestamp: str
    channel: Channel
    cause: int
    cause_txt: str


@dataclass(frozen=True)
class ChannelDtmfReceived:
    type: ClassVar[str] = "ChannelDtmfReceived"
    application: str
    timestamp: str
    channel: Channel
    digit: str
    duration_ms: int


@dataclass(frozen=True)
class ChannelStateChange:
    type: ClassVar[str] = "ChannelStateChange"
    application: str
    timestamp: str
    channel: Channel


@dataclass(frozen=True)
class ChannelVarset:
    type: ClassVar[str] = "ChannelVarset"
    application: str
    timestamp: str
    # None for global variables.
    channel: Channel | None
    variable: str
    value: str


@dataclass(frozen=True)
class Dial:
    """Progress of a dial, an originated call's included: ``peer`` is the channel dialled,
    ``dialstatus`` "" when it starts, then RINGING, ANSWER, BUSY, NOANSWER, CONGESTION..."""

    type: ClassVar[str] = "Dial"
    application: str
    timestamp: str
    peer: Channel
    dialstatus: str


@dataclass(frozen=True)
class UnknownEvent:
    """Any event voicebot does not model (yet); kept whole so callers can still inspect it."""

    type: str
    application: str
    timestamp: str
    raw: dict[str, Any] = field(repr=False)


Event: TypeAlias = (
    StasisStart
    | StasisEnd
    | ChannelHangupRequest
    | ChannelDestroyed
    | ChannelDtmfReceived
    | ChannelStateChange
    | ChannelVarset
    | Dial
    | UnknownEvent
)


# --- parsing ----------------------------------------------------------------------------


class _Fields:
    """Reads one event's keys; every failure names the event type and the key."""

    def __init__(self, event_type: str, data: Mapping[str, Any]) -> None:
        self.event_type = event_type
        self.data = data

    def fail(self, key: str, problem: str) -> ValueError:
        return ValueError(f"ARI event {self.event_type}: {problem} {key!r}")

    def required(self, key: str) -> Any:
        if key not in self.data or self.data[key] is None:
            raise self.fail(key, "missing key")
        return self.data[key]

    def string(self, key: str) -> str:
        value = self.required(key)
        if not isinstance(value, str):
            raise self.fail(key, "expected a string for")
        return value

    def integer(self, key: str) -> int:
        value = self.required(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, "expected an integer for")
        return value

    def optional_integer(self, key: str) -> int | None:
        return None if self.data.get(key) is None else self.integer(key)

    def channel(self, key: str = "channel") -> Channel:
        try:
            return Channel.from_json(self.required(key))
        except ValueError as exc:
            if str(exc).startswith("ARI event"):
                raise
            raise ValueError(f"ARI event {self.event_type}: bad {key!r}: {exc}") from None

    def optional_channel(self, key: str = "channel") -> Channel | None:
        return None if self.data.get(key) is None else self.channel(key)


def parse_event(data: Any) -> Event:
    """Turn one decoded WebSocket message into a typed event.

    Raises ValueError (naming the event type and the offending key) on malformed input;
    unknown but well-formed events become ``UnknownEvent``.
    """
    if not isinstance(data, Mapping):
        raise ValueError(f"ARI event: expected a JSON object, got {type(data).__name__}")
    event_type = data.get("type")
    if not isinstance(event_type, str) or not event_type:
        raise ValueError("ARI event: missing key 'type'")
    f = _Fields(event_type, data)
    # Asterisk always sends both; tolerate their absence since nothing depends on them.
    application = str(data.get("application") or "")
    timestamp = str(data.get("timestamp") or "")

    if event_type == "StasisStart":
        args = data.get("args") or []
        if not isinstance(args, list):
            raise f.fail("args", "expected a list for")
        return StasisStart(
            application,
            timestamp,
            f.channel(),
            [str(a) for a in args],
            f.optional_channel("replace_channel"),
        )
    if event_type == "StasisEnd":
        return StasisEnd(application, timestamp, f.channel())
    if event_type == "ChannelHangupRequest":
        return ChannelHangupRequest(
            application, timestamp, f.channel(), f.optional_integer("cause")
        )
    if event_type == "ChannelDestroyed":
        return ChannelDestroyed(
            application, timestamp, f.channel(), f.integer("cause"), f.string("cause_txt")
        )
    if event_type == "ChannelDtmfReceived":
        return ChannelDtmfReceived(
            application, timestamp, f.channel(), f.string("digit"), f.integer("duration_ms")
        )
    if event_type == "ChannelStateChange":
        return ChannelStateChange(application, timestamp, f.channel())
    if event_type == "ChannelVarset":
        value = f.required("value")
        return ChannelVarset(
            application, timestamp, f.optional_channel(), f.string("variable"), str(value)
        )
    if event_type == "Dial":
        status = data.get("dialstatus") or ""
        if not isinstance(status, str):
            raise f.fail("dialstatus", "expected a string for")
        return Dial(application, timestamp, f.channel("peer"), status)
    return UnknownEvent(event_type, application, timestamp, dict(data))


def decode_frame(text: str) -> Any:
    """A WebSocket frame's JSON. ValueError for anything that is not plain JSON: a syntax
    error, ``Infinity`` or ``NaN`` (Python's json would take them), or nesting too deep."""
    try:
        return json.loads(text, parse_constant=_not_json)
    except RecursionError:
        raise ValueError("JSON nested too deep") from None


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON value")


def event_from_text(text: str) -> Event | None:
    """One WebSocket text frame as an event; None (and a log line) when it is malformed."""
    try:
        data = decode_frame(text)
    except ValueError as exc:
        _skip(text, exc)
        return None
    return event_or_none(data, text)


def event_or_none(data: Any, text: str) -> Event | None:
    """``parse_event(data)``, or None (and a log line) when it is malformed.

    One bad frame must not take every call down with it. Its ``text`` is logged only at DEBUG:
    events carry callers' numbers and channel variables.
    """
    try:
        return parse_event(data)
    except (ValueError, TypeError, ArithmeticError, RecursionError) as exc:
        _skip(text, exc)
        return None


def _skip(text: str, exc: Exception) -> None:
    log.error("Skipping malformed ARI event (%d characters): %s", len(text), exc)
    log.debug("The malformed ARI event: %.500s", text)


# --- the stream -------------------------------------------------------------------------


def _format_delay(seconds: float) -> str:
    # "2.0 s" for humans; sub-100 ms delays only occur in tests, where "0.0 s" would mislead.
    return f"{seconds:.1f}" if seconds >= 0.1 else f"{seconds:.3f}"


def ari_events_url(config: AriConfig) -> str:
    """The events WebSocket: ``ws://`` for an ``http://`` ARI URL, ``wss://`` (TLS, checked
    like https) for ``https://``."""
    base = ari_base_url(config)
    for http, ws in (("https://", "wss://"), ("http://", "ws://")):
        if base.startswith(http):
            return ws + base.removeprefix(http) + "/events"
    return base + "/events"  # Config.validate admits only http(s); keep anything else as is


def _reason(exc: BaseException) -> str:
    """Why a connection attempt failed, in words that never carry the request URL."""
    if isinstance(exc, aiohttp.ClientConnectorError) and exc.os_error is not None:
        return exc.os_error.strerror or str(exc.os_error)
    if isinstance(exc, aiohttp.WSServerHandshakeError):
        return f"WebSocket upgrade refused with HTTP {exc.status}"
    if isinstance(exc, aiohttp.ClientResponseError):  # its str() ends with the URL
        return f"HTTP {exc.status} {exc.message}".strip()
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__


OnConnected = Callable[[], Awaitable[None]]


class EventStream:
    """The ARI events WebSocket as an endless async iterator of typed events.

    ``async for event in stream.events(): ...`` connects, yields events, reconnects with
    exponential back-off when Asterisk is unreachable or the socket drops, and ends only after
    ``close()``. ``on_connected`` runs after every (re)connect and before that connection's
    first event is yielded: events that arrived meanwhile are queued, not lost.
    """

    def __init__(
        self,
        config: AriConfig,
        *,
        session: aiohttp.ClientSession | None = None,
        on_connected: OnConnected | None = None,
        auth: Literal["basic", "api_key"] = "basic",
        heartbeat_s: float | None = 20.0,
        random_fn: Callable[[], float] = random.random,
    ) -> None:
        self.config = config
        self.on_connected = on_connected
        self.base_url = ari_base_url(config)
        self.url = ari_events_url(config)
        self._session = session
        self._owns_session = session is None
        self._auth_mode = auth
        self._heartbeat_s = heartbeat_s
        self._random = random_fn
        self._closed = asyncio.Event()
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self.connect_count = 0

    @property
    def connected(self) -> bool:
        return self._ws is not None and not self._ws.closed

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    async def close(self) -> None:
        """Stop the stream: the ``events()`` loop ends at its next step."""
        self._closed.set()
        ws = self._ws
        if ws is not None and not ws.closed:
            await ws.close()

    def _ws_request(self) -> tuple[dict[str, str], dict[str, str]]:
        """The query and headers of the WebSocket request.

        In api_key mode the password travels in the URL: that URL is never logged or put in an
        error text (see ``_attempt``), and aiohttp's texts that include it go through redact().
        """
        params = {"app": self.config.app, "subscribeAll": "false"}
        if self._auth_mode == "api_key":
            params["api_key"] = f"{self.config.user}:{self.config.password}"
            return params, {}
        return params, basic_auth_header(self.config)

    def _next_delay(self, delay: float) -> tuple[float, float]:
        """Return (sleep now, base delay for next time)."""
        # Jitter downwards only (80-100 %) so the configured maximum is a real ceiling and
        # several bots restarted together do not hammer Asterisk in lock-step.
        sleep = delay * (1.0 - 0.2 * self._random())
        return sleep, min(delay * 2.0, self.config.retry_max_s)

    async def _connect(
        self, session: aiohttp.ClientSession
    ) -> aiohttp.ClientWebSocketResponse | None:
        """One connection attempt; None when close() was called meanwhile."""
        params, headers = self._ws_request()
        attempt = asyncio.ensure_future(
            session.ws_connect(
                self.url,
                params=params,
                headers=headers,
                heartbeat=self._heartbeat_s,
                timeout=aiohttp.ClientWSTimeout(ws_close=self.config.request_timeout_s),
            )
        )
        closer = asyncio.ensure_future(self._closed.wait())
        try:
            await asyncio.wait(
                {attempt, closer},
                timeout=self.config.request_timeout_s,
                return_when=asyncio.FIRST_COMPLETED,
            )
        except asyncio.CancelledError:
            attempt.cancel()
            raise
        finally:
            closer.cancel()
        if not attempt.done():
            attempt.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await attempt
            if self.closed:
                return None
            raise TimeoutError
        ws = attempt.result()  # re-raises the connection error, if any
        if self.closed:
            await ws.close()
            return None
        return ws

    async def _attempt(
        self, session: aiohttp.ClientSession
    ) -> aiohttp.ClientWebSocketResponse | str | None:
        """One connection attempt: the socket, why it failed (text safe to log), or None when
        close() was called meanwhile. Raises ``AriAuthError`` on a 401."""
        try:
            return await self._connect(session)
        except aiohttp.WSServerHandshakeError as exc:
            if exc.status != 401:
                return redact(_reason(exc), self.config)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            return redact(_reason(exc), self.config)
        # Raised here, out of the except block, so that aiohttp's error (whose text holds the
        # URL, and the password in api_key mode) is not attached to it as its context.
        raise auth_error(self.config, "GET", "/events", "Authentication required")

    async def _sleep_unless_closed(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
            await asyncio.wait_for(self._closed.wait(), timeout=seconds)

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> AsyncIterator[Event]:
        while True:
            msg = await ws.receive()
            if msg.type == aiohttp.WSMsgType.TEXT:
                event = event_from_text(msg.data)
                if event is not None:
                    yield event
            elif msg.type in (
                aiohttp.WSMsgType.CLOSE,
                aiohttp.WSMsgType.CLOSING,
                aiohttp.WSMsgType.CLOSED,
                aiohttp.WSMsgType.ERROR,
            ):
                return
            # BINARY/PING/PONG: nothing ARI sends us; ignore.

    async def events(self) -> AsyncIterator[Event]:
        session = self._session
        if session is None:
            session = aiohttp.ClientSession()
        delay = self.config.retry_initial_s
        try:
            while not self.closed:
                outcome = await self._attempt(session)
                if outcome is None:
                    break
                if isinstance(outcome, str):
                    reason = outcome
                else:
                    ws = outcome
                    self._ws = ws
                    self.connect_count += 1
                    delay = self.config.retry_initial_s
                    log.info(
                        "Connected to Asterisk ARI events at %s (app %r)",
                        self.url,
                        self.config.app,
                    )
                    try:
                        await self._run_on_connected()
                        async for event in self._read(ws):
                            yield event
                    finally:
                        self._ws = None
                        await ws.close()
                    if self.closed:
                        break
                    reason = "connection lost"
                    if ws.close_code is not None:
                        reason = f"connection closed by Asterisk, code {ws.close_code}"
                sleep, delay = self._next_delay(delay)
                log.warning(
                    "Asterisk ARI not reachable at %s (%s); retrying in %s s",
                    self.config.url,
                    reason,
                    _format_delay(sleep),
                )
                await self._sleep_unless_closed(sleep)
        finally:
            if self._owns_session:
                await session.close()

    async def _run_on_connected(self) -> None:
        if self.on_connected is None:
            return
        try:
            await self.on_connected()
        except AriAuthError:
            raise
        except Exception:
            # The hook reconciles state; a failure there must not cut the event feed.
            log.exception("ARI on_connected hook failed; continuing to read events")
