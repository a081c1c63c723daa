"""The call controller as a worker of a pool (ari.mode = "accept"): every call arrives on its
own WebSocket and is controlled over it. Asterisk's end of each socket is played by the test,
answering REST requests from a table."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import aiohttp
from aiohttp import web
from aiohttp.test_utils import BaseTestServer, TestServer

from tests.support.doubles import ListAsr, ToneTts
from voicebot.ari.accept import AriAcceptor
from voicebot.call import SpeechServices
from voicebot.config import AriConfig, Config, MediaConfig
from voicebot.dialog.library import ScriptLibrary
from voicebot.media.endpoint import PortAllocator
from voicebot.runtime import Runtime
from voicebot.server.controller import CallController

ROOT = Path(__file__).resolve().parents[3]
ARI = AriConfig(mode="accept", user="voicebot", password="s3cret-pw", app="voicebot-pool")
CALLER = "1700000000.7"
APP = "voicebot-pool:PJSIP/sipp-00000007"


@dataclass
class AsteriskEnd:
    """Asterisk's end of one per-call socket: answers each RESTRequest from ``table``
    (``(method, uri)`` → (status, JSON body), or a function of the query giving them);
    unknown requests are left unanswered."""

    ws: aiohttp.ClientWebSocketResponse
    table: dict[tuple[str, str], Any]
    asterisk_id: str = ""  # what every event says of its Asterisk (empty: nothing)
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    seen: asyncio.Event = field(default_factory=asyncio.Event)

    async def send(self, kind: str, **fields: Any) -> None:
        eid = {"asterisk_id": self.asterisk_id} if self.asterisk_id else {}
        await self.ws.send_json({"type": kind, "application": APP, "timestamp": "t", **eid,
                                 **fields})  # fmt: skip

    async def serve(self) -> None:
        async for msg in self.ws:
            frame = json.loads(msg.data)
            uri = unquote(frame["uri"])
            query = {q["name"]: q["value"] for q in frame.get("query_strings", [])}
            self.requests.append((frame["method"], uri, query))
            self.seen.set()
            if (frame["method"], uri) not in self.table:
                continue
            answer = self.table[frame["method"], uri]
            status, body = answer(query) if callable(answer) else answer
            reply = {"type": "RESTResponse", "transaction_id": frame["transaction_id"],
                     "request_id": frame["request_id"], "status_code": status,
                     "reason_phrase": "", "uri": frame["uri"]}  # fmt: skip
            if body is not None:
                reply |= {"content_type": "application/json", "message_body": json.dumps(body)}
            await self.ws.send_json(reply)

    async def wait_for(self, method: str, uri: str, within_s: float = 5.0) -> dict[str, str]:
        async with asyncio.timeout(within_s):
            while True:
                for m, u, query in self.requests:
                    if (m, u) == (method, uri):
                        return query
                self.seen.clear()
                await self.seen.wait()


@dataclass
class Pool:
    controller: CallController
    server: BaseTestServer
    session: aiohttp.ClientSession

    @asynccontextmanager
    async def call_socket(
        self, table: dict[tuple[str, str], Any], asterisk_id: str = ""
    ) -> AsyncIterator[AsteriskEnd]:
        token = base64.b64encode(f"{ARI.user}:{ARI.password}".encode()).decode()
        async with self.session.ws_connect(
            self.server.make_url("/ari"), protocols=("ari",),
            headers={"Authorization": f"Basic {token}"},
        ) as ws:  # fmt: skip
            end = AsteriskEnd(ws, table, asterisk_id)
            serving = asyncio.create_task(end.serve())
            try:
                await end.send("ApplicationRegistered")
                yield end
            finally:
                serving.cancel()
                await asyncio.gather(serving, return_exceptions=True)


@asynccontextmanager
async def pool() -> AsyncIterator[Pool]:
    config = Config(ari=ARI, media=MediaConfig(port_min=41100, port_max=41109))
    scripts = ScriptLibrary(ROOT / "prompts", "demo")
    async with aiohttp.ClientSession() as http:
        runtime = Runtime(config, SpeechServices(ListAsr([]), ToneTts()), http=http)
        controller = CallController(
            config, None, scripts, runtime, PortAllocator("127.0.0.1", 41100, 41109)
        )
        acceptor = AriAcceptor(ARI, on_event=controller.dispatch,
                               on_registered=controller.route_opened,
                               on_lost=controller.route_lost)  # fmt: skip
        app = web.Application()
        app.router.add_get("/{path:.*}", acceptor.handle)
        async with TestServer(app) as server:
            try:
                yield Pool(controller, server, http)
            finally:
                await controller.close()
                await acceptor.close()


def caller() -> dict[str, Any]:
    return {"id": CALLER, "name": "PJSIP/sipp-00000007", "state": "Up",
            "caller": {"number": "100", "name": ""}, "dialplan": {"exten": "150"}}  # fmt: skip


async def test_a_call_whose_worker_died_is_handed_back_by_the_worker_asterisk_reconnects_to() -> (
    None
):
    """No StasisStart on a reconnected socket: the caller is already in the app, bridged to
    a dead worker's media channel. It goes back to the dialplan; the leftovers are removed."""
    media, bridge = f"voicebot-media-{CALLER}", f"voicebot-bridge-{CALLER}"
    app = {"name": APP, "channel_ids": [CALLER, media], "bridge_ids": [bridge]}
    bridges = [
        {"id": bridge, "name": f"voicebot:{APP}:{CALLER}"},
        {"id": "theirs", "name": "voicebot:other-app:1.2"},
    ]
    # Hundreds of other calls' bridges on this Asterisk: their list would pass the socket's
    # frame limit, so the worker must never ask for it.
    bridges += [{"id": f"b{n}", "name": f"voicebot:voicebot-pool:PJSIP/x-{n}:{n}.1"}
                for n in range(300)]  # fmt: skip
    table = {
        ("GET", f"applications/{APP}"): (200, app),
        ("GET", "bridges"): (200, bridges),
        ("GET", f"bridges/{bridge}"): (200, bridges[0]),
        ("DELETE", f"bridges/{bridge}"): (204, None),
        ("DELETE", f"channels/{media}"): (204, None),
        ("POST", f"channels/{CALLER}/variable"): (204, None),
        ("POST", f"channels/{CALLER}/continue"): (204, None),
    }
    async with pool() as p, p.call_socket(table) as asterisk:
        query = await asterisk.wait_for("POST", f"channels/{CALLER}/variable")
        assert query == {"variable": "VOICEBOT_RESULT", "value": "error"}
        await asterisk.wait_for("POST", f"channels/{CALLER}/continue")
        done = [(m, u) for m, u, _ in asterisk.requests if m != "GET"]
        assert done == [("DELETE", f"bridges/{bridge}"), ("DELETE", f"channels/{media}"),
                        ("POST", f"channels/{CALLER}/variable"),
                        ("POST", f"channels/{CALLER}/continue")]  # fmt: skip
        # (another app's bridge, "theirs", is not touched)  # another app's bridge is not touched
        assert p.controller.calls == {}
        assert ("GET", "bridges") not in [(m, u) for m, u, _ in asterisk.requests]


async def test_a_draining_worker_hands_a_new_caller_back_as_busy_over_its_own_socket() -> None:
    table = {
        ("POST", f"channels/{CALLER}/variable"): (204, None),
        ("POST", f"channels/{CALLER}/continue"): (204, None),
    }
    async with pool() as p:
        p.controller.draining = True
        async with p.call_socket(table) as asterisk:
            await asterisk.send("StasisStart", channel=caller(), args=[])
            query = await asterisk.wait_for("POST", f"channels/{CALLER}/variable")
            assert query == {"variable": "VOICEBOT_RESULT", "value": "busy"}
            await asterisk.wait_for("POST", f"channels/{CALLER}/continue")
            await asyncio.sleep(1.3)  # past the wait for a StasisStart on a reconnected socket
            # A refused caller leaves nothing to clean up: its socket is not resynced.
            assert [m for m, _, _ in asterisk.requests] == ["POST", "POST"]
        assert p.controller.calls_refused == 1


async def test_a_socket_lost_mid_call_ends_the_call_without_further_requests() -> None:
    """Asterisk never answers the bridge request, then the socket closes: the call ends at
    once (not after the request timeout) and nothing is sent on the dead socket."""
    async with pool() as p:
        async with p.call_socket({}) as asterisk:
            await asterisk.send("StasisStart", channel=caller(), args=[])
            await asterisk.wait_for("POST", "bridges")
            assert CALLER in p.controller.calls
            sent_before_close = len(asterisk.requests)
        assert await p.controller.drain(2)  # no call left, long before the 10 s timeout
        assert len(asterisk.requests) == sent_before_close
        [summary] = p.controller.recent
        assert summary["result"] == "error"
        assert summary["app"] == APP
        assert "WebSocket closed" in summary["end_reason"]


async def test_a_call_set_up_and_talking_over_its_own_socket_ends_when_the_socket_closes() -> None:
    media, bridge = f"voicebot-media-{CALLER}", f"voicebot-bridge-{CALLER}"
    media_channel = {**caller(), "id": media, "name": "UnicastRTP/127.0.0.1:5000-0"}
    rtp = {"UNICASTRTP_LOCAL_ADDRESS": "127.0.0.1", "UNICASTRTP_LOCAL_PORT": "5000"}
    table = {
        ("POST", "bridges"): (200, {"id": bridge, "bridge_type": "mixing"}),
        ("POST", "channels/externalMedia"): (200, media_channel),
        ("GET", f"channels/{media}/variable"): lambda q: (200, {"value": rtp[q["variable"]]}),
        ("POST", f"channels/{CALLER}/answer"): (204, None),
        ("POST", f"bridges/{bridge}/addChannel"): (204, None),
    }
    async with pool() as p:
        async with p.call_socket(table) as asterisk:
            await asterisk.send("StasisStart", channel=caller(), args=[])
            query = await asterisk.wait_for("POST", "channels/externalMedia")
            assert query["app"] == APP  # its events come back on this socket
            assert query["external_host"].startswith("127.0.0.1:411")
            await asterisk.send("StasisStart", channel=media_channel, args=[])
            await asterisk.wait_for("POST", f"bridges/{bridge}/addChannel")
            [call] = p.controller.calls.values()
            for _ in range(250):  # the session starts right after the bridging
                if call.session is not None:
                    break
                await asyncio.sleep(0.02)
            assert call.route.app == APP
            sent_before_close = len(asterisk.requests)
        assert await p.controller.drain(2)  # the conversation is over at once
        assert len(asterisk.requests) == sent_before_close
        assert "WebSocket closed" in p.controller.recent[0]["end_reason"]


def one_call_table(caller_id: str = CALLER) -> tuple[dict[tuple[str, str], Any], dict[str, Any]]:
    """Asterisk's answers to the set-up of one call, and its media channel."""
    media, bridge = f"voicebot-media-{caller_id}", f"voicebot-bridge-{caller_id}"
    media_channel = {**caller(), "id": media, "name": "UnicastRTP/127.0.0.1:5000-0"}
    rtp = {"UNICASTRTP_LOCAL_ADDRESS": "127.0.0.1", "UNICASTRTP_LOCAL_PORT": "5000"}
    table = {
        ("POST", "bridges"): (200, {"id": bridge, "bridge_type": "mixing"}),
        ("POST", "channels/externalMedia"): (200, media_channel),
        ("GET", f"channels/{media}/variable"): lambda q: (200, {"value": rtp[q["variable"]]}),
        ("POST", f"channels/{caller_id}/answer"): (204, None),
        ("POST", f"bridges/{bridge}/addChannel"): (204, None),
        ("POST", f"channels/{caller_id}/variable"): (204, None),
        ("POST", f"channels/{caller_id}/continue"): (204, None),
        ("DELETE", f"channels/{media}"): (204, None),
        ("DELETE", f"bridges/{bridge}"): (204, None),
    }
    return table, media_channel


async def set_up(end: AsteriskEnd, media_channel: dict[str, Any]) -> None:
    await end.send("StasisStart", channel=caller(), args=[])
    await end.wait_for("POST", "channels/externalMedia")
    await end.send("StasisStart", channel=media_channel, args=[])
    await end.wait_for("POST", f"bridges/voicebot-bridge-{CALLER}/addChannel")


async def test_two_asterisks_callers_with_the_same_channel_id_are_both_served() -> None:
    """Two Asterisks of one pool without distinct systemnames give their callers the same
    channel id: calls are keyed by (Asterisk, channel id), each socket's events reach only its
    own call, and one caller's hangup leaves the other's call alone."""
    first_table, media_channel = one_call_table()
    second_table, _ = one_call_table()
    async with pool() as p, p.call_socket(first_table, asterisk_id="02:42:ac:11:00:02") as first:
        await set_up(first, media_channel)
        async with p.call_socket(second_table, asterisk_id="02:42:ac:11:00:03") as second:
            await set_up(second, media_channel)
            assert sorted(p.controller.calls) == [f"02:42:ac:11:00:02/{CALLER}",
                                                  f"02:42:ac:11:00:03/{CALLER}"]  # fmt: skip
            one, two = (p.controller.calls[f"02:42:ac:11:00:0{n}/{CALLER}"] for n in (2, 3))
            assert one.route is not two.route and p.controller.calls_refused == 0
            await second.send("ChannelHangupRequest", channel=caller(), cause=16)
            await second.send("StasisEnd", channel=caller())
            await asyncio.wait_for(asyncio.shield(two.task), 5)  # type: ignore[arg-type]
        assert list(p.controller.calls.values()) == [one] and not one.caller_gone
        assert one.task is not None and not one.task.done()
        assert p.controller.recent[-1]["asterisk"] == "02:42:ac:11:00:03"


async def test_a_twin_with_the_same_asterisk_and_channel_id_is_refused_busy() -> None:
    """The same (Asterisk id, channel id) on a second socket (twin boxes cloned with the same
    id and no systemname): the second caller is handed back busy over its own socket, and its
    events (a key, a hangup) never reach the first caller's call."""
    first_table, media_channel = one_call_table()
    second_table = {
        ("POST", f"channels/{CALLER}/variable"): (204, None),
        ("POST", f"channels/{CALLER}/continue"): (204, None),
    }
    async with pool() as p, p.call_socket(first_table) as first:
        await set_up(first, media_channel)
        [call] = p.controller.calls.values()
        async with p.call_socket(second_table) as second:
            await second.send("StasisStart", channel=caller(), args=[])
            query = await second.wait_for("POST", f"channels/{CALLER}/variable")
            assert query == {"variable": "VOICEBOT_RESULT", "value": "busy"}
            await second.wait_for("POST", f"channels/{CALLER}/continue")
            await second.send("ChannelDtmfReceived", channel=caller(), digit="1", duration_ms=90)
            await second.send("ChannelHangupRequest", channel=caller(), cause=16)
            await second.send("StasisEnd", channel=caller())
            await asyncio.sleep(0.2)
        assert p.controller.calls == {CALLER: call} and not call.caller_gone
        assert call.task is not None and not call.task.done()
        assert p.controller.calls_refused == 1
        assert [(m, u) for m, u, _ in first.requests if u.startswith(f"channels/{CALLER}/")] == [
            ("POST", f"channels/{CALLER}/answer")
        ]
