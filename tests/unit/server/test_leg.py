"""One caller's ARI side: why and how a call ended as /calls says it, the names of what a
call creates in Asterisk, and handing a caller back to the dialplan (against a fake ARI)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.doubles import ListAsr, ToneTts
from tests.support.fakeari import FakeAri, handed_back
from voicebot.ari.client import AriClient
from voicebot.ari.models import Channel
from voicebot.ari.route import AriRoute
from voicebot.call import SpeechServices, TranscriptLine
from voicebot.config import AriConfig, Config
from voicebot.dialog.parser import load_script, parse_script
from voicebot.errors import AriError, AriNotFoundError
from voicebot.media.codecs import ULAW
from voicebot.media.endpoint import PortAllocator, RtpEndpoint
from voicebot.runtime import Runtime
from voicebot.server.leg import (
    ActiveCall,
    CallResult,
    Ending,
    EndReason,
    MediaArrivals,
    _ipv4_or,
    bridge_app,
    bridge_name,
    call_variables,
    hand_back,
    quietly,
    release_media,
)

ROOT = Path(__file__).resolve().parents[3]


def active_call(route: AriRoute, caller_id: str = "1.1", **fields: Any) -> ActiveCall:
    caller = Channel(id=caller_id, name="PJSIP/1000-00000001", state="Up",
                     caller_number="5550100", extension="100")  # fmt: skip
    return ActiveCall(caller=caller, script_name="demo", route=route, **fields)


def offline_route() -> AriRoute:
    """A route whose client never connects (what is tested sends nothing)."""
    return AriRoute(AriClient(AriConfig()), "voicebot", asterisk_id="02:42:ac:11:00:02")


async def until_cancelled() -> None:
    await asyncio.Event().wait()


@pytest.fixture
async def fake() -> AsyncIterator[FakeAri]:
    async with FakeAri() as server:
        yield server


@pytest.fixture
async def route(fake: FakeAri) -> AsyncIterator[AriRoute]:
    async with AriClient(fake.config()) as ari:
        yield AriRoute(ari, fake.app)


# -- how a call ended, as /calls and the log say it ------------------------------------------

ENDINGS = [
    (EndReason.CALLER_HANGUP, "", "caller hangup"),
    (EndReason.MEDIA_ENDED, "", "media channel ended"),
    (EndReason.BOT_HANGUP, "", "bot-hangup"),
    (EndReason.MACHINE, "", "machine"),
    (EndReason.TRANSFER, "PJSIP/operator", "transfer to PJSIP/operator"),
    (EndReason.TRANSFER, "endpoint PJSIP/operator", "transfer to endpoint PJSIP/operator"),
    (EndReason.TRANSFER, "support,100,1", "transfer to support,100,1"),
    (EndReason.VANISHED, "Channel not found", "channel vanished during set-up: Channel not found"),
    (EndReason.ERROR, "no script named 'x'", "error: no script named 'x'"),
    (EndReason.CRASH, "RuntimeError('boom')", "internal error: RuntimeError('boom')"),
    (EndReason.SOCKET_CLOSED, "", "its ARI WebSocket closed mid-call"),
    (EndReason.GONE_AT_RESYNC, "", "caller channel gone (found on reconnecting to ARI)"),
    # The watchdog's sentence, as it is.
    (EndReason.OVERDUE, "no RTP for calls.rtp_timeout_s (60 s)",
     "no RTP for calls.rtp_timeout_s (60 s)"),
    (EndReason.OVERDUE, "longer than calls.max_duration_s (600 s)",
     "longer than calls.max_duration_s (600 s)"),
    (EndReason.SHUTDOWN, "", "bot shutting down"),
    (EndReason.CONSOLE, "", "ended from the console"),
]  # fmt: skip


@pytest.mark.parametrize(("reason", "detail", "text"), ENDINGS)
def test_an_ending_reads_as_calls_shows_it(reason: EndReason, detail: str, text: str) -> None:
    assert Ending(reason, detail).text == text


def test_every_reason_has_its_text() -> None:
    assert {reason for reason, _, _ in ENDINGS} == set(EndReason)


@pytest.mark.parametrize(
    ("result", "value"),
    [(CallResult.COMPLETED, "completed"), (CallResult.TRANSFERRED, "transferred"),
     (CallResult.CALLER_HANGUP, "caller_hangup"), (CallResult.ERROR, "error"),
     (CallResult.BUSY, "busy"), (CallResult.STOPPED, "stopped")],
)  # fmt: skip
def test_results_read_as_the_dialplan_and_metrics_see_them(result: CallResult, value: str) -> None:
    assert result.value == value == str(result)


@pytest.mark.parametrize(("said", "reason"), [("bot-hangup", EndReason.BOT_HANGUP),
                                              ("transfer", EndReason.TRANSFER)])  # fmt: skip
def test_a_sessions_end_is_a_reason(said: str, reason: EndReason) -> None:
    """``CallEnd.reason`` ("bot-hangup" | "transfer") becomes the call's ending as it is."""
    assert EndReason(said) is reason


# -- ending a call ---------------------------------------------------------------------------


def test_the_first_reason_stands() -> None:
    call = active_call(offline_route())
    call.end(EndReason.CALLER_HANGUP)
    call.end(EndReason.ERROR, "too late")
    assert call.ending == Ending(EndReason.CALLER_HANGUP)


async def test_stop_cancels_the_task_with_its_reason_and_fails_the_call_if_asked() -> None:
    failed = active_call(offline_route(), task=asyncio.create_task(until_cancelled()))
    failed.stop(EndReason.OVERDUE, "no RTP for calls.rtp_timeout_s (60 s)", failed=True)
    plain = active_call(offline_route(), task=asyncio.create_task(until_cancelled()))
    plain.stop(EndReason.SHUTDOWN)
    assert failed.ending == Ending(EndReason.OVERDUE, "no RTP for calls.rtp_timeout_s (60 s)")
    assert failed.result is CallResult.ERROR
    assert plain.ending == Ending(EndReason.SHUTDOWN) and plain.result is None
    for call in (failed, plain):
        assert call.task is not None
        await asyncio.gather(call.task, return_exceptions=True)
        assert call.task.cancelled()


async def test_stop_keeps_an_earlier_reason() -> None:
    call = active_call(offline_route(), task=asyncio.create_task(until_cancelled()))
    call.end(EndReason.CALLER_HANGUP)
    call.stop(EndReason.SHUTDOWN, failed=True)
    assert call.ending == Ending(EndReason.CALLER_HANGUP)
    assert call.task is not None
    await asyncio.gather(call.task, return_exceptions=True)


async def test_stop_leaves_a_call_not_started_or_tearing_down_alone() -> None:
    not_started = active_call(offline_route())
    not_started.stop(EndReason.SHUTDOWN, failed=True)
    task = asyncio.create_task(until_cancelled())
    tearing_down = active_call(offline_route(), task=task, tearing_down=True)
    tearing_down.stop(EndReason.SHUTDOWN, failed=True)
    for call in (not_started, tearing_down):
        assert call.ending is None and call.result is None
    assert not task.cancelling()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


# -- /calls ----------------------------------------------------------------------------------


def test_summary_of_a_call_refused_before_its_session() -> None:
    call = active_call(offline_route(), result=CallResult.BUSY)
    call.end(EndReason.ERROR, "no script named 'x'")
    summary = call.summary()
    assert summary == {
        "call_id": "1.1",
        "caller": "5550100",
        "script": "demo",
        "app": "voicebot",
        "asterisk": "02:42:ac:11:00:02",
        "started": call.started,
        "end_reason": "error: no script named 'x'",
        "result": "busy",
        "transcript": [],
        "turns": [],
        "events": [],
        "rtp_port": None,
        "rtp": {},
        "pacer": {},
        "recording": None,
    }


@pytest.mark.parametrize(("keys_recorded", "key_shown"), [(True, "#4"), (False, "#")])
async def test_summary_shows_which_key_only_when_keys_are_recorded(
    keys_recorded: bool, key_shown: str
) -> None:
    allocator = PortAllocator("127.0.0.1", 41150, 41159)
    endpoint = await RtpEndpoint.open(allocator, "127.0.0.1")
    try:
        runtime = Runtime(Config(), SpeechServices(ListAsr([]), ToneTts()))
        script = load_script(ROOT / "prompts" / "demo.yaml")
        session = runtime.new_session(call_id="1.1", endpoint=endpoint, codec=ULAW, script=script)
        session.transcript += [
            TranscriptLine("bot", "Welcome.", 0.1, state="main"),
            TranscriptLine("caller", "#4", 1.2, state="main", intent="hours"),
            TranscriptLine("caller", "4 2 1 7", 2.5, state="main"),
        ]
        call = active_call(offline_route(), session=session, endpoint=endpoint,
                           keys_recorded=keys_recorded)  # fmt: skip
        summary = call.summary()
        assert [line["text"] for line in summary["transcript"]] == ["Welcome.", key_shown,
                                                                   "4 2 1 7"]  # fmt: skip
        assert summary["transcript"][1] == {"who": "caller", "text": key_shown, "t": 1.2,
                                            "state": "main", "intent": "hours"}  # fmt: skip
        # The session's own transcript keeps the key (the recorder applies the setting itself).
        assert session.transcript[1].text == "#4"
        assert summary["rtp_port"] == endpoint.local_port
        assert summary["rtp"]["received"] == 0 and summary["pacer"]["frames_sent"] == 0
        assert summary["turns"] == []
        await runtime.close()
    finally:
        await endpoint.aclose()


# -- names in Asterisk -----------------------------------------------------------------------


def test_bridge_names_tell_whose_they_are() -> None:
    assert bridge_app(bridge_name("voicebot", "17.3")) == "voicebot"
    assert bridge_app(bridge_name("voicebot-ops2", "17.3")) == "voicebot-ops2"
    assert bridge_app(bridge_name("a:b", "17.3")) == "a:b"
    for other in ("voicebot-17.3", "mine", "voicebot::17.3", "voicebot:app:", ""):
        assert bridge_app(other) is None, other


def test_a_recording_names_the_bot_by_an_ipv4_address_even_when_advertised_by_name() -> None:
    assert _ipv4_or("192.0.2.7", "127.0.0.1") == "192.0.2.7"
    assert _ipv4_or("bot.example", "10.1.2.3") == "10.1.2.3"
    assert _ipv4_or("bot.example", "::") == "0.0.0.0"


# -- our media channels entering Stasis ------------------------------------------------------


async def test_a_media_channel_is_awaited_only_while_its_call_expects_it() -> None:
    arrivals = MediaArrivals()
    arrivals.arrived("voicebot-media-1.1")  # nobody waits yet: ignored
    with arrivals.expect("voicebot-media-1.1") as in_stasis:
        assert arrivals.pending() == {"voicebot-media-1.1"}
        assert not in_stasis.is_set()
        arrivals.arrived("voicebot-media-2.2")  # another call's
        assert not in_stasis.is_set()
        arrivals.arrived("voicebot-media-1.1")
        assert in_stasis.is_set()
        await in_stasis.wait()
    assert arrivals.pending() == set()
    arrivals.arrived("voicebot-media-1.1")  # late, after the call gave up: ignored


async def test_a_media_channel_expected_again_waits_afresh() -> None:
    arrivals = MediaArrivals()
    with arrivals.expect("voicebot-media-1.1"):
        arrivals.arrived("voicebot-media-1.1")
    with arrivals.expect("voicebot-media-1.1") as in_stasis:
        assert not in_stasis.is_set()


# -- handing a caller back to the dialplan ---------------------------------------------------


@pytest.mark.parametrize("result", [CallResult.BUSY, CallResult.ERROR])
async def test_hand_back_sets_the_result_then_continues_in_the_dialplan(
    fake: FakeAri, route: AriRoute, result: CallResult
) -> None:
    caller = await fake.add_caller()
    assert await hand_back(route, caller, result) is True
    assert handed_back(fake, caller) == result.value
    assert [(m, p) for m, p, _ in fake.requests] == [
        ("POST", f"/channels/{caller}/variable"),
        ("POST", f"/channels/{caller}/continue"),
    ]
    assert caller in fake.channels  # never hung up: the dialplan decides


async def test_hand_back_of_a_caller_gone_is_false(fake: FakeAri, route: AriRoute) -> None:
    assert await hand_back(route, "gone.1", CallResult.ERROR) is False
    assert handed_back(fake, "gone.1") is None


async def test_hand_back_on_a_lost_route_sends_nothing(fake: FakeAri, route: AriRoute) -> None:
    caller = await fake.add_caller()
    route.lost = True
    assert await hand_back(route, caller, CallResult.ERROR) is False
    assert fake.requests == []


async def test_a_caller_asterisk_will_not_continue_is_hung_up_not_left_in_limbo(
    fake: FakeAri, route: AriRoute, caplog: pytest.LogCaptureFixture
) -> None:
    caller = await fake.add_caller()
    fake.fail_next(500, "Internal Server Error", path_contains="/continue")
    assert await hand_back(route, caller, CallResult.ERROR) is False
    assert caller not in fake.channels
    assert ("DELETE", f"/channels/{caller}") in [(m, p) for m, p, _ in fake.requests]
    assert f"call {caller}: cannot hand back to the dialplan" in caplog.text


async def test_a_failing_hangup_after_a_refused_hand_back_is_not_raised(
    fake: FakeAri, route: AriRoute
) -> None:
    caller = await fake.add_caller()
    fake.fail_next(500, "Internal Server Error", path_contains=f"/channels/{caller}", times=2)
    assert await hand_back(route, caller, CallResult.ERROR) is False
    assert [(m, p) for m, p, _ in fake.requests] == [
        ("POST", f"/channels/{caller}/variable"),
        ("DELETE", f"/channels/{caller}"),
    ]


# -- the rest of a call's ARI side -----------------------------------------------------------


async def test_channel_variables_a_script_uses_are_read_and_unset_ones_are_empty(
    fake: FakeAri, route: AriRoute
) -> None:
    caller = await fake.add_caller("1.1", caller_number="5550100", exten="100")
    fake.variables[caller]["TOPIC"] = "billing"
    script = parse_script(
        "start: hello\nstates:\n  hello:\n"
        '    say: "Hello {caller_id} at {called}: {channel.TOPIC} {channel.UNSET}."\n'
        "    hangup: true\n",
        "greet.yaml",
    )
    variables = await call_variables(active_call(route, caller), script)
    assert variables == {"caller_id": "5550100", "called": "100", "channel.TOPIC": "billing",
                         "channel.UNSET": ""}  # fmt: skip


async def test_media_is_released_once(fake: FakeAri, route: AriRoute) -> None:
    media = await fake.add_caller("voicebot-media-1.1")
    fake.bridges["voicebot-bridge-1.1"] = {"id": "voicebot-bridge-1.1", "channels": []}
    call = active_call(route, media_channel_id=media, bridge_id="voicebot-bridge-1.1")
    await release_media(call)
    await release_media(call)
    assert [(m, p) for m, p, _ in fake.requests] == [
        ("DELETE", "/channels/voicebot-media-1.1"),
        ("DELETE", "/bridges/voicebot-bridge-1.1"),
    ]
    assert call.media_channel_id is None and call.bridge_id is None


async def test_media_of_a_call_on_a_lost_route_is_forgotten_without_a_request(
    fake: FakeAri, route: AriRoute
) -> None:
    call = active_call(route, media_channel_id="voicebot-media-1.1",
                       bridge_id="voicebot-bridge-1.1")  # fmt: skip
    route.lost = True
    await release_media(call)
    assert fake.requests == []
    assert call.media_channel_id is None and call.bridge_id is None


async def test_quietly_ignores_what_is_gone_logs_for_a_call_and_raises_for_a_resync(
    fake: FakeAri, route: AriRoute, caplog: pytest.LogCaptureFixture
) -> None:
    await quietly(route.ari.hangup("gone.1"))  # 404: the normal race at hangup
    call = active_call(route)
    fake.fail_next(500, "Internal Server Error")
    with caplog.at_level(logging.WARNING):
        await quietly(route.ari.destroy_bridge("b-1"), call, "destroy bridge")
    assert "call 1.1: could not destroy bridge:" in caplog.text
    fake.fail_next(500, "Internal Server Error")
    with pytest.raises(AriError) as raised:
        await quietly(route.ari.destroy_bridge("b-1"))
    assert not isinstance(raised.value, AriNotFoundError)
