"""ARI requests over an ARI WebSocket (RESTRequest/RESTResponse), against a real in-process
WebSocket server that answers the way Asterisk 22 does."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from voicebot.ari.client import AriClient, RestReply
from voicebot.ari.wsrest import MAX_FRAME_BYTES, WebSocketRest
from voicebot.config import AriConfig
from voicebot.errors import (
    AriAuthError,
    AriConnectionError,
    AriError,
    AriHttpError,
    AriNotFoundError,
    AriRequestTooLargeError,
)

HEX32 = re.compile(r"[0-9a-f]{32}")

Route = tuple[int, Any]  # status, JSON body (None: no body)


class FakeAsterisk:
    """Asterisk's end of one per-call ARI WebSocket.

    Every RESTRequest frame is kept in ``frames`` and queued for ``next_request``. A request
    whose ``(method, uri)`` is in ``routes`` is answered at once; any other is left for the
    test to answer with ``reply`` (in whatever order it likes) or never.
    """

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Route] = {}
        self.frames: list[dict[str, Any]] = []
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.ws: web.WebSocketResponse | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/ari/events", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.ws = ws
        # Asterisk's first message on a per-call socket is the call's StasisStart.
        await ws.send_json({"type": "StasisStart", "application": "voicebot-1", "args": []})
        async for msg in ws:
            if msg.type is not aiohttp.WSMsgType.TEXT:
                continue
            frame = json.loads(msg.data)
            self.frames.append(frame)
            self._queue.put_nowait(frame)
            route = self.routes.get((frame["method"], frame["uri"]))
            if route is not None:
                await self.reply(frame, *route)
        return ws

    async def next_request(self) -> dict[str, Any]:
        async with asyncio.timeout(5):
            return await self._queue.get()

    async def reply(self, frame: dict[str, Any], status: int, body: Any = None) -> None:
        message: dict[str, Any] = {
            "type": "RESTResponse",
            "transaction_id": frame["transaction_id"],
            "request_id": frame["request_id"],
            "status_code": status,
            "reason_phrase": HTTPStatus(status).phrase,
            "uri": frame["uri"],
        }
        if body is not None:
            message["content_type"] = "application/json"
            message["message_body"] = json.dumps(body)
        await self.send(message)

    async def send(self, message: Any) -> None:
        assert self.ws is not None
        await self.ws.send_json(message)


@dataclass
class Link:
    """The bot's end: the socket, a reader routing its messages, and the client over it."""

    fake: FakeAsterisk
    ws: aiohttp.ClientWebSocketResponse
    rest: WebSocketRest
    ari: AriClient
    events: list[dict[str, Any]] = field(default_factory=list)
    delivered: list[bool] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)


@asynccontextmanager
async def connected(timeout_s: float = 5.0) -> AsyncIterator[Link]:
    fake = FakeAsterisk()
    async with TestServer(fake.app()) as server, aiohttp.ClientSession() as session:
        ws = await session.ws_connect(server.make_url("/ari/events"))
        rest = WebSocketRest(ws.send_str, timeout_s, name="voicebot-1")
        link = Link(fake, ws, rest, AriClient(AriConfig(), transport=rest))

        # Stands in for the per-call socket reader, which owns the routing of messages.
        async def read() -> None:
            try:
                async for msg in ws:
                    if msg.type is aiohttp.WSMsgType.TEXT:
                        data = msg.json()
                        if data.get("type") == "RESTResponse":
                            link.delivered.append(rest.deliver(data))
                            link.arrived.set()
                        else:
                            link.events.append(data)
            finally:
                rest.fail_all()

        reader = asyncio.create_task(read())
        try:
            yield link
        finally:
            await ws.close()
            await reader
            await link.ari.close()


async def settle(link: Link, delivered: int) -> None:
    """Wait until the reader has handed ``delivered`` RESTResponses to ``deliver``."""
    async with asyncio.timeout(5):
        while len(link.delivered) < delivered:
            link.arrived.clear()
            await link.arrived.wait()


# --- the request frame --------------------------------------------------------------------


async def test_request_frame_shape() -> None:
    async with connected() as link:
        link.fake.routes[("POST", "channels/c1/continue")] = (204, None)
        link.fake.routes[("GET", "asterisk/info")] = (200, {"system": {"version": "22.10.0"}})
        result = await link.ari.request(
            "post",
            "/channels/c1/continue",
            params={
                "context": "from internal&x=1",
                "channel": ["a", "b"],
                "early": True,
                "late": False,
                "priority": 3,
                "unset": None,
            },
            json={"variables": {"CALL_ID": "abc", "NAME": "Jürgen"}},
        )
        assert result is None
        await link.ari.asterisk_info()

    first, second = link.fake.frames
    assert first["type"] == "RESTRequest"
    assert first["method"] == "POST"
    assert first["uri"] == "channels/c1/continue"
    assert first["query_strings"] == [
        {"name": "context", "value": "from internal&x=1"},
        {"name": "channel", "value": "a,b"},
        {"name": "early", "value": "true"},
        {"name": "late", "value": "false"},
        {"name": "priority", "value": "3"},
    ]
    assert first["content_type"] == "application/json"
    assert isinstance(first["message_body"], str)
    assert json.loads(first["message_body"]) == {"variables": {"CALL_ID": "abc", "NAME": "Jürgen"}}

    # No parameters and no body: neither is sent, not even empty.
    assert second["uri"] == "asterisk/info"
    assert second["method"] == "GET"
    assert not {"query_strings", "content_type", "message_body"} & second.keys()

    ids = [f[key] for f in (first, second) for key in ("request_id", "transaction_id")]
    assert all(HEX32.fullmatch(i) for i in ids)
    assert len(set(ids)) == 4


async def test_client_helpers_send_their_usual_paths_and_params() -> None:
    async with connected() as link:
        link.fake.routes[("POST", "bridges/b1/addChannel")] = (204, None)
        await link.ari.add_channel("b1", ["c1", "c2"])
    [frame] = link.fake.frames
    assert frame["query_strings"] == [{"name": "channel", "value": "c1,c2"}]


# --- AriClient over the socket: statuses and errors ---------------------------------------


async def test_statuses_map_to_the_same_results_and_errors_as_http() -> None:
    async with connected() as link:
        routes = link.fake.routes
        routes[("POST", "channels/c1/answer")] = (204, None)
        routes[("GET", "asterisk/info")] = (200, {"system": {"version": "22.10.0"}})
        routes[("POST", "channels/gone/answer")] = (404, {"message": "Channel not found"})
        routes[("GET", "channels/c1")] = (401, {"message": "Authentication required"})
        routes[("POST", "bridges")] = (500, {"message": "Allocation failed"})

        assert await link.ari.request("POST", "/channels/c1/answer") is None
        assert (await link.ari.asterisk_info())["system"]["version"] == "22.10.0"

        with pytest.raises(AriNotFoundError) as not_found:
            await link.ari.answer("gone")
        assert (not_found.value.status, not_found.value.message) == (404, "Channel not found")
        assert not_found.value.path == "/channels/gone/answer"

        with pytest.raises(AriAuthError) as auth:
            await link.ari.get_channel("c1")
        assert auth.value.message == "Authentication required"
        assert "wrong ari.user/ari.password (HTTP 401)" in str(auth.value)

        with pytest.raises(AriHttpError) as failed:
            await link.ari.create_bridge()
        assert type(failed.value) is AriHttpError
        assert (failed.value.status, failed.value.message) == (500, "Allocation failed")
        assert "HTTP 500: Allocation failed" in str(failed.value)

        # The events on the same socket went to the reader, not to the requests.
        assert link.events == [{"type": "StasisStart", "application": "voicebot-1", "args": []}]
        assert link.delivered == [True] * 5


async def test_an_error_without_body_and_a_charset_in_the_content_type() -> None:
    async with connected() as link:
        first = asyncio.create_task(link.ari.answer("c1"))
        frame = await link.fake.next_request()
        await link.fake.reply(frame, 409)
        with pytest.raises(AriHttpError, match="HTTP 409: HTTP 409"):
            await first

        second = asyncio.create_task(link.ari.asterisk_info())
        frame = await link.fake.next_request()
        await link.fake.send(
            {
                "type": "RESTResponse",
                "request_id": frame["request_id"],
                "transaction_id": frame["transaction_id"],
                "status_code": 200,
                "content_type": "application/json; charset=utf-8",
                "message_body": '{"system": {"version": "22.10.0"}}',
            }
        )
        assert await second == {"system": {"version": "22.10.0"}}


# --- matching replies to requests ---------------------------------------------------------


async def test_replies_out_of_order_are_matched_by_request_id() -> None:
    async with connected() as link:
        first = asyncio.create_task(link.ari.get_variable("c1", "FIRST"))
        second = asyncio.create_task(link.ari.get_variable("c1", "SECOND"))
        frames = [await link.fake.next_request(), await link.fake.next_request()]
        by_name = {f["query_strings"][0]["value"]: f for f in frames}
        await link.fake.reply(by_name["SECOND"], 200, {"value": "two"})
        assert await second == "two"
        assert not first.done()
        await link.fake.reply(by_name["FIRST"], 200, {"value": "one"})
        assert await first == "one"
        assert link.rest.in_flight == 0


async def test_concurrent_requests_each_get_their_own_reply() -> None:
    async with connected() as link:
        ids = [f"1727774102.{n}" for n in range(20)]
        for channel_id in ids:
            link.fake.routes[("GET", f"channels/{channel_id}")] = (
                200,
                {"id": channel_id, "name": f"PJSIP/{channel_id}", "state": "Up"},
            )
        channels = await asyncio.gather(*(link.ari.get_channel(i) for i in ids))
        assert [c.id for c in channels] == ids
        assert len({f["request_id"] for f in link.fake.frames}) == 20


# --- timeouts, a closing socket, garbage --------------------------------------------------


async def test_timeout_then_the_late_reply_is_ignored(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="voicebot.ari.wsrest")
    async with connected(timeout_s=0.2) as link:
        with pytest.raises(AriConnectionError) as info:
            await link.ari.answer("c1")
        text = str(info.value)
        assert "POST /channels/c1/answer" in text
        assert "'voicebot-1'" in text
        assert "no answer from Asterisk within 0.2 s" in text
        assert link.rest.in_flight == 0

        late = await link.fake.next_request()
        await link.fake.reply(late, 204)
        await settle(link, 1)
        assert link.delivered == [False]
        assert any(
            r.levelno == logging.DEBUG and late["request_id"] in r.getMessage()
            for r in caplog.records
        )

        # The socket is still good for the next request.
        link.fake.routes[("POST", "channels/c1/answer")] = (204, None)
        assert await link.ari.answer("c1") is None  # type: ignore[func-returns-value]
        assert link.delivered == [False, True]


async def test_socket_closing_fails_requests_in_flight_at_once() -> None:
    async with connected(timeout_s=30) as link:
        tasks = [asyncio.create_task(link.ari.answer(f"c{n}")) for n in range(3)]
        for _ in tasks:
            await link.fake.next_request()
        assert link.rest.in_flight == 3

        started = time.monotonic()
        assert link.fake.ws is not None
        await link.fake.ws.close()
        async with asyncio.timeout(2):
            results = await asyncio.gather(*tasks, return_exceptions=True)
        assert time.monotonic() - started < 2
        for n, result in enumerate(results):
            assert isinstance(result, AriConnectionError)
            assert f"POST /channels/c{n}/answer" in str(result)
            assert "the ARI WebSocket closed" in str(result)
        assert link.rest.closed and link.rest.in_flight == 0

        started = time.monotonic()
        with pytest.raises(AriConnectionError, match="the ARI WebSocket closed"):
            await link.ari.hangup("c1")
        assert time.monotonic() - started < 0.5


async def test_close_keeps_the_first_reason_for_later_requests() -> None:
    sent: list[str] = []

    async def send(frame: str) -> None:
        sent.append(frame)

    rest = WebSocketRest(send, 30, name="voicebot-2")
    waiting = asyncio.create_task(rest.exchange("GET", "/channels", None, None))
    await asyncio.sleep(0)
    assert rest.in_flight == 1
    rest.fail_all("Asterisk is shutting down")
    await rest.close()  # a second close is harmless and keeps the first reason
    with pytest.raises(AriConnectionError, match="Asterisk is shutting down"):
        await waiting
    with pytest.raises(AriConnectionError, match="Asterisk is shutting down"):
        await rest.exchange("GET", "/channels", None, None)
    assert len(sent) == 1


async def test_malformed_responses_are_ignored_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="voicebot.ari.wsrest")
    async with connected() as link:
        pending = asyncio.create_task(link.ari.asterisk_info())
        frame = await link.fake.next_request()
        request_id = frame["request_id"]
        for bad in [
            {"type": "RESTResponse", "status_code": 200},
            {"type": "RESTResponse", "request_id": 7, "status_code": 200},
            {"type": "RESTResponse", "request_id": request_id},
            {"type": "RESTResponse", "request_id": request_id, "status_code": "200"},
            {"type": "RESTResponse", "request_id": request_id, "status_code": True},
        ]:
            await link.fake.send(bad)
        await settle(link, 5)
        assert link.delivered == [False] * 5
        assert not pending.done()
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 5
        assert all("without a usable request_id" in r.getMessage() for r in warnings)

        await link.fake.reply(frame, 200, {"system": {"version": "22.10.0"}})
        assert (await pending)["system"]["version"] == "22.10.0"
        link.fake.routes[("POST", "channels/c1/answer")] = (204, None)
        await link.ari.answer("c1")


def test_deliver_never_raises_into_the_reader() -> None:
    rest = WebSocketRest(lambda frame: asyncio.sleep(0), 1)
    for junk in (["not", "a", "dict"], None, {}, {"request_id": "x", "status_code": 200}):
        assert rest.deliver(junk) is False  # type: ignore[arg-type]


async def test_invalid_json_body_is_an_http_error() -> None:
    async with connected() as link:
        pending = asyncio.create_task(link.ari.asterisk_info())
        frame = await link.fake.next_request()
        await link.fake.send(
            {
                "type": "RESTResponse",
                "request_id": frame["request_id"],
                "status_code": 200,
                "content_type": "application/json",
                "message_body": "{not json",
            }
        )
        with pytest.raises(AriHttpError, match="invalid JSON from Asterisk"):
            await pending


# --- what is never sent -------------------------------------------------------------------


async def test_an_oversize_request_is_refused_before_sending() -> None:
    async with connected() as link:
        link.fake.routes[("POST", "channels/externalMedia")] = (
            200,
            {"id": "m1", "name": "UnicastRTP/127.0.0.1:40002-0", "state": "Down"},
        )
        with pytest.raises(AriRequestTooLargeError) as info:
            await link.ari.external_media(
                "voicebot-1", "127.0.0.1:40002", "ulaw", variables={"BIG": "x" * MAX_FRAME_BYTES}
            )
        assert isinstance(info.value, AriError)
        assert "POST /channels/externalMedia" in str(info.value)
        assert str(MAX_FRAME_BYTES) in str(info.value)
        assert link.rest.in_flight == 0

        # Just under the limit still goes, and it is the first frame Asterisk sees.
        media = await link.ari.external_media(
            "voicebot-1", "127.0.0.1:40002", "ulaw", variables={"BIG": "x" * 60000}
        )
        assert media.id == "m1"
        assert len(link.fake.frames) == 1


async def test_a_failing_send_is_a_connection_error() -> None:
    async def send(frame: str) -> None:
        raise ConnectionResetError("Cannot write to closing transport")

    rest = WebSocketRest(send, 5, name="voicebot-3")
    with pytest.raises(AriConnectionError, match="cannot send the request"):
        await AriClient(AriConfig(), transport=rest).answer("c1")
    assert rest.in_flight == 0


async def test_a_cancelled_request_is_forgotten() -> None:
    async def send(frame: str) -> None:
        pass

    rest = WebSocketRest(send, 5)
    task = asyncio.create_task(rest.exchange("GET", "/channels", None, None))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert rest.in_flight == 0


# --- the transport seam in AriClient ------------------------------------------------------


async def test_any_transport_gets_the_same_interpretation() -> None:
    class Canned:
        def __init__(self) -> None:
            self.closed = False
            self.seen: list[tuple[str, str, dict[str, str] | None, Any]] = []

        async def exchange(
            self, method: str, path: str, params: dict[str, str] | None, json: Any
        ) -> RestReply:
            self.seen.append((method, path, params, json))
            return RestReply(200, "text/plain", "pong")

        async def close(self) -> None:
            self.closed = True

    canned = Canned()
    async with AriClient(AriConfig(), transport=canned) as ari:
        assert await ari.request("GET", "/ping", params={"a": ["x", "y"], "b": None}) == "pong"
    assert canned.seen == [("GET", "/ping", {"a": "x,y"}, None)]
    assert canned.closed


async def test_a_session_and_a_transport_together_are_refused() -> None:
    rest = WebSocketRest(lambda frame: asyncio.sleep(0), 1)
    async with aiohttp.ClientSession() as session:
        with pytest.raises(ValueError, match="not both"):
            AriClient(AriConfig(), session, transport=rest)


def test_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError, match="timeout_s"):
        WebSocketRest(lambda frame: asyncio.sleep(0), 0)
