"""ARI event parsing and EventStream against the in-process FakeAri (real WebSocket)."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
from collections.abc import AsyncIterator
from typing import Any, Literal

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from yarl import URL

from tests.support.fakeari import FakeAri
from tests.support.secrets import PASSWORD, assert_no_secret, exception_texts, log_texts
from voicebot.ari.events import (
    ChannelDestroyed,
    ChannelDtmfReceived,
    ChannelHangupRequest,
    ChannelStateChange,
    ChannelVarset,
    Dial,
    Event,
    EventStream,
    StasisEnd,
    StasisStart,
    UnknownEvent,
    ari_events_url,
    decode_frame,
    parse_event,
)
from voicebot.config import AriConfig
from voicebot.errors import AriAuthError

TS = "2024-10-01T09:15:02.481+0000"
CHANNEL: dict[str, Any] = {
    "id": "1727774102.7",
    "name": "PJSIP/1000-00000004",
    "state": "Ring",
    "protocol_id": "6bd1c3a4-1c0e@192.168.1.20",
    "caller": {"name": "Alice", "number": "1000"},
    "connected": {"name": "", "number": ""},
    "accountcode": "",
    "dialplan": {
        "context": "from-internal",
        "exten": "800",
        "priority": 2,
        "app_name": "Stasis",
        "app_data": "voicebot,demo,en",
    },
    "creationtime": "2024-10-01T09:15:02.470+0000",
    "language": "en",
}


def event(type_: str, **fields: Any) -> dict[str, Any]:
    return {
        "type": type_,
        "timestamp": TS,
        "asterisk_id": "02:42:ac:11:00:02",
        "application": "voicebot",
        **fields,
    }


# --- parse_event --------------------------------------------------------------------------


def test_stasis_start() -> None:
    ev = parse_event(event("StasisStart", args=["demo", "en"], channel=CHANNEL))
    assert isinstance(ev, StasisStart)
    assert (ev.type, ev.application, ev.timestamp) == ("StasisStart", "voicebot", TS)
    assert ev.args == ["demo", "en"]
    assert ev.channel.id == "1727774102.7"
    assert ev.channel.caller_number == "1000"
    assert ev.channel.extension == "800"
    assert ev.replace_channel is None


def test_stasis_start_with_replace_channel() -> None:
    old = {**CHANNEL, "id": "1727774100.1", "name": "PJSIP/2000-00000001"}
    ev = parse_event(event("StasisStart", args=[], channel=CHANNEL, replace_channel=old))
    assert isinstance(ev, StasisStart)
    assert ev.replace_channel is not None and ev.replace_channel.id == "1727774100.1"


def test_channel_events() -> None:
    ev: Event = parse_event(event("StasisEnd", channel=CHANNEL))
    assert isinstance(ev, StasisEnd) and ev.channel.name == "PJSIP/1000-00000004"

    ev = parse_event(event("ChannelHangupRequest", cause=16, channel=CHANNEL))
    assert isinstance(ev, ChannelHangupRequest) and ev.cause == 16
    ev = parse_event(event("ChannelHangupRequest", soft=True, channel=CHANNEL))
    assert isinstance(ev, ChannelHangupRequest) and ev.cause is None

    ev = parse_event(
        event(
            "ChannelDestroyed",
            cause=16,
            cause_txt="Normal Clearing",
            channel={**CHANNEL, "state": "Down"},
        )
    )
    assert isinstance(ev, ChannelDestroyed)
    assert (ev.cause, ev.cause_txt, ev.channel.state) == (16, "Normal Clearing", "Down")

    ev = parse_event(event("ChannelDtmfReceived", digit="#", duration_ms=120, channel=CHANNEL))
    assert isinstance(ev, ChannelDtmfReceived) and (ev.digit, ev.duration_ms) == ("#", 120)

    ev = parse_event(event("ChannelStateChange", channel={**CHANNEL, "state": "Up"}))
    assert isinstance(ev, ChannelStateChange) and ev.channel.state == "Up"


def test_channel_varset_with_and_without_channel() -> None:
    ev = parse_event(
        event("ChannelVarset", variable="UNICASTRTP_LOCAL_PORT", value="17000", channel=CHANNEL)
    )
    assert isinstance(ev, ChannelVarset)
    assert ev.channel is not None
    assert (ev.variable, ev.value) == ("UNICASTRTP_LOCAL_PORT", "17000")
    ev = parse_event(event("ChannelVarset", variable="GLOBAL_X", value=""))
    assert isinstance(ev, ChannelVarset) and ev.channel is None


def test_dial_progress_of_an_originated_call() -> None:
    ev = parse_event(event("Dial", peer=CHANNEL, dialstatus="BUSY"))
    assert isinstance(ev, Dial) and ev.peer.id == CHANNEL["id"] and ev.dialstatus == "BUSY"
    # The first Dial of a call has no status yet (Asterisk sends it empty or leaves it out).
    assert parse_event(event("Dial", peer=CHANNEL)).dialstatus == ""  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="Dial: missing key 'peer'"):
        parse_event(event("Dial", dialstatus=""))


def test_unknown_event_keeps_raw() -> None:
    data = event("ChannelEnteredBridge", bridge={"id": "b1"}, channel=CHANNEL)
    ev = parse_event(data)
    assert isinstance(ev, UnknownEvent)
    assert ev.type == "ChannelEnteredBridge"
    assert ev.application == "voicebot"
    assert ev.raw["bridge"] == {"id": "b1"}


@pytest.mark.parametrize(
    ("data", "pattern"),
    [
        (event("StasisStart", args=[]), r"StasisStart: missing key 'channel'"),
        (
            event("ChannelDestroyed", cause=16, channel=CHANNEL),
            r"ChannelDestroyed: missing key 'cause_txt'",
        ),
        (
            event("ChannelDtmfReceived", duration_ms=100, channel=CHANNEL),
            r"ChannelDtmfReceived: missing key 'digit'",
        ),
        (
            event("ChannelDtmfReceived", digit="1", duration_ms="x", channel=CHANNEL),
            r"ChannelDtmfReceived: expected an integer for 'duration_ms'",
        ),
        (event("ChannelVarset", value="1"), r"ChannelVarset: missing key 'variable'"),
        (
            event("StasisEnd", channel={"name": "x", "state": "Up"}),
            r"StasisEnd: bad 'channel': channel: missing field 'id'",
        ),
        (
            event("StasisStart", args="demo", channel=CHANNEL),
            r"StasisStart: expected a list for 'args'",
        ),
        ({"application": "voicebot"}, r"missing key 'type'"),
        (["not", "an", "object"], r"expected a JSON object"),
    ],
)
def test_malformed_events_raise_value_error(data: Any, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        parse_event(data)


# --- EventStream --------------------------------------------------------------------------


class Collector:
    """Runs ``stream.events()`` in a task and queues what it yields."""

    def __init__(self, stream: EventStream) -> None:
        self.stream = stream
        self.queue: asyncio.Queue[Event] = asyncio.Queue()
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for ev in self.stream.events():
            await self.queue.put(ev)

    async def next(self, within_s: float = 5.0) -> Event:
        return await asyncio.wait_for(self.queue.get(), within_s)

    async def next_of(self, kind: type, within_s: float = 5.0) -> Any:
        while True:
            ev = await self.next(within_s)
            if isinstance(ev, kind):
                return ev

    async def close(self) -> None:
        await self.stream.close()
        await asyncio.wait_for(self.task, 5.0)


@pytest.fixture
async def fake() -> AsyncIterator[FakeAri]:
    async with FakeAri() as server:
        yield server


async def test_stream_yields_call_events(fake: FakeAri) -> None:
    events = Collector(EventStream(fake.config()))
    await fake.wait_for_ws()
    channel_id = await fake.add_caller(args=["demo"], caller_number="555")
    await fake.send_dtmf_event(channel_id, "5")
    await fake.caller_hangup(channel_id)

    start = await events.next()
    assert isinstance(start, StasisStart)
    assert (start.channel.id, start.args, start.channel.caller_number) == (
        channel_id,
        ["demo"],
        "555",
    )
    dtmf = await events.next()
    assert isinstance(dtmf, ChannelDtmfReceived) and dtmf.digit == "5"
    assert isinstance(await events.next(), ChannelHangupRequest)
    assert isinstance(await events.next(), StasisEnd)
    destroyed = await events.next()
    assert isinstance(destroyed, ChannelDestroyed) and destroyed.cause == 16
    await events.close()
    assert events.task.done() and events.task.exception() is None


async def test_stream_uses_api_key_when_asked(fake: FakeAri) -> None:
    events = Collector(EventStream(fake.config(), auth="api_key"))
    await fake.wait_for_ws()
    await fake.emit({"type": "BridgeCreated", "bridge": {"id": "b1"}})
    assert (await events.next()).type == "BridgeCreated"
    await events.close()


async def test_malformed_frames_are_skipped(
    fake: FakeAri, caplog: pytest.LogCaptureFixture
) -> None:
    events = Collector(EventStream(fake.config()))
    await fake.wait_for_ws()
    await fake.send_raw("{not json")
    await fake.emit({"type": "ChannelDestroyed", "channel": CHANNEL})  # no cause
    await fake.emit({"type": "StasisEnd", "channel": CHANNEL})
    assert isinstance(await events.next(), StasisEnd)
    assert sum("Skipping malformed ARI event" in r.message for r in caplog.records) == 2
    await events.close()


async def test_frames_python_would_choke_on_are_skipped_and_the_stream_goes_on(
    fake: FakeAri, caplog: pytest.LogCaptureFixture
) -> None:
    events = Collector(EventStream(fake.config()))
    await fake.wait_for_ws()
    await fake.send_raw("[" * 100_000 + "]" * 100_000)  # nested past Python's recursion limit
    dtmf = {"type": "ChannelDtmfReceived", "channel": CHANNEL, "digit": "1"}
    for value in ("Infinity", "-Infinity", "NaN", "1e999"):
        await fake.send_raw(json.dumps(dtmf)[:-1] + f', "duration_ms": {value}}}')
    await fake.emit({"type": "StasisEnd", "channel": CHANNEL})
    assert isinstance(await events.next(), StasisEnd)
    assert sum("Skipping malformed ARI event" in r.message for r in caplog.records) == 5
    await events.close()


def test_decode_frame_takes_plain_json_only() -> None:
    assert decode_frame('{"a": [1, 2.5, null]}') == {"a": [1, 2.5, None]}
    refused = [
        ("[" * 100_000, "nested too deep"),
        ("NaN", "NaN is not a JSON value"),
        ('{"x": Infinity}', "Infinity is not a JSON value"),
        ("{", "Expecting property name"),
    ]
    for text, why in refused:
        with pytest.raises(ValueError, match=why):
            decode_frame(text)


async def test_on_connected_called_and_reconnect_after_drop(
    fake: FakeAri, caplog: pytest.LogCaptureFixture
) -> None:
    connected: list[int] = []

    async def on_connected() -> None:
        connected.append(fake.open_websockets)

    stream = EventStream(fake.config(), on_connected=on_connected)
    events = Collector(stream)
    await fake.wait_for_ws(1)
    await fake.emit({"type": "StasisEnd", "channel": CHANNEL})
    await events.next()
    assert connected == [1]

    with caplog.at_level(logging.WARNING, logger="voicebot.ari.events"):
        await fake.drop_websockets()
        await fake.wait_for_ws(2)
        await fake.emit({"type": "StasisEnd", "channel": CHANNEL})
        assert isinstance(await events.next(), StasisEnd)
    assert connected == [1, 1]
    assert stream.connect_count == 2
    assert any("retrying in" in r.message for r in caplog.records)
    await events.close()


async def test_on_connected_failure_does_not_stop_stream(fake: FakeAri) -> None:
    async def on_connected() -> None:
        raise RuntimeError("reconcile failed")

    events = Collector(EventStream(fake.config(), on_connected=on_connected))
    await fake.wait_for_ws()
    await fake.emit({"type": "StasisEnd", "channel": CHANNEL})
    assert isinstance(await events.next(), StasisEnd)
    await events.close()


async def test_retries_with_backoff_while_asterisk_is_down(
    fake: FakeAri, caplog: pytest.LogCaptureFixture
) -> None:
    await fake.stop()
    config = fake.config(retry_initial_s=0.01, retry_max_s=0.08)
    # random_fn=0 removes the jitter so the doubling is visible exactly.
    events = Collector(EventStream(config, random_fn=lambda: 0.0))
    pattern = re.compile(r"Asterisk ARI not reachable at (\S+) \((.+)\); retrying in ([\d.]+) s")
    with caplog.at_level(logging.WARNING, logger="voicebot.ari.events"):
        for _ in range(200):
            if sum(bool(pattern.search(r.message)) for r in caplog.records) >= 6:
                break
            await asyncio.sleep(0.02)
        matches = [m for r in caplog.records if (m := pattern.search(r.message))]
        assert len(matches) >= 6
        assert matches[0].group(1) == fake.url
        assert all(r.levelno == logging.WARNING for r in caplog.records)
        assert [float(m.group(3)) for m in matches[:6]] == [0.01, 0.02, 0.04, 0.08, 0.08, 0.08]

        await fake.start()  # same port
        await fake.wait_for_ws(1)
        await fake.emit({"type": "StasisEnd", "channel": CHANNEL})
        assert isinstance(await events.next(), StasisEnd)
    await events.close()


async def test_jitter_stays_below_the_delay(fake: FakeAri) -> None:
    stream = EventStream(fake.config(retry_max_s=4.0), random_fn=lambda: 1.0)
    assert stream._next_delay(2.0) == (pytest.approx(1.6), 4.0)
    assert stream._next_delay(4.0) == (pytest.approx(3.2), 4.0)


async def test_unreachable_from_the_start_then_asterisk_appears(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    fake = FakeAri()
    fake._port = port  # start() binds the port the stream is already dialling
    config = AriConfig(
        url=f"http://127.0.0.1:{port}",
        password=fake.password,
        retry_initial_s=0.01,
        retry_max_s=0.02,
    )
    connected = asyncio.Event()

    async def on_connected() -> None:
        connected.set()

    with caplog.at_level(logging.WARNING, logger="voicebot.ari.events"):
        events = Collector(EventStream(config, on_connected=on_connected))
        for _ in range(100):
            if caplog.records:
                break
            await asyncio.sleep(0.01)
        assert f"not reachable at http://127.0.0.1:{port}" in caplog.records[0].message
        await fake.start()
        try:
            await asyncio.wait_for(connected.wait(), 5.0)
        finally:
            await events.close()
            await fake.stop()


async def test_wrong_password_raises_without_retry(
    fake: FakeAri, caplog: pytest.LogCaptureFixture
) -> None:
    stream = EventStream(fake.config(password="wrong"))
    with pytest.raises(AriAuthError) as info:
        async for _ in stream.events():
            pass
    assert str(info.value) == (
        "ARI rejected user 'voicebot': wrong ari.user/ari.password (HTTP 401)"
    )
    assert info.value.status == 401
    assert fake.auth_failures == 1
    assert not [r for r in caplog.records if "retrying" in r.message]


async def test_close_while_waiting_to_retry(fake: FakeAri) -> None:
    await fake.stop()
    events = Collector(EventStream(fake.config(retry_initial_s=30.0, retry_max_s=30.0)))
    await asyncio.sleep(0.05)
    await events.close()  # must not wait out the 30 s back-off


# --- the events URL -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "events"),
    [
        ("http://127.0.0.1:8088", "ws://127.0.0.1:8088/ari/events"),
        ("http://127.0.0.1:8088/ari/", "ws://127.0.0.1:8088/ari/events"),
        ("https://pbx.example:8089", "wss://pbx.example:8089/ari/events"),
        ("https://pbx.example:8089/ari", "wss://pbx.example:8089/ari/events"),
        ("https://[2001:db8::5]:8089", "wss://[2001:db8::5]:8089/ari/events"),
    ],
)
def test_events_url_is_ws_for_http_and_wss_for_https(url: str, events: str) -> None:
    assert ari_events_url(AriConfig(url=url)) == events
    assert EventStream(AriConfig(url=url)).url == events


async def test_the_stream_connects_over_ws(fake: FakeAri, caplog: pytest.LogCaptureFixture) -> None:
    connected = asyncio.Event()

    async def on_connected() -> None:
        connected.set()

    with caplog.at_level(logging.INFO, logger="voicebot.ari.events"):
        events = Collector(EventStream(fake.config(), on_connected=on_connected))
        await asyncio.wait_for(connected.wait(), 5)
        await events.close()
    assert f"Connected to Asterisk ARI events at ws://127.0.0.1:{fake.port}/ari/events" in (
        caplog.text
    )


# --- the password stays secret, also in the URL of api_key mode ----------------------------


async def run_until_retrying(stream: EventStream, caplog: pytest.LogCaptureFixture) -> None:
    """Let the stream fail to connect a few times (each a "retrying" warning), then close it."""
    events = Collector(stream)
    for _ in range(300):
        if sum("retrying in" in r.message for r in caplog.records) >= 3:
            break
        await asyncio.sleep(0.01)
    await events.close()
    assert sum("retrying in" in r.message for r in caplog.records) >= 3


@pytest.mark.parametrize("auth", ["basic", "api_key"])
async def test_refused_port_logs_no_password(
    auth: Literal["basic", "api_key"], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    config = AriConfig(url=f"http://127.0.0.1:{port}", password=PASSWORD, retry_initial_s=0.01)
    await run_until_retrying(EventStream(config, auth=auth), caplog)
    assert_no_secret(config, log_texts(caplog.records))


@pytest.mark.parametrize("auth", ["basic", "api_key"])
async def test_401_names_no_password(
    fake: FakeAri, auth: Literal["basic", "api_key"], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    config = fake.config(password=PASSWORD)
    with pytest.raises(AriAuthError) as info:
        async for _ in EventStream(config, auth=auth).events():
            pass
    assert fake.auth_failures == 1
    assert_no_secret(config, exception_texts(info.value) + log_texts(caplog.records))


def handshake_refuser(status: int) -> web.Application:
    """An "Asterisk" whose /ari/events answers ``status`` with no WebSocket upgrade."""

    async def events(request: web.Request) -> web.Response:
        # Echo the query the way a proxy's error page might, to prove the bot does not relay it.
        return web.Response(status=status, text=f"no websocket for {request.query_string}")

    app = web.Application()
    app.router.add_get("/ari/events", events)
    return app


@pytest.mark.parametrize("status", [200, 400, 502])
async def test_a_bad_handshake_logs_no_password(
    status: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with TestServer(handshake_refuser(status)) as server:
        config = AriConfig(url=str(server.make_url("/")), password=PASSWORD, retry_initial_s=0.01)
        await run_until_retrying(EventStream(config, auth="api_key"), caplog)
    assert any(
        f"WebSocket upgrade refused with HTTP {status}" in t for t in log_texts(caplog.records)
    )
    assert_no_secret(config, log_texts(caplog.records))


async def test_an_unexpected_client_error_is_redacted(
    fake: FakeAri, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Whatever aiohttp error carries the URL in its text, the log line shows no password.
    config = fake.config(password=PASSWORD, retry_initial_s=0.01)
    stream = EventStream(config, auth="api_key")

    async def failing_connect(session: aiohttp.ClientSession) -> None:
        url = URL(stream.url).with_query(api_key=f"voicebot:{PASSWORD}")
        raise aiohttp.InvalidURL(url, "made up for the test")

    monkeypatch.setattr(stream, "_connect", failing_connect)
    caplog.set_level(logging.DEBUG)
    await run_until_retrying(stream, caplog)
    assert any("api_key=voicebot:***" in t for t in log_texts(caplog.records))
    assert_no_secret(config, log_texts(caplog.records))
