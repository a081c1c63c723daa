"""Accepting Asterisk's per-call ARI WebSockets: credentials and the failed-login limit,
events routed with the call's own route, REST answered on the same socket, a socket that
closes mid-request. The test plays Asterisk's end with a real aiohttp WebSocket client."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import BaseTestServer, TestServer

from voicebot.ari.accept import AriAcceptor, credentials_match
from voicebot.ari.events import Event, StasisStart
from voicebot.ari.logins import FailedLogins
from voicebot.ari.route import AriRoute
from voicebot.config import AriConfig
from voicebot.errors import AriConnectionError

CONFIG = AriConfig(user="voicebot", password="s3cret-pw", request_timeout_s=5.0)
APP = "voicebot-pool:PJSIP/sipp-00000001"


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def channel(channel_id: str = "1700000000.1") -> dict[str, Any]:
    return {"id": channel_id, "name": "PJSIP/sipp-00000001", "state": "Ring",
            "caller": {"number": "100", "name": ""}, "dialplan": {"exten": "150"}}  # fmt: skip


def event(kind: str, **fields: Any) -> str:
    return json.dumps({"type": kind, "application": APP, "timestamp": "t",
                       "asterisk_id": "02:42:ac:11:00:02", **fields})  # fmt: skip


@dataclass
class Worker:
    """The acceptor in an in-process server, and what it handed to the controller's side."""

    server: BaseTestServer
    acceptor: AriAcceptor
    registered: list[AriRoute] = field(default_factory=list)
    events: list[tuple[Event, AriRoute]] = field(default_factory=list)
    lost: list[AriRoute] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait(self, predicate: Any, within_s: float = 5.0) -> None:
        async with asyncio.timeout(within_s):
            while not predicate():
                self.changed.clear()
                await self.changed.wait()

    def connect(self, session: aiohttp.ClientSession, **kwargs: Any) -> Any:
        kwargs.setdefault("headers", basic(CONFIG.user, CONFIG.password))
        return session.ws_connect(self.server.make_url("/ari"), protocols=("ari",), **kwargs)


@asynccontextmanager
async def worker(logins: FailedLogins | None = None) -> AsyncIterator[Worker]:
    holder: list[Worker] = []

    def record(kind: str) -> Any:
        def callback(*args: Any) -> None:
            w = holder[0]
            if kind == "event":
                w.events.append((args[0], args[1]))
            else:
                getattr(w, kind).append(args[0])
            w.changed.set()

        return callback

    acceptor = AriAcceptor(CONFIG, on_event=record("event"), on_registered=record("registered"),
                           on_lost=record("lost"), logins=logins)  # fmt: skip
    app = web.Application()
    app.router.add_get("/{path:.*}", acceptor.handle)
    async with TestServer(app) as server:
        holder.append(Worker(server, acceptor))
        try:
            yield holder[0]
        finally:
            await acceptor.close()


@pytest.mark.parametrize(
    "header, accepted",
    [
        (basic("voicebot", "s3cret-pw")["Authorization"], True),
        (basic("voicebot", "wrong")["Authorization"], False),
        (basic("someone", "s3cret-pw")["Authorization"], False),
        ("Basic " + base64.b64encode(b"voicebot").decode(), False),  # no colon
        ("Basic !!!not-base64", False),
        ("Bearer s3cret-pw", False),
        (None, False),
    ],
)
def test_credentials_are_ari_user_and_password_as_basic_auth(
    header: str | None, accepted: bool
) -> None:
    assert credentials_match(header, CONFIG) is accepted


@pytest.mark.parametrize("headers", [{}, basic("voicebot", "wrong")])
async def test_a_socket_without_the_right_credentials_is_refused_before_the_upgrade(
    headers: dict[str, str],
) -> None:
    async with worker() as w, aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            async with w.connect(session, headers=headers):
                pass
        assert info.value.status == 401
        assert w.acceptor.connections_total == 0


# -- failed logins: a limit per address, logged in summary ------------------------------------


async def attempt(w: Worker, session: aiohttp.ClientSession, headers: dict[str, str]) -> int:
    """The HTTP status of one connection attempt (101 when it was upgraded)."""
    try:
        async with w.connect(session, headers=headers):
            return 101
    except aiohttp.WSServerHandshakeError as error:
        return error.status


async def test_a_thousand_wrong_passwords_get_a_few_log_lines_and_other_addresses_get_in(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="voicebot.ari.accept")
    wrong = basic("voicebot", "guess")
    async with worker() as w:
        async with aiohttp.ClientSession() as guesser:  # from 127.0.0.1
            statuses: list[int] = []
            for _ in range(20):
                statuses += await asyncio.gather(*(attempt(w, guesser, wrong) for _ in range(50)))
            assert statuses == [401] * 5 + [429] * 995
            # Now even the right password from there waits for the window to pass.
            assert await attempt(w, guesser, basic(CONFIG.user, CONFIG.password)) == 429
            with pytest.raises(aiohttp.WSServerHandshakeError) as info:
                async with w.connect(guesser, headers=wrong):
                    pass
            assert info.value.headers is not None
            assert 55 <= int(info.value.headers["Retry-After"]) <= 60
        elsewhere = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
        async with aiohttp.ClientSession(connector=elsewhere) as asterisk:
            async with w.connect(asterisk) as ws:  # the right password, from another address
                await ws.send_str(event("ApplicationRegistered"))
                await w.wait(lambda: w.registered)
        logged = [r.getMessage() for r in caplog.records if r.name == "voicebot.ari.accept"]
        assert len(logged) == 2  # the first refusal, and "ARI WebSocket for voicebot-pool:…"
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 2  # the second: the summary the acceptor logs when it closes
    first = "ARI WebSocket from 127.0.0.1 refused: wrong or missing credentials"
    assert lines[0].startswith(first)
    assert re.fullmatch(
        r"ARI WebSocket: 1001 failed logins from 127\.0\.0\.1 in the last \d+ s "
        r"\(997 of them refused unchecked\)",
        lines[1],
    )


async def test_a_long_attack_is_summarised_once_per_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="voicebot.ari.accept")
    logins = FailedLogins(summary_s=0.1, clock=time.monotonic)
    sent = 0
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with worker(logins) as w, aiohttp.ClientSession() as guesser:
        while loop.time() < started + 0.55:
            await asyncio.gather(*(attempt(w, guesser, {}) for _ in range(20)))
            sent += 20
        await asyncio.sleep(0.15)
        by_timer = len(caplog.records) - 1
    elapsed = loop.time() - started  # closing the worker logs what is left
    lines = [r.getMessage() for r in caplog.records]
    summaries = [re.fullmatch(r"ARI WebSocket: (\d+) failed logins .*", line) for line in lines]
    counts = [int(m[1]) for m in summaries if m]
    assert sent > 100
    assert len(lines) == 1 + len(counts)  # the first refusal, then summaries only
    assert by_timer >= 2  # logged while the attack went on, not only at the end
    assert len(counts) <= elapsed / 0.1 + 2  # one per 0.1 s at most
    assert 1 + sum(counts) == sent


async def test_events_reach_the_controller_with_the_call_s_own_route() -> None:
    async with worker() as w, aiohttp.ClientSession() as session:
        async with w.connect(session) as ws:
            assert ws.protocol == "ari"
            await ws.send_str(event("ApplicationRegistered"))
            await ws.send_str(event("StasisStart", channel=channel(), args=[]))
            await w.wait(lambda: w.events)
        [route] = w.registered
        assert route.app == APP
        assert route.asterisk_id == "02:42:ac:11:00:02"
        [(start, on)] = w.events  # ApplicationRegistered itself is not a call event
        assert isinstance(start, StasisStart) and on is route
        await w.wait(lambda: w.lost)
        assert w.lost == [route]


async def test_the_asterisk_id_may_come_from_the_uri_query() -> None:
    async with worker() as w, aiohttp.ClientSession() as session:
        url = w.server.make_url("/ari").with_query(asterisk_id="pbx-2")
        async with session.ws_connect(
            url, protocols=("ari",), headers=basic("voicebot", "s3cret-pw")
        ) as ws:
            await ws.send_str(event("ApplicationRegistered"))
            await w.wait(lambda: w.registered)
        assert w.registered[0].asterisk_id == "pbx-2"


async def test_rest_requests_go_back_over_the_same_socket() -> None:
    async with worker() as w, aiohttp.ClientSession() as session:
        async with w.connect(session) as ws:
            await ws.send_str(event("ApplicationRegistered"))
            await w.wait(lambda: w.registered)
            route = w.registered[0]
            answering = asyncio.create_task(route.ari.answer("1700000000.1"))
            request = json.loads((await ws.receive()).data)
            assert request["type"] == "RESTRequest"
            assert (request["method"], request["uri"]) == ("POST", "channels/1700000000.1/answer")
            await ws.send_str(json.dumps({
                "type": "RESTResponse", "transaction_id": request["transaction_id"],
                "request_id": request["request_id"], "status_code": 204,
                "reason_phrase": "No Content", "uri": request["uri"],
            }))  # fmt: skip
            assert await asyncio.wait_for(answering, 5) is None  # type: ignore[func-returns-value]


async def test_a_socket_that_closes_mid_request_fails_the_request_at_once_and_loses_the_route() -> (
    None
):
    async with worker() as w, aiohttp.ClientSession() as session:
        async with w.connect(session) as ws:
            await ws.send_str(event("ApplicationRegistered"))
            await w.wait(lambda: w.registered)
            route = w.registered[0]
            pending = asyncio.create_task(route.ari.answer("1700000000.1"))
            await ws.receive()  # the request arrived; Asterisk goes away without answering
        with pytest.raises(AriConnectionError):
            await asyncio.wait_for(pending, 2)  # well before the 5 s request timeout
        await w.wait(lambda: w.lost)
        assert w.lost == [route]


async def test_malformed_frames_are_skipped_and_later_events_still_arrive() -> None:
    async with worker() as w, aiohttp.ClientSession() as session:
        async with w.connect(session) as ws:
            await ws.send_str(event("ApplicationRegistered"))
            for junk in ("not json", "[1, 2]", event("StasisStart"), '{"type": "RESTResponse"}'):
                await ws.send_str(junk)
            await ws.send_bytes(b"\x00\x01")
            await ws.send_str(event("StasisStart", channel=channel(), args=[]))
            await w.wait(lambda: w.events)
        assert [type(e).__name__ for e, _ in w.events] == ["StasisStart"]


async def test_closing_the_acceptor_closes_every_socket() -> None:
    async with worker() as w, aiohttp.ClientSession() as session:
        async with w.connect(session) as ws:
            await ws.send_str(event("ApplicationRegistered"))
            await w.wait(lambda: w.registered)
            await w.acceptor.close()
            message = await asyncio.wait_for(ws.receive(), 5)
            assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        await w.wait(lambda: w.lost)


async def test_a_draining_worker_answers_503_so_the_balancer_retries_elsewhere() -> None:
    async with worker() as w, aiohttp.ClientSession() as session:
        w.acceptor.refusing = True
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            async with w.connect(session):
                pass
        assert info.value.status == 503


async def test_wait_closed_returns_once_asterisk_closed_every_socket() -> None:
    async with worker() as w, aiohttp.ClientSession() as session:
        assert await w.acceptor.wait_closed(0.1)  # none open
        async with w.connect(session) as ws:
            await ws.send_str(event("ApplicationRegistered"))
            await w.wait(lambda: w.registered)
            assert not await w.acceptor.wait_closed(0.1)
            closing = asyncio.create_task(w.acceptor.wait_closed(5))
        assert await closing
