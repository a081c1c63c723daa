"""The call controller against an in-process fake ARI server and a real UDP RTP peer."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest

from tests.support.controller import allison, harness
from tests.support.doubles import BrokenTts, StreamingListAsr, ToneTts
from tests.support.fakeari import handed_back
from voicebot.capture.wav import read_wav
from voicebot.config import CallsConfig, ResultsConfig, WebhookConfig
from voicebot.media.codecs import resample
from voicebot.media.pacer import Pacer
from voicebot.media.peer import RtpPeer
from voicebot.server.leg import MEDIA_CHANNEL_PREFIX, CallResult, EndReason


def call_tasks() -> list[str]:
    return [t.get_name() for t in asyncio.all_tasks() if t.get_name().startswith("call-")]


async def test_call_set_up_in_order_converses_and_tears_down_on_caller_hangup() -> None:
    async with harness(["hours"]) as h:
        async with h.call(args=[]) as (caller, peer):
            paths = [f"{m} {p}" for m, p, _ in h.fake.requests if not p.endswith("/events")]
            answer = paths.index(f"POST /channels/{caller}/answer")
            bridge = paths.index("POST /bridges")
            media = paths.index("POST /channels/externalMedia")
            add = next(i for i, p in enumerate(paths) if p.endswith("/addChannel"))
            # Answered only once the media path exists: a failing set-up leaves the caller
            # unanswered, for the dialplan to route.
            assert bridge < media < answer < add
            add_params = next(q for _, p, q in h.fake.requests if p.endswith("/addChannel"))
            assert caller in add_params["channel"] and MEDIA_CHANNEL_PREFIX in add_params["channel"]

            # The greeting arrives as full 20 ms μ-law frames with the payload type we send.
            await peer.wait_for_packets(25)
            assert all(len(r.packet.payload) == 160 for r in peer.received)
            assert peer.received[0].packet.marker
            await peer.wait_quiet()
            greeting = len(peer.received)

            # The caller says a choice (real speech); the bot answers the matching branch.
            await peer.send_speech(allison("hours"))
            await h.wait_until(lambda: "Monday" in " ".join(h.tts.spoken))
            await peer.wait_for_packets(greeting + 25)
            session = h.controller.calls[caller].session
            assert session is not None and session.stats.turns[0].text == "hours"

            await h.fake.caller_hangup(caller)
            await h.wait_until(lambda: not h.controller.calls)
            assert h.fake.channels == {} and h.fake.bridges == {}
            assert h.allocator.in_use == frozenset()
            assert call_tasks() == []
            summary = h.controller.recent[-1]
            assert summary["end_reason"] == "caller hangup"
            assert [line["who"] for line in summary["transcript"]][:2] == ["bot", "caller"]


async def test_hangup_while_bot_speaks_leaves_nothing_behind_and_next_call_works() -> None:
    async with harness([]) as h:
        async with h.call() as (first, peer):
            await peer.wait_for_packets(5)  # mid-greeting
            await h.fake.caller_hangup(first)
            await h.wait_until(lambda: not h.controller.calls)
            assert h.fake.channels == {} and h.fake.bridges == {}
            assert h.allocator.in_use == frozenset() and call_tasks() == []
            count = len(peer.received)
            await asyncio.sleep(0.2)
            assert len(peer.received) <= count + 1  # nothing sent after teardown

            second = await h.fake.add_caller()
            h.peers[second] = peer
            await h.peer_for(second)
            await peer.wait_for_packets(count + 10)


async def test_bot_hangup_hangs_up_caller_and_releases_everything() -> None:
    async with harness(["goodbye"]) as h:
        async with h.call() as (_caller, peer):
            await peer.wait_quiet()
            await peer.send_speech(allison("goodbye"))
            await h.wait_until(lambda: not h.controller.calls, within_s=15)
            assert "Thank you for calling." in h.tts.spoken  # then the recorded "Goodbye"
            goodbye = [line for line in h.controller.recent[-1]["transcript"]
                       if line["text"] == "[audio audio/goodbye.wav]"]  # fmt: skip
            assert goodbye and goodbye[0]["who"] == "bot"
            assert h.fake.channels == {} and h.fake.bridges == {}
            assert h.controller.recent[-1]["end_reason"] == "bot-hangup"
            assert call_tasks() == []


async def test_unknown_script_hands_that_caller_back_unanswered_with_error_only() -> None:
    async with harness([]) as h:
        async with h.call() as (good, _peer):
            bad = await h.fake.add_caller(args=["nosuchscript"])
            await h.wait_until(lambda: any(c["call_id"] == bad for c in h.controller.recent))
            reason = next(c["end_reason"] for c in h.controller.recent if c["call_id"] == bad)
            assert "no script named 'nosuchscript'" in reason
            # Never answered, never dropped: the dialplan gets the caller back and decides.
            assert handed_back(h.fake, bad) == "error"
            assert h.fake.channels[bad]["state"] == "Ring"
            assert not any(m == "DELETE" and p == f"/channels/{bad}" for m, p, _ in h.fake.requests)
            assert good in h.controller.calls  # the other call is untouched


async def test_rtp_from_a_foreign_address_is_dropped_and_counted() -> None:
    async with harness([]) as h:
        peer = await RtpPeer.open(port=h.fake.rtp_port)
        intruder = await RtpPeer.open()
        try:
            caller = await h.fake.add_caller()
            h.peers[caller] = peer
            await h.peer_for(caller)
            intruder.bot = peer.bot
            await intruder.send_speech(allison("hours")[:1600])
            endpoint = h.controller.calls[caller].endpoint
            assert endpoint is not None
            await h.wait_until(lambda: endpoint.stats.foreign_dropped >= 10)
            assert endpoint.stats.accepted == 0
        finally:
            peer.close()
            intruder.close()


async def test_two_calls_at_once_have_independent_dialogs() -> None:
    async with harness([]) as h:
        peers = [await RtpPeer.open(), await RtpPeer.open()]
        try:
            callers = []
            for peer, word in zip(peers, ["hours", "address"], strict=True):
                h.fake.rtp_port = peer.address[1]
                caller = await h.fake.add_caller()
                h.peers[caller] = peer
                await h.peer_for(caller)
                callers.append((caller, peer, word))
            h.asr.answers = []
            for _, peer, _ in callers:
                await peer.wait_quiet()
            # Both speak at once; the scripted ASR answers in order of finished utterances, so
            # give each call its own word by speaking one after the other but overlapping.
            h.asr.answers = ["hours", "address"]
            first = asyncio.create_task(callers[0][1].send_speech(allison("hours")))
            await asyncio.sleep(0.3)
            second = asyncio.create_task(callers[1][1].send_speech(allison("hours")))
            await asyncio.gather(first, second)
            await h.wait_until(
                lambda: all(
                    len(h.controller.calls[c].session.stats.turns) == 1  # type: ignore[union-attr]
                    for c, _, _ in callers
                )
            )
            states = [
                h.controller.calls[c].session.engine.state.current  # type: ignore[union-attr]
                for c, _, _ in callers
            ]
            assert states == ["hours", "address"]
        finally:
            for peer in peers:
                peer.close()


async def test_a_failing_speech_engine_ends_that_call_with_an_error_and_releases_it() -> None:
    async with harness([], tts=BrokenTts()) as h:
        caller = await h.fake.add_caller()
        await h.wait_until(lambda: any(c["call_id"] == caller for c in h.controller.recent))
        reason = h.controller.recent[-1]["end_reason"]
        assert reason.startswith("error:") and "voice model exploded" in reason
        # The caller goes back to the dialplan (its fallback); nothing of ours is left.
        assert handed_back(h.fake, caller) == "error"
        assert list(h.fake.channels) == [caller] and h.fake.bridges == {}
        assert h.allocator.in_use == frozenset() and call_tasks() == []
        assert h.controller.recent[-1]["result"] == "error"


async def test_transfer_hands_the_caller_to_the_dialplan_without_hanging_it_up() -> None:
    async with harness([]) as h:
        async with h.call(args=["bank"]) as (caller, peer):
            await peer.wait_for_packets(5)
            await h.fake.send_dtmf_event(caller, "0")  # "press 0" for the operator, mid-prompt
            await h.wait_until(lambda: any(c["call_id"] == caller for c in h.controller.recent))
            summary = h.controller.recent[-1]
            assert summary["end_reason"] == "transfer to voicebot-transfer,operator,1"
            # Its StasisEnd (sent before the answer to /continue) is not a hangup.
            assert summary["result"] == "transferred"
            assert "Transferring you to an operator." in h.tts.spoken
            cont = [q for m, p, q in h.fake.requests if p.endswith(f"/channels/{caller}/continue")]
            assert cont == [
                {"context": "voicebot-transfer", "extension": "operator", "priority": "1"}
            ]
            hangups = [p for m, p, _ in h.fake.requests
                       if m == "DELETE" and p.startswith("/channels/") and caller in p]  # fmt: skip
            assert hangups == [f"/channels/{MEDIA_CHANNEL_PREFIX}{caller}"]  # never the caller
            assert h.fake.bridges == {} and h.allocator.in_use == frozenset()
            assert call_tasks() == []


async def test_channel_variables_used_by_a_script_are_fetched_for_templating(
    tmp_path: Path,
) -> None:
    script = tmp_path / "greet.yaml"
    script.write_text(
        "start: hello\nstates:\n  hello:\n"
        '    say: "Hello {caller_id}, you called {called} about {channel.TOPIC}."\n'
        "    hangup: true\n"
    )
    async with harness([], scripts_dir=tmp_path, default="greet") as h:
        peer = await RtpPeer.open(port=h.fake.rtp_port)
        try:
            h.fake.variables["caller-1"] = {"TOPIC": "billing"}
            caller = await h.fake.add_caller("caller-1", caller_number="5551234", exten="100")
            h.peers[caller] = peer
            await h.wait_until(lambda: any(c["call_id"] == caller for c in h.controller.recent))
            assert h.tts.spoken == ["Hello 5551234, you called 100 about billing."]
        finally:
            peer.close()


async def test_transfer_to_an_endpoint_goes_through_the_dial_context(tmp_path: Path) -> None:
    (tmp_path / "dial.yaml").write_text(
        "start: out\nstates:\n  out:\n    say: Connecting you.\n"
        "    transfer: {endpoint: PJSIP/operator}\n"
    )
    async with harness([], scripts_dir=tmp_path, default="dial") as h:
        caller = await h.fake.add_caller()
        await h.wait_until(lambda: any(c["call_id"] == caller for c in h.controller.recent))
        assert h.controller.recent[-1]["end_reason"] == "transfer to endpoint PJSIP/operator"
        sets = [q for m, p, q in h.fake.requests if p.endswith(f"/channels/{caller}/variable")]
        assert {"variable": "VOICEBOT_DIAL", "value": "PJSIP/operator"} in sets
        cont = [q for m, p, q in h.fake.requests if p.endswith(f"/channels/{caller}/continue")]
        assert cont == [{"context": "voicebot-dial", "extension": "s", "priority": "1"}]
        assert f"/channels/{caller}" not in [p for m, p, _ in h.fake.requests if m == "DELETE"]


async def test_a_transfer_asterisk_refuses_hands_the_caller_back(tmp_path: Path) -> None:
    (tmp_path / "dial.yaml").write_text(
        "start: out\nstates:\n  out:\n    say: Connecting you.\n"
        "    transfer: {endpoint: PJSIP/operator}\n"
    )
    async with harness([], scripts_dir=tmp_path, default="dial") as h:
        h.fake.fail_next(500, "no such context", method="POST", path_contains="/continue")
        caller = await h.fake.add_caller()
        await h.wait_until(lambda: any(c["call_id"] == caller for c in h.controller.recent))
        summary = h.controller.recent[-1]
        assert summary["result"] == "error" and "no such context" in summary["end_reason"]
        # Back to the dialplan after Stasis() with VOICEBOT_RESULT=error, not left in silence.
        sets = [q for m, p, q in h.fake.requests if p.endswith(f"/channels/{caller}/variable")]
        assert {"variable": "VOICEBOT_RESULT", "value": "error"} in sets
        cont = [q for m, p, q in h.fake.requests if p.endswith(f"/channels/{caller}/continue")]
        assert cont == [{"context": "voicebot-dial", "extension": "s", "priority": "1"}, {}]
        assert f"/channels/{caller}" not in [p for m, p, _ in h.fake.requests if m == "DELETE"]
        assert h.controller.calls_failed == 1 and h.controller.calls == {}


async def test_a_transfer_to_a_label_asterisk_does_not_know_hands_the_caller_back(
    tmp_path: Path,
) -> None:
    """Asterisk answers 404 to a label its dialplan lacks, though the caller is still there:
    that 404 is the transfer's failure, not the caller's hangup."""
    (tmp_path / "agent.yaml").write_text(
        "start: out\nstates:\n  out:\n    say: Connecting you.\n"
        "    transfer: {context: sales, extension: '200', label: agent}\n"
    )
    async with harness([], scripts_dir=tmp_path, default="agent") as h:
        h.fake.fail_next(404, "Requested label can not be found", method="POST",
                         path_contains="/continue")  # fmt: skip
        caller = await h.fake.add_caller()
        await h.wait_until(lambda: any(c["call_id"] == caller for c in h.controller.recent))
        cont = [q for m, p, q in h.fake.requests if p.endswith(f"/channels/{caller}/continue")]
        assert cont == [{"context": "sales", "extension": "200", "label": "agent"}, {}]
        assert handed_back(h.fake, caller) == "error"
        summary = h.controller.recent[-1]
        assert summary["result"] == "error" and "label" in summary["end_reason"], summary
        assert h.controller.calls_failed == 1 and h.controller.calls == {}


async def test_an_event_the_controller_fails_on_is_logged_and_the_feed_goes_on(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with harness(["goodbye"]) as h:

        def broken(*_: object) -> None:
            raise RuntimeError("a bug in one event's handling")

        with monkeypatch.context() as patch:
            patch.setattr(h.controller, "_channel_gone", broken)
            await h.fake.emit({"type": "StasisEnd", "channel": {"id": "nobody", "name": "x",
                                                               "state": "Up"}})  # fmt: skip
            await h.wait_until(lambda: "could not be handled" in caplog.text)
        async with h.call() as (caller, peer):  # the next caller is served as ever
            await peer.wait_for_packets(5)
            assert caller in h.controller.calls


async def test_a_hangup_s_several_events_do_not_cut_the_session_s_shutdown_short(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Asterisk sends ChannelHangupRequest, StasisEnd and ChannelDestroyed for one hangup; the
    # window in which the later ones arrive during the session's shutdown is widened here.
    close_pacer = Pacer.aclose

    async def slow_to_close(pacer: Pacer) -> None:
        await asyncio.sleep(0.2)
        await close_pacer(pacer)

    monkeypatch.setattr(Pacer, "aclose", slow_to_close)
    async with harness([]) as h:
        async with h.call() as (caller, peer):
            await peer.wait_for_packets(5)
            (pacer,) = [t for t in asyncio.all_tasks() if "Pacer._run" in repr(t.get_coro())]
            channel = h.fake.channels[caller]
            await h.fake.caller_hangup(caller)
            await asyncio.sleep(0.05)  # the session is closing its pacer now
            await h.fake.emit({"type": "ChannelHangupRequest", "cause": 16, "channel": channel})
            await h.wait_until(lambda: not h.controller.calls)
            assert pacer.cancelled()  # closed by the session, not left to run or to crash
            assert h.controller.recent[-1]["end_reason"] == "caller hangup"


async def test_a_caller_whose_media_channel_dies_is_handed_back_not_hung_up() -> None:
    async with harness([]) as h:
        async with h.call() as (caller, peer):
            await peer.wait_for_packets(5)
            await h.fake.caller_hangup(f"{MEDIA_CHANNEL_PREFIX}{caller}")
            await h.wait_until(lambda: not h.controller.calls)
            summary = h.controller.recent[-1]
            assert (summary["result"], summary["end_reason"]) == ("error", "media channel ended")
            sets = [q for m, p, q in h.fake.requests if p.endswith(f"/channels/{caller}/variable")]
            assert {"variable": "VOICEBOT_RESULT", "value": "error"} in sets
            assert f"/channels/{caller}" not in [p for m, p, _ in h.fake.requests if m == "DELETE"]
            assert h.fake.bridges == {} and h.allocator.in_use == frozenset()


async def test_a_media_channel_no_call_waits_for_is_hung_up() -> None:
    # The set-up that asked for it was cancelled while its POST was on the way, and the
    # teardown's DELETE reached Asterisk first: the channel appears after its call is gone.
    async with harness([]) as h:
        orphan = f"{MEDIA_CHANNEL_PREFIX}gone-caller"
        channel = {"id": orphan, "name": "UnicastRTP/x", "state": "Up"}
        await h.fake.emit({"type": "StasisStart", "args": [], "channel": channel})
        deletes = lambda: [p for m, p, _ in h.fake.requests if m == "DELETE"]  # noqa: E731
        await h.wait_until(lambda: f"/channels/{orphan}" in deletes())
        assert h.controller.calls == {} and h.controller.calls_total == 0


async def test_a_streaming_recognizer_is_fed_while_the_caller_speaks() -> None:
    asr = StreamingListAsr(["hours"])
    async with harness([], asr=asr) as h:
        async with h.call() as (_caller, peer):
            await peer.wait_quiet()
            await peer.send_speech(allison("hours"))
            fed_while_speaking = sum(asr.audio_seconds)
            await h.wait_until(lambda: "Monday" in " ".join(h.tts.spoken))
            # Preroll + onset in one piece, then as the word went on (in the resampler's
            # chunks): most of the word was fed before the caller stopped.
            assert asr.feeds > 3 and fed_while_speaking > 0.5
            # Only speech (plus preroll and the trailing hang time) reached the recognizer.
            assert 0.8 < sum(asr.audio_seconds) < 0.88 + 0.3 + 0.7


async def test_a_korean_script_runs_on_the_real_vosk_model_through_the_call(tmp_path: Path) -> None:
    """The Vosk path end to end in one call: streamed recognition of real (espeak) speech,
    grammar from the state's phrases, the dialog following the recognized answer."""
    from voicebot.config import AsrConfig
    from voicebot.speech.asr.vosk import VoskEngine
    from voicebot.speech.discovery import find_vosk_model

    (tmp_path / "ko.yaml").write_text(
        "language: ko\nstart: ask\nstates:\n  ask:\n    say: Yes or no?\n    grammar: true\n"
        "    expect:\n      yes: {phrases: ['네'], goto: done}\n"
        "      no: {phrases: ['아니요'], goto: done}\n"
        "  done:\n    say: Thank you.\n    hangup: true\n"
    )
    wav = tmp_path / "ne.wav"
    espeak = await asyncio.create_subprocess_exec("espeak-ng", "-v", "ko", "-s", "140", "-w",
                                                  str(wav), "네")  # fmt: skip
    assert await espeak.wait() == 0
    pcm, rate = read_wav(wav)
    model = find_vosk_model("ko")
    assert model is not None
    vosk = VoskEngine(AsrConfig(engine="vosk"), model, "ko")
    await vosk.load()
    try:
        async with harness([], asr=vosk, scripts_dir=tmp_path, default="ko") as h:  # type: ignore[arg-type]
            async with h.call() as (caller, peer):
                await peer.wait_quiet()
                await peer.send_speech(
                    np.concatenate([resample(pcm, rate, 8000), np.zeros(4000, dtype=np.int16)])
                )
                await h.wait_until(
                    lambda: any(c["call_id"] == caller for c in h.controller.recent), within_s=15
                )
                summary = h.controller.recent[-1]
                heard = [
                    (t["text"], t["intent"]) for t in summary["transcript"] if t["who"] == "caller"
                ]
                assert heard == [("네", "yes")]
                assert summary["end_reason"] == "bot-hangup"
    finally:
        await vosk.close()


async def test_barge_in_also_stops_a_prompt_queued_behind_the_playing_one(tmp_path: Path) -> None:
    """A webhook answer is queued behind "one moment please"; talking over that prompt must
    stop both, not just the one playing."""
    from aiohttp import web

    async def lookup(_: web.Request) -> web.Response:
        return web.json_response({"status": "out for delivery"})

    app = web.Application()
    app.router.add_get("/parcel", lookup)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    result_text = "Your parcel is {parcel.status}. " + "Here are many more details. " * 8
    (tmp_path / "wait.yaml").write_text(
        "start: lookup\nstates:\n  lookup:\n"
        "    say: One moment please while I look that up for you, it can take a while.\n"
        f"    webhook: {{url: 'http://127.0.0.1:{port}/parcel', method: GET, save_as: parcel,"
        " goto: result}\n"
        f"  result:\n    say: '{result_text}'\n"
        "    expect:\n      done: {phrases: [hours], goto: bye}\n"
        "  bye:\n    say: Bye.\n    hangup: true\n"
    )
    tts = ToneTts(seconds_per_char=0.03)  # "one moment …" lasts about 2 s
    try:
        loopback = WebhookConfig(allow_hosts=f"127.0.0.1:{port}")  # where lookup listens
        async with harness(
            ["hours"], tts=tts, scripts_dir=tmp_path, default="wait", webhooks=loopback
        ) as h:
            async with h.call() as (caller, peer):
                await peer.wait_for_packets(10)  # "one moment please" is playing
                await peer.send_speech(allison("hours"))
                await h.wait_until(
                    lambda: any(c["call_id"] == caller for c in h.controller.recent), within_s=15
                )
                assert h.controller.recent[-1]["end_reason"] == "bot-hangup"
                assert not any(text.startswith("Your parcel") for text in h.tts.spoken)
                assert h.tts.spoken[-1] == "Bye."
    finally:
        await runner.cleanup()


# -- running unattended -----------------------------------------------------------------------


async def test_a_caller_over_the_limit_is_handed_back_busy_without_being_answered() -> None:
    async with harness([], calls=CallsConfig(max_active=1)) as h:
        async with h.call() as (first, _peer):
            second = await h.fake.add_caller()
            await h.wait_until(lambda: handed_back(h.fake, second) == "busy")
            assert h.fake.channels[second]["state"] == "Ring"  # never answered
            assert not any(second in p for m, p, _ in h.fake.requests if m == "DELETE")
            assert list(h.controller.calls) == [first]
            assert h.controller.health()["calls_refused"] == 1
            assert b'voicebot_calls_total{result="busy"} 1.0' in h.controller.metrics.render()


async def test_draining_refuses_new_callers_and_waits_for_the_active_ones() -> None:
    async with harness([]) as h:
        async with h.call() as (first, _peer):
            drained = asyncio.create_task(h.controller.drain(5.0))
            await asyncio.sleep(0.1)
            late = await h.fake.add_caller()
            await h.wait_until(lambda: handed_back(h.fake, late) == "busy")
            assert not drained.done()  # the active call may finish
            await h.fake.caller_hangup(first)
            assert await asyncio.wait_for(drained, 5.0) is True
        assert await h.controller.drain(0.01) is True  # nothing left: at once


async def test_shutdown_hands_callers_still_there_back_with_error() -> None:
    async with harness([]) as h:
        async with h.call() as (caller, peer):
            await peer.wait_for_packets(5)
            await h.controller.close()
            assert handed_back(h.fake, caller) == "error"
            assert list(h.fake.channels) == [caller] and h.fake.bridges == {}
            assert h.allocator.in_use == frozenset() and call_tasks() == []


async def test_a_stasis_start_and_its_hangup_read_together_leave_no_phantom_call() -> None:
    async with harness([]) as h:
        # Both events handled before the call's task gets to run at all.
        from voicebot.ari.events import parse_event

        channel = h.fake._new_channel(None, name="PJSIP/1000-0000beef", state="Ring")

        h.controller.dispatch(
            parse_event(
                {"type": "StasisStart", "args": [], "channel": channel, "application": "voicebot"}
            )
        )
        h.controller.dispatch(parse_event({"type": "StasisEnd", "channel": channel,
                                           "application": "voicebot"}))  # fmt: skip
        await h.wait_until(lambda: not h.controller.calls)
        await asyncio.sleep(0.2)
        assert h.fake.bridges == {} and h.allocator.in_use == frozenset()
        assert call_tasks() == []


async def test_every_call_leaves_one_result_record_however_it_ends(tmp_path: Path) -> None:
    results = ResultsConfig(file=str(tmp_path / "results.jsonl"),
                            outbox=str(tmp_path / "outbox.sqlite"))  # fmt: skip
    async with harness([], results=results, calls=CallsConfig(max_active=1)) as h:
        async with h.call(args=["bank"]) as (caller, peer):
            await peer.wait_for_packets(5)
            busy = await h.fake.add_caller()  # over the limit: handed back busy
            await h.wait_until(lambda: handed_back(h.fake, busy) == "busy")
            await h.fake.send_dtmf_event(caller, "0")  # to the operator
            await h.wait_until(lambda: any(c["call_id"] == caller for c in h.controller.recent))
    # The harness closed the outbox: every record kept was written out first.
    lines = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    by_call = {line["call_id"]: line for line in lines}
    assert len(lines) == 2 and set(by_call) == {caller, busy}
    transferred = by_call[caller]
    assert transferred["outcome"] == "transferred" and transferred["script"] == "bank"
    assert transferred["path"][0] == "main" and transferred["keys"] == ["#0"]
    assert by_call[busy]["outcome"] == "busy"
    assert all(line["key"] for line in lines)


async def test_a_call_ended_from_the_console_goes_back_to_the_dialplan_as_stopped() -> None:
    async with harness([]) as h:
        async with h.call() as (caller, peer):
            await peer.wait_for_packets(5)
            (call,) = h.controller.calls.values()
            call.stop(EndReason.CONSOLE, result=CallResult.STOPPED)
            await h.wait_until(lambda: not h.controller.calls)
            summary = h.controller.recent[-1]
            assert (summary["result"], summary["end_reason"]) == (
                "stopped", "ended from the console",
            )  # fmt: skip
            sets = [q for m, p, q in h.fake.requests if p.endswith(f"/channels/{caller}/variable")]
            assert {"variable": "VOICEBOT_RESULT", "value": "stopped"} in sets
            # Handed back, never hung up: the dialplan decides what the caller hears next.
            assert f"/channels/{caller}" not in [p for m, p, _ in h.fake.requests if m == "DELETE"]
            assert h.fake.bridges == {} and h.allocator.in_use == frozenset()
