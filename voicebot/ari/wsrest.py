"""ARI REST requests over an ARI WebSocket (Asterisk 22.5+ "RESTRequest"/"RESTResponse").

A request is one JSON text frame: type "RESTRequest", request_id, transaction_id, method,
uri (below /ari, no leading "/"), query_strings [{"name", "value"}] and, with a body,
content_type plus the body as a JSON *string* in message_body. Asterisk answers with a
"RESTResponse" frame: the same request_id, status_code, and the body the same way. Replies
share the socket with events, so the socket's reader hands RESTResponses to ``deliver()``.
Asterisk reads at most 65535 bytes per frame; a larger request fails here, unsent.
"""

from __future__ import annotations

import asyncio
import json as jsonlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from ..errors import AriConnectionError, AriRequestTooLargeError
from .client import RestReply

log = logging.getLogger(__name__)

# Asterisk's websocket code reads at most this much payload per frame.
MAX_FRAME_BYTES = 65535

DEFAULT_CLOSE_REASON = "the ARI WebSocket closed"


class _SocketClosed(Exception):
    """Set on waiting futures by fail_all(); exchange() turns it into an AriConnectionError
    that names its own request."""


class WebSocketRest:
    """A ``RestTransport`` that sends ARI requests as frames on one ARI WebSocket.

    ``send`` sends one text frame (for aiohttp, ``ws.send_str``) and may be called by several
    tasks at once. Nothing is shared between instances: one per socket.
    """

    def __init__(
        self, send: Callable[[str], Awaitable[None]], timeout_s: float, *, name: str = ""
    ) -> None:
        if timeout_s <= 0:
            raise ValueError(f"WebSocketRest: timeout_s must be > 0, not {timeout_s!r}")
        self._send = send
        self.timeout_s = timeout_s
        self.name = name
        self._pending: dict[str, asyncio.Future[RestReply]] = {}
        self._closed_reason: str | None = None

    @property
    def closed(self) -> bool:
        return self._closed_reason is not None

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    @property
    def _label(self) -> str:
        return f"ARI WebSocket {self.name!r}" if self.name else "the ARI WebSocket"

    def _where(self, method: str, path: str) -> str:
        return f"ARI {method} {path} on {self._label}"

    async def exchange(
        self, method: str, path: str, params: dict[str, str] | None, json: Any
    ) -> RestReply:
        if self._closed_reason is not None:
            raise AriConnectionError(f"{self._where(method, path)}: {self._closed_reason}")
        request_id = uuid.uuid4().hex
        frame = self._frame(method, path, params, json, request_id)
        size = len(frame.encode("utf-8"))
        if size > MAX_FRAME_BYTES:
            raise AriRequestTooLargeError(
                f"{self._where(method, path)}: the request is {size} bytes, more than the "
                f"{MAX_FRAME_BYTES} Asterisk accepts in one WebSocket frame"
            )

        future: asyncio.Future[RestReply] = asyncio.get_running_loop().create_future()
        # Registered before sending: the reply may be read before send() returns.
        self._pending[request_id] = future
        try:
            # The send is inside the deadline too: a socket stuck on backpressure must not
            # hold the call longer than an unanswered request would.
            async with asyncio.timeout(self.timeout_s):
                try:
                    await self._send(frame)
                except OSError as exc:  # aiohttp's "cannot write to closing transport" too
                    raise AriConnectionError(
                        f"{self._where(method, path)}: cannot send the request ({exc})"
                    ) from None
                return await future
        except _SocketClosed as exc:
            raise AriConnectionError(f"{self._where(method, path)}: {exc}") from None
        except TimeoutError:
            raise AriConnectionError(
                f"{self._where(method, path)}: no answer from Asterisk within {self.timeout_s} s"
            ) from None
        finally:
            # Forgetting the id is what makes a late reply harmless: deliver() drops it.
            self._pending.pop(request_id, None)
            if future.done() and not future.cancelled():
                # Marks a failure set by fail_all() as seen even when our caller was
                # cancelled at that moment, so asyncio does not log it as never retrieved.
                future.exception()

    @staticmethod
    def _frame(
        method: str, path: str, params: dict[str, str] | None, json: Any, request_id: str
    ) -> str:
        message: dict[str, Any] = {
            "type": "RESTRequest",
            "transaction_id": uuid.uuid4().hex,
            "request_id": request_id,
            "method": method.upper(),
            "uri": path.lstrip("/"),
        }
        if params:
            message["query_strings"] = [{"name": k, "value": v} for k, v in params.items()]
        if json is not None:
            message["content_type"] = "application/json"
            message["message_body"] = jsonlib.dumps(json)
        return jsonlib.dumps(message)

    def deliver(self, message: Mapping[str, Any]) -> bool:
        """Hand over one decoded RESTResponse; True when it answered a request in flight.

        Never raises: the caller is the socket's reader, which must keep reading events.
        """
        try:
            return self._deliver(message)
        except Exception:
            log.warning("%s: cannot use a RESTResponse", self._label, exc_info=True)
            return False

    def _deliver(self, message: Mapping[str, Any]) -> bool:
        if not isinstance(message, Mapping):
            log.warning("%s: RESTResponse is not an object (%s)", self._label,
                        type(message).__name__)  # fmt: skip
            return False
        request_id = message.get("request_id")
        status = message.get("status_code")
        if (
            not isinstance(request_id, str)
            or not request_id
            or not isinstance(status, int)
            or isinstance(status, bool)
        ):
            # Its body may hold callers' data (channel variables): keys only, whole at DEBUG.
            log.warning(
                "%s: ignoring a RESTResponse without a usable request_id and status_code "
                "(keys: %s)", self._label, ", ".join(sorted(map(str, message))),
            )  # fmt: skip
            log.debug("%s: the unusable RESTResponse: %.500r", self._label, dict(message))
            return False
        future = self._pending.pop(request_id, None)
        if future is None or future.done():
            # Normal after a timeout or a cancelled request: nobody waits for it any more.
            log.debug(
                "%s: reply to request %s that is no longer waited for (HTTP %s)",
                self._label,
                request_id,
                status,
            )
            return False
        future.set_result(RestReply(status, _content_type(message), _body(message)))
        return True

    def fail_all(self, reason: str = DEFAULT_CLOSE_REASON) -> None:
        """The socket is gone: fail every request in flight now, and every later one at once.

        Called again, it keeps the first reason.
        """
        if self._closed_reason is None:
            self._closed_reason = reason
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                # Each waiter gets its own exception, so tracebacks do not pile up on one.
                future.set_exception(_SocketClosed(self._closed_reason))

    async def close(self, reason: str = DEFAULT_CLOSE_REASON) -> None:
        self.fail_all(reason)


def _content_type(message: Mapping[str, Any]) -> str:
    value = message.get("content_type")
    if not isinstance(value, str):
        return ""
    # AriClient compares the bare media type, as aiohttp reports it for HTTP.
    return value.partition(";")[0].strip().lower()


def _body(message: Mapping[str, Any]) -> str:
    body = message.get("message_body")
    if body is None:
        return ""
    if isinstance(body, str):
        return body
    # Not what Asterisk sends, but an already decoded body loses nothing by re-encoding.
    return jsonlib.dumps(body)
