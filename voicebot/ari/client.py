"""Async client for the Asterisk REST Interface (the request/response half of ARI).

Every failure becomes one of the typed ``AriError`` subclasses so callers can tell "Asterisk is
gone" (retry later) from "wrong password" (stop) from "the channel already hung up" (ignore).
"""

from __future__ import annotations

import base64
import ipaddress
import json as jsonlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol
from urllib.parse import quote

import aiohttp
from yarl import URL

from ..config import AriConfig
from ..errors import AriAuthError, AriConnectionError, AriHttpError, AriNotFoundError
from .models import Bridge, Channel

log = logging.getLogger(__name__)

ParamValue = str | int | float | bool | Sequence[str] | None


def ari_base_url(config: AriConfig) -> str:
    """``http://host:8088`` → ``http://host:8088/ari``; a URL already ending in /ari is kept."""
    base = config.url.rstrip("/")
    return base if base.endswith("/ari") else base + "/ari"


def auth_error(config: AriConfig, method: str, path: str, message: str) -> AriAuthError:
    """A 401 is nearly always a configuration mistake, so the text names the keys to fix."""
    err = AriAuthError(method, path, 401, message)
    # AriHttpError formats a generic text; replace it with one an operator can act on.
    err.args = (f"ARI rejected user {config.user!r}: wrong ari.user/ari.password (HTTP 401)",)
    return err


def redact(text: str, config: AriConfig) -> str:
    """``text`` with the ARI password in it, as typed or as encoded in a URL query, made ***.

    aiohttp puts the request URL into some exception texts, and in api_key mode that URL holds
    ``user:password``; whatever of such a text is logged or raised goes through here first.
    """
    if not config.password:
        return text
    encoded = URL("http://ari/").with_query(api_key=config.password).raw_query_string
    for form in {encoded.partition("=")[2], quote(config.password, safe=""), config.password}:
        text = text.replace(form, "***")
    return text


def plaintext_warning(config: AriConfig) -> str | None:
    """Why ``config.url`` is unsafe, when it sends the password unencrypted off this machine."""
    url = URL(config.url)
    if url.scheme != "http" or is_loopback(url.host or ""):
        return None
    return (
        f"ARI at {url.host} is reached over plain http://: the ARI password and every call's "
        f"events cross the network unencrypted; use https:// (Asterisk's tlsenable in http.conf) "
        "or keep Asterisk on this machine"
    )


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address (127.0.0.0/8, ::1): traffic stays on this machine."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name: it may resolve anywhere
        return False


def basic_auth_header(config: AriConfig) -> dict[str, str]:
    """Basic auth as a plain header: aiohttp's ``auth=`` parameter is deprecated in 3.14."""
    token = base64.b64encode(f"{config.user}:{config.password}".encode()).decode("ascii")
    return {"Authorization": f"Basic {token}"}


def _seg(value: str) -> str:
    # Ids go into the path; quote everything so an odd id cannot change the route.
    return quote(value, safe="")


def _encode_params(params: Mapping[str, ParamValue] | None) -> dict[str, str] | None:
    """Drop unset values and render the rest the way ARI parses them (lists comma-joined)."""
    if not params:
        return None
    out: dict[str, str] = {}
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif isinstance(value, str):
            out[key] = value
        elif isinstance(value, int | float):
            out[key] = str(value)
        else:
            out[key] = ",".join(value)
    return out or None


def _ids(value: str | Sequence[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


@dataclass(frozen=True)
class RestReply:
    """What Asterisk answered, before any status or JSON interpretation."""

    status: int
    content_type: str  # without parameters such as charset
    text: str  # the decoded body; "" when empty


class RestTransport(Protocol):
    """How one ARI request reaches Asterisk: plain HTTP, or an ARI WebSocket (wsrest)."""

    async def exchange(
        self, method: str, path: str, params: dict[str, str] | None, json: Any
    ) -> RestReply:
        """Send ``method path`` (path below /ari, leading "/") and return Asterisk's reply.

        Raises ``AriConnectionError`` when no reply comes; HTTP error statuses are returned.
        """
        ...

    async def close(self) -> None: ...


class HttpTransport:
    """ARI over HTTP with one aiohttp session.

    A session passed in is borrowed (not closed by us); otherwise one is created on first use.
    """

    def __init__(self, config: AriConfig, session: aiohttp.ClientSession | None = None) -> None:
        self.config = config
        self.base_url = ari_base_url(config)
        self._session = session
        self._owns_session = session is None
        self._headers = basic_auth_header(config)
        self._timeout = aiohttp.ClientTimeout(total=config.request_timeout_s)

    async def close(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    def ensure_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            if not self._owns_session:
                raise AriConnectionError("AriClient: the borrowed aiohttp session is closed")
            self._session = aiohttp.ClientSession()
        return self._session

    async def exchange(
        self, method: str, path: str, params: dict[str, str] | None, json: Any
    ) -> RestReply:
        session = self.ensure_session()
        url = self.base_url + path
        try:
            async with session.request(
                method,
                url,
                params=params,
                json=json,
                headers=self._headers,
                timeout=self._timeout,
            ) as resp:
                body = await resp.read()
                status = resp.status
                content_type = resp.content_type
                charset = resp.charset or "utf-8"
        except TimeoutError:
            raise AriConnectionError(
                f"ARI {method} {url}: no answer from Asterisk within "
                f"{self.config.request_timeout_s} s"
            ) from None
        except aiohttp.ClientError as exc:
            # Not chained: aiohttp's exceptions carry the request, Authorization header included.
            reason = redact(f"{url}: cannot reach Asterisk ({exc})", self.config)
            raise AriConnectionError(f"ARI {method} {reason}") from None
        return RestReply(status, content_type, body.decode(charset, errors="replace"))


class AriClient:
    """ARI requests to one Asterisk; use as ``async with AriClient(cfg) as ari:``.

    By default the requests go over HTTP (``HttpTransport``; a ``session`` passed in is
    borrowed, not closed by us). A ``transport`` passed in, such as a per-call ARI WebSocket
    (``wsrest.WebSocketRest``), is used instead and is closed by ``close()``.
    """

    def __init__(
        self,
        config: AriConfig,
        session: aiohttp.ClientSession | None = None,
        *,
        transport: RestTransport | None = None,
    ) -> None:
        if session is not None and transport is not None:
            raise ValueError("AriClient: pass a session or a transport, not both")
        self.config = config
        self.transport: RestTransport = transport or HttpTransport(config, session)

    async def __aenter__(self) -> AriClient:
        if isinstance(self.transport, HttpTransport):
            # Fail here, not at the first request, when a borrowed session is already closed.
            self.transport.ensure_session()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self.transport.close()

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, ParamValue] | None = None,
        json: Any = None,
    ) -> Any:
        """Send one ARI request; return decoded JSON (or text, or None for an empty body)."""
        reply = await self.transport.exchange(method, path, _encode_params(params), json)
        status, content_type, text = reply.status, reply.content_type, reply.text
        if status >= 400:
            raise self._error(method, path, status, content_type, text)
        if not text:
            return None
        if content_type == "application/json":
            try:
                return jsonlib.loads(text)
            except ValueError:
                raise AriHttpError(
                    method, path, status, f"invalid JSON from Asterisk: {text[:200]}"
                ) from None
        return text

    def _error(
        self, method: str, path: str, status: int, content_type: str, text: str
    ) -> AriHttpError:
        message = text.strip() or f"HTTP {status}"
        if content_type == "application/json":
            try:
                decoded = jsonlib.loads(text)
            except ValueError:
                decoded = None
            # Asterisk's error bodies are {"message": "..."}; that text is what operators need.
            if isinstance(decoded, dict) and isinstance(decoded.get("message"), str):
                message = decoded["message"]
        if status == 401:
            return auth_error(self.config, method, path, message)
        if status == 404:
            return AriNotFoundError(method, path, status, message)
        return AriHttpError(method, path, status, message)

    # --- asterisk -----------------------------------------------------------------------

    async def asterisk_info(self) -> dict[str, Any]:
        result = await self.request("GET", "/asterisk/info")
        return result if isinstance(result, dict) else {}

    # --- channels -----------------------------------------------------------------------

    async def answer(self, channel_id: str) -> None:
        await self.request("POST", f"/channels/{_seg(channel_id)}/answer")

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        await self.request("DELETE", f"/channels/{_seg(channel_id)}", params={"reason": reason})

    async def get_channel(self, channel_id: str) -> Channel:
        return Channel.from_json(await self.request("GET", f"/channels/{_seg(channel_id)}"))

    async def list_channels(self) -> list[Channel]:
        return [Channel.from_json(c) for c in await self.request("GET", "/channels") or []]

    async def get_variable(self, channel_id: str, name: str) -> str:
        result = await self.request(
            "GET", f"/channels/{_seg(channel_id)}/variable", params={"variable": name}
        )
        if not isinstance(result, dict) or "value" not in result:
            raise AriHttpError(
                "GET",
                f"/channels/{channel_id}/variable",
                200,
                f"unexpected answer for variable {name!r}: {result!r}",
            )
        return str(result["value"])

    async def set_variable(self, channel_id: str, name: str, value: str) -> None:
        await self.request(
            "POST",
            f"/channels/{_seg(channel_id)}/variable",
            params={"variable": name, "value": value},
        )

    async def continue_in_dialplan(
        self,
        channel_id: str,
        context: str | None = None,
        extension: str | None = None,
        priority: int | None = None,
        label: str | None = None,
    ) -> None:
        await self.request(
            "POST",
            f"/channels/{_seg(channel_id)}/continue",
            params={
                "context": context,
                "extension": extension,
                "priority": priority,
                "label": label,
            },
        )

    async def external_media(
        self,
        app: str,
        external_host: str,
        format: str,
        *,
        channel_id: str | None = None,
        encapsulation: str = "rtp",
        transport: str = "udp",
        connection_type: str = "client",
        direction: str = "both",
        variables: Mapping[str, str] | None = None,
    ) -> Channel:
        """Create the UnicastRTP channel that streams the call's audio to ``external_host``."""
        params: dict[str, ParamValue] = {
            "app": app,
            "external_host": external_host,
            "format": format,
            "channelId": channel_id,
            "encapsulation": encapsulation,
            "transport": transport,
            "connection_type": connection_type,
            "direction": direction,
        }
        # ARI takes channel variables only in the JSON body ({"variables": {...}}).
        body = {"variables": dict(variables)} if variables else None
        return Channel.from_json(
            await self.request("POST", "/channels/externalMedia", params=params, json=body)
        )

    async def originate(
        self,
        endpoint: str,
        *,
        app: str | None = None,
        app_args: str | Sequence[str] | None = None,
        caller_id: str | None = None,
        timeout_s: int | None = None,
        channel_id: str | None = None,
        variables: Mapping[str, str] | None = None,
    ) -> Channel:
        """POST /channels: dial ``endpoint`` (e.g. ``PJSIP/100``) into Stasis app ``app``."""
        params: dict[str, ParamValue] = {
            "endpoint": endpoint,
            "app": app or self.config.app,
            "appArgs": app_args,
            "callerId": caller_id,
            "timeout": timeout_s,
            "channelId": channel_id,
        }
        body = {"variables": dict(variables)} if variables else None
        return Channel.from_json(await self.request("POST", "/channels", params=params, json=body))

    # Transfers read better as "dial"; same request.
    dial = originate

    async def play(
        self, channel_id: str, media: str | Sequence[str], *, playback_id: str | None = None
    ) -> dict[str, Any]:
        """Start a playback (``sound:hello-world``…); returns Asterisk's Playback JSON."""
        result = await self.request(
            "POST",
            f"/channels/{_seg(channel_id)}/play",
            params={"media": media, "playbackId": playback_id},
        )
        return result if isinstance(result, dict) else {}

    async def send_dtmf(self, channel_id: str, dtmf: str) -> None:
        await self.request("POST", f"/channels/{_seg(channel_id)}/dtmf", params={"dtmf": dtmf})

    async def application(self, app: str) -> dict[str, Any]:
        """``GET /applications/{app}``: the channels and bridges the app is subscribed to."""
        return dict(await self.request("GET", f"/applications/{_seg(app)}"))

    # --- bridges ------------------------------------------------------------------------

    async def create_bridge(
        self, bridge_type: str = "mixing", name: str = "", bridge_id: str | None = None
    ) -> Bridge:
        """``bridge_id`` chosen by the caller lets a request cancelled half-way be cleaned up:
        whoever cancelled it knows what to destroy."""
        params = {"type": bridge_type, "name": name or None, "bridgeId": bridge_id}
        return Bridge.from_json(await self.request("POST", "/bridges", params=params))

    async def destroy_bridge(self, bridge_id: str) -> None:
        await self.request("DELETE", f"/bridges/{_seg(bridge_id)}")

    async def get_bridge(self, bridge_id: str) -> Bridge:
        return Bridge.from_json(await self.request("GET", f"/bridges/{_seg(bridge_id)}"))

    async def list_bridges(self) -> list[Bridge]:
        return [Bridge.from_json(b) for b in await self.request("GET", "/bridges") or []]

    async def add_channel(self, bridge_id: str, channel_id: str | Sequence[str]) -> None:
        await self.request(
            "POST", f"/bridges/{_seg(bridge_id)}/addChannel", params={"channel": _ids(channel_id)}
        )

    async def remove_channel(self, bridge_id: str, channel_id: str | Sequence[str]) -> None:
        await self.request(
            "POST",
            f"/bridges/{_seg(bridge_id)}/removeChannel",
            params={"channel": _ids(channel_id)},
        )
