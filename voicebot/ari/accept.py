"""Accepting ARI WebSockets: a worker of a pool, one connection per call (``ari.mode = "accept"``).

Asterisk 22.5+ (res_websocket_client with ``connection_type = per_call_config``) opens one
WebSocket per call, subprotocol ``ari``, usually through a load balancer. On it come the
per-call app's ``ApplicationRegistered``, the caller's ``StasisStart`` and every later event of
the call's channels; call control goes back over the same socket as ``RESTRequest`` frames
(:mod:`voicebot.ari.wsrest`). This module only does that I/O: each connection becomes an
:class:`AriRoute` whose events are handed to ``on_event``; what to do with them is the
controller's business.

Asterisk presents ``ari.user``/``ari.password`` (websocket_client.conf ``username``/``password``)
as HTTP Basic auth; anything else is refused with 401 before the upgrade. An address that fails
``logins.MAX_FAILED_LOGINS`` times within ``FAILED_LOGIN_WINDOW_S`` gets 429, its credentials
unchecked, until that window has passed (:class:`FailedLogins`); refusals are logged in summary:
an address's first at WARNING, then one line per address and interval at most.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import logging
import math
import time
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp import web

from ..config import AriConfig
from .client import AriClient
from .events import Event, decode_frame, event_or_none
from .logins import FailedLogins, client_key
from .route import AriRoute
from .wsrest import MAX_FRAME_BYTES, WebSocketRest

log = logging.getLogger(__name__)

SUBPROTOCOL = "ari"

OnEvent = Callable[[Event, AriRoute], None]
OnRoute = Callable[[AriRoute], None]


def credentials_match(header: str | None, config: AriConfig) -> bool:
    """Whether an ``Authorization`` header is Basic auth with ``ari.user``/``ari.password``."""
    scheme, _, token = (header or "").partition(" ")
    if scheme.lower() != "basic" or not token:
        return False
    try:
        user, sep, password = base64.b64decode(token.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    # Constant-time on both parts: the reply's timing must not tell how much matched.
    user_ok = hmac.compare_digest(user.encode(), config.user.encode())
    password_ok = hmac.compare_digest(password.encode(), config.password.encode())
    return bool(sep) and user_ok and password_ok


class AriAcceptor:
    """The aiohttp handler for Asterisk's per-call WebSockets (mount it on any path).

    ``on_registered`` runs once the connection's app is known (its ``ApplicationRegistered``),
    ``on_event`` for each event after that, ``on_lost`` when the socket closes. Every socket is
    tracked, so :meth:`close` can end them all at shutdown.
    """

    def __init__(
        self,
        config: AriConfig,
        *,
        on_event: OnEvent,
        on_registered: OnRoute,
        on_lost: OnRoute,
        logins: FailedLogins | None = None,
    ) -> None:
        self.config = config
        self.logins = logins if logins is not None else FailedLogins(clock=time.monotonic)
        self._summary_timer: asyncio.TimerHandle | None = None
        self.on_event = on_event
        self.on_registered = on_registered
        self.on_lost = on_lost
        self.sockets: set[web.WebSocketResponse] = set()
        self.connections_total = 0
        # Draining: new sockets get 503 before the upgrade, so the load balancer retries them
        # on another worker (HAProxy's retry-on 503) instead of this one handing them back.
        self.refusing = False
        self._all_closed = asyncio.Event()
        self._all_closed.set()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if self.refusing:
            raise web.HTTPServiceUnavailable(text="this worker is draining\n")
        self._check_credentials(request)
        # No compression: Asterisk refuses a handshake answer naming an extension.
        # Frames are bounded by Asterisk's limit both ways (wsrest.MAX_FRAME_BYTES).
        ws = web.WebSocketResponse(
            protocols=(SUBPROTOCOL,), max_msg_size=MAX_FRAME_BYTES, autoping=True, compress=False
        )
        if not ws.can_prepare(request).ok:
            raise web.HTTPBadRequest(text="an ARI WebSocket (subprotocol ari) is expected here\n")
        await ws.prepare(request)
        self.sockets.add(ws)
        self._all_closed.clear()
        self.connections_total += 1
        rest = WebSocketRest(ws.send_str, self.config.request_timeout_s)
        route = AriRoute(AriClient(self.config, transport=rest), app="",
                         asterisk_id=request.query.get("asterisk_id", ""))  # fmt: skip
        try:
            await self._read(ws, rest, route)
        finally:
            self.sockets.discard(ws)
            if not self.sockets:
                self._all_closed.set()
            await rest.close()
            if route.app:
                self.on_lost(route)
            if not ws.closed:
                await ws.close()
        return ws

    def _check_credentials(self, request: web.Request) -> None:
        """Raise 429 for an address that must wait, 401 for wrong credentials."""
        address = client_key(request.remote)
        wait_s = self.logins.retry_after(address)
        if wait_s is not None:
            self.logins.refused_unchecked(address)
            self._schedule_summaries()
            raise web.HTTPTooManyRequests(headers={"Retry-After": str(math.ceil(wait_s))})
        if credentials_match(request.headers.get("Authorization"), self.config):
            self.logins.succeeded(address)
            return
        if self.logins.failed(address):
            log.warning("ARI WebSocket from %s refused: wrong or missing credentials (ari.user/"
                        "ari.password must match websocket_client.conf username/password); "
                        "more from there are logged in summary", request.remote)  # fmt: skip
        self._schedule_summaries()
        raise web.HTTPUnauthorized(headers={"WWW-Authenticate": 'Basic realm="voicebot"'})

    def _schedule_summaries(self) -> None:
        if self._summary_timer is not None:
            return
        delay_s = self.logins.next_summary_in()
        if delay_s is not None:
            self._summary_timer = asyncio.get_running_loop().call_later(
                delay_s, self._log_summaries
            )

    def _log_summaries(self, *, all_pending: bool = False) -> None:
        self._summary_timer = None
        for summary in self.logins.summaries(all_pending=all_pending):
            log.warning("%s", summary)
        if not all_pending:
            self._schedule_summaries()

    async def _read(self, ws: web.WebSocketResponse, rest: WebSocketRest, route: AriRoute) -> None:
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue  # ARI sends only text; pings are answered by aiohttp
            message = _decode(msg.data)
            if message is None:
                continue
            if message.get("type") == "RESTResponse":
                rest.deliver(message)
                continue
            event = event_or_none(message, msg.data)
            if event is None:
                continue
            if not route.app:
                route.app = event.application
                route.asterisk_id = route.asterisk_id or str(message.get("asterisk_id") or "")
                if not route.app:
                    log.error("ARI WebSocket: the first event names no application; closing")
                    return
                rest.name = route.app
                log.info("ARI WebSocket for %s", route)
                self.on_registered(route)
            if event.type != "ApplicationRegistered":
                self.on_event(event, route)

    async def wait_closed(self, timeout_s: float) -> bool:
        """Wait until Asterisk has closed every socket (it does ~3.5 s after a call's
        StasisEnd). A worker that exits before that makes Asterisk reconnect the finished
        calls' sockets to another worker for nothing. True if none is left."""
        try:
            await asyncio.wait_for(self._all_closed.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        """Close every socket still open (shutdown). For a call still in Stasis, Asterisk
        reconnects it through the load balancer to another worker, which hands the caller
        back to the dialplan (see ``CallController.route_opened``). Failed logins not logged
        yet are logged now."""
        if self._summary_timer is not None:
            self._summary_timer.cancel()
        self._log_summaries(all_pending=True)
        sockets = list(self.sockets)
        await asyncio.gather(
            *(ws.close(code=aiohttp.WSCloseCode.GOING_AWAY) for ws in sockets),
            return_exceptions=True,
        )


def _decode(text: str) -> dict[str, Any] | None:
    try:
        message = decode_frame(text)
    except ValueError:
        message = None
    if not isinstance(message, dict):
        log.error("ARI WebSocket: skipping a frame that is not a JSON object (%d characters)",
                  len(text))  # fmt: skip
        return None
    return message
