"""call.session: one call's conversation over a real UDP endpoint, with test doubles for the
speech engines. Observers are told what happens as it happens; the transcript is kept once;
a task that dies ends its call, and every task is gone when ``run`` returns."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiohttp import web

from tests.support.audio import ALLISON
from tests.support.doubles import BrokenTts, ListAsr, RecordingDetector, ToneTts
from voicebot.call import (
    CallEnd,
    CallObserver,
    CallSession,
    SpeechServices,
    TranscriptLine,
    TurnTiming,
)
from voicebot.call.recording import CallRecorder
from voicebot.call.webhook import WebhookPolicy, webhook_session
from voicebot.capture.wav import read_wav
from voicebot.config import VadConfig, WebhookConfig
from voicebot.dialog.model import Script
from voicebot.dialog.parser import parse_script
from voicebot.errors import MediaError
from voicebot.media.codecs import ULAW, resample
from voicebot.media.endpoint import PortAllocator, RtpEndpoint
from voicebot.media.peer import RtpPeer

FAST_TTS_S_PER_CHAR = 0.002
MENU = parse_script(
    """
start: main
states:
  main:
    say: "Say hours, or press 1."
    expect:
      hours: {phrases: ["hours", "opening hours"], dtmf: "1", goto: hours}
      bye: {phrases: ["goodbye"], dtmf: "9", goto: bye}
  hours:
    say: "Nine to five."
    expect:
      bye: {phrases: ["goodbye"], dtmf: "9", goto: bye}
  bye:
    say: "Goodbye."
    hangup: true
""",
    "menu.yaml",
)


@dataclass
class Watcher(CallObserver):
    """Keeps what it is told (``barge_in`` and ``webhook`` stay the base class's no-ops)."""

    lines: list[TranscriptLine] = field(default_factory=list)
    keys: list[tuple[str, int]] = field(default_factory=list)
    turns: list[Mapping[str, float | None]] = field(default_factory=list)

    def transcript(self, line: TranscriptLine) -> None:
        self.lines.append(line)

    def key(self, digit: str, duration_ms: int) -> None:
        self.keys.append((digit, duration_ms))

    def turn(self, timing: Mapping[str, float | None]) -> None:
        self.turns.append(timing)


@dataclass
class Line:
    """A session on a real endpoint, with the caller's RTP peer at its other end."""

    session: CallSession
    peer: RtpPeer
    running: asyncio.Task[CallEnd]


async def until(predicate: Callable[[], bool], within_s: float = 20.0) -> None:
    for _ in range(int(within_s / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached")


def call_tasks(call_id: str) -> list[str]:
    return [t.get_name() for t in asyncio.all_tasks() if t.get_name().startswith(f"call-{call_id}")]


@asynccontextmanager
async def a_call(
    services: SpeechServices,
    script: Script = MENU,
    observers: tuple[CallObserver, ...] = (),
    **options: Any,
) -> AsyncIterator[Line]:
    """``options``: more ``CallSession`` arguments (``http``, ``webhook_policy``)."""
    endpoint = await RtpEndpoint.open(PortAllocator("127.0.0.1", 41180, 41189), "127.0.0.1")
    peer = await RtpPeer.open()
    endpoint.set_remote(*peer.address)
    peer.bot = ("127.0.0.1", endpoint.local_port)
    session = CallSession(
        call_id="s-1",
        endpoint=endpoint,
        codec=ULAW,
        script=script,
        services=services,
        vad=VadConfig(),
        observers=observers,
        **options,
    )
    running = asyncio.create_task(session.run())
    try:
        yield Line(session, peer, running)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        peer.close()
        await endpoint.aclose()


def fast_services(asr: ListAsr | None = None) -> SpeechServices:
    return SpeechServices(asr or ListAsr([]), ToneTts(FAST_TTS_S_PER_CHAR))


# -- observers ---------------------------------------------------------------------------------


async def test_observers_are_told_every_transcript_line_and_each_key_with_its_duration() -> None:
    watcher = Watcher()
    async with a_call(fast_services(), observers=(watcher,)) as call:
        await until(call.session.awaiting_caller)  # the greeting has played
        call.session.key_pressed("1", 120)
        await until(lambda: call.session.core.state_name == "hours")
        await until(call.session.awaiting_caller)
        call.session.key_pressed("9")
        end = await asyncio.wait_for(call.running, 20)
    assert end == CallEnd("bot-hangup")
    assert watcher.keys == [("1", 120), ("9", 0)]
    said = [(line.who, line.text, line.state, line.intent) for line in watcher.lines]
    assert said == [
        ("bot", "Say hours, or press 1.", "main", None),
        ("caller", "#1", "main", "hours"),
        ("bot", "Nine to five.", "hours", None),
        ("caller", "#9", "hours", "bye"),
        ("bot", "Goodbye.", "bye", None),
    ]
    # The transcript is kept once: the session's list is what observers were told.
    assert call.session.transcript == watcher.lines
    assert call_tasks("s-1") == []


async def test_a_spoken_turn_is_observed_with_where_its_time_went() -> None:
    watcher = Watcher()
    words, rate = read_wav(ALLISON / "hours.wav")
    async with a_call(fast_services(ListAsr(["hours"])), observers=(watcher,)) as call:
        await until(call.session.awaiting_caller)
        await call.peer.send_speech(resample(words, rate, ULAW.sample_rate))
        await until(lambda: bool(watcher.turns))
    [timing] = watcher.turns
    assert timing["turn"] == 1 and timing["text"] == "hours"
    for stage in ("total_ms", "pause_ms", "asr_ms", "wait_ms", "dialog_ms", "tts_ms", "send_ms"):
        spent = timing[stage]
        assert spent is not None and spent >= 0, stage
    # The answer's line carries the same timing; the caller's line names the intent.
    answer = next(line for line in watcher.lines if line.text == "Nine to five.")
    assert answer.latency_ms == timing
    heard = next(line for line in watcher.lines if line.who == "caller")
    assert (heard.text, heard.intent) == ("hours", "hours")
    assert [t.text for t in call.session.stats.turns] == ["hours"]


# -- the end of a call -------------------------------------------------------------------------


async def test_a_task_that_dies_ends_the_call_with_a_media_error_and_no_task_left() -> None:
    services = SpeechServices(ListAsr([]), BrokenTts())
    async with a_call(services) as call:
        with pytest.raises(MediaError) as ended:
            await asyncio.wait_for(call.running, 20)
    assert str(ended.value) == (
        "call s-1: call-s-1-speaker failed: RuntimeError: voice model exploded"
    )
    assert call_tasks("s-1") == []


class Utf8Tts(ToneTts):
    """Hands its text on as UTF-8, as Piper does to espeak: a lone surrogate cannot pass."""

    async def stream(self, text: str) -> AsyncIterator[np.ndarray]:
        text.encode("utf-8")
        async for chunk in super().stream(text):
            yield chunk


@asynccontextmanager
async def a_webhook_answering(body: bytes) -> AsyncIterator[int]:
    """An HTTP server on 127.0.0.1 whose every GET answers ``body`` as JSON; yields its port."""

    async def answer(_: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/{tail:.*}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("recorded", [False, True])
async def test_a_lone_surrogate_from_a_webhook_is_spoken_replaced_and_the_call_goes_on(
    recorded: bool, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # JSON may escape half of a surrogate pair; json.loads gives Python a str no encoder takes.
    async with a_webhook_answering(b'{"name": "Ann \\ud800 Lee"}') as port:
        script = parse_script(
            "start: lookup\nstates:\n  lookup:\n    say: One moment.\n"
            f"    webhook: {{url: 'http://127.0.0.1:{port}/who', method: GET, save_as: who,"
            " goto: greet}\n"
            "  greet:\n    say: 'Hello {who.name}. Press 1.'\n"
            "    expect:\n      one: {dtmf: '1', goto: bye}\n"
            "  bye:\n    say: Bye.\n    hangup: true\n",
            "surrogate.yaml",
        )
        tts = Utf8Tts(FAST_TTS_S_PER_CHAR)
        policy = WebhookPolicy.from_config(WebhookConfig(allow_hosts=f"127.0.0.1:{port}"))
        recorder = CallRecorder(tmp_path, "call", ("127.0.0.1", 1), ("127.0.0.1", 2))
        observers = (recorder,) if recorded else ()
        async with webhook_session(policy) as http:
            services = SpeechServices(ListAsr([]), tts)
            async with a_call(
                services, script, observers, http=http, webhook_policy=policy
            ) as call:
                await until(
                    lambda: call.running.done() or any(t.startswith("Hello") for t in tts.spoken)
                )
                call.session.key_pressed("1")
                ended = await asyncio.wait_for(call.running, 20)
        recorder.close()
    assert ended == CallEnd("bot-hangup")
    assert tts.spoken == ["One moment.", "Hello Ann \ufffd Lee. Press 1.", "Bye."]
    said = [line.text for line in call.session.transcript if line.who == "bot"]
    assert said == tts.spoken
    if recorded:
        written = (tmp_path / "call.jsonl").read_bytes().decode("utf-8")  # strict: valid text
        assert "Hello Ann \ufffd Lee. Press 1." in written
    loud = loud_lines(caplog)
    assert not [line for line in loud if "Ann" in line or "Lee" in line], loud


def loud_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Every WARNING and ERROR line as an operator reads it, traceback included."""
    return [
        r.getMessage() + (logging.Formatter().formatException(r.exc_info) if r.exc_info else "")
        for r in caplog.records
        if r.levelno >= logging.WARNING
    ]


# A state's way on: a key that never comes.
WAIT = "    expect:\n      one: {dtmf: '1', goto: a}\n"


class AsciiTts(ToneTts):
    """An engine that cannot say what is not ASCII: its error holds the whole text."""

    async def stream(self, text: str) -> AsyncIterator[np.ndarray]:
        text.encode("ascii")
        async for chunk in super().stream(text):
            yield chunk


async def test_a_dead_task_ends_the_call_without_its_errors_data_in_the_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    script = parse_script(f'start: a\nstates:\n  a:\n    say: "Grüße, Ann Lee."\n{WAIT}', "a.yaml")
    async with a_call(SpeechServices(ListAsr([]), AsciiTts(FAST_TTS_S_PER_CHAR)), script) as call:
        with pytest.raises(MediaError) as ended:
            await asyncio.wait_for(call.running, 20)
    assert str(ended.value) == (
        "call s-1: call-s-1-speaker failed: UnicodeEncodeError: 'ascii' codec can't encode "
        "characters in position 2-3: ordinal not in range(128)"
    )
    assert not [line for line in loud_lines(caplog) if "Ann Lee" in line]


async def test_a_cancelled_call_leaves_no_task_behind() -> None:
    async with a_call(fast_services()) as call:
        await until(call.session.awaiting_caller)
        assert call_tasks("s-1")  # its receive loop, at least
        call.running.cancel()
        await asyncio.gather(call.running, return_exceptions=True)
    assert call_tasks("s-1") == []
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "rtp-pacer"]


# -- the engines a call uses ---------------------------------------------------------------------


async def test_a_call_takes_its_languages_engines_and_the_turn_model_only_in_english() -> None:
    english_asr, korean_asr = ListAsr([]), ListAsr([])
    english_tts, korean_tts = ToneTts(), ToneTts()
    detector = RecordingDetector()
    services = SpeechServices(
        english_asr, english_tts, turn=detector, by_language={"ko": (korean_asr, korean_tts)}
    )
    korean = parse_script(
        "language: ko\nstart: a\nstates:\n  a:\n    say: 안녕하세요.\n    hangup: true\n", "ko.yaml"
    )
    for script, asr, tts, turn_model in [
        (MENU, english_asr, english_tts, detector),
        (korean, korean_asr, korean_tts, None),
    ]:
        endpoint = await RtpEndpoint.open(PortAllocator("127.0.0.1", 41180, 41189), "127.0.0.1")
        try:
            session = CallSession(
                call_id="s-1",
                endpoint=endpoint,
                codec=ULAW,
                script=script,
                services=services,
                vad=VadConfig(),
            )
            assert (session.asr, session.tts) == (asr, tts)
            assert session.listener.turn_detector is turn_model
        finally:
            await endpoint.aclose()


def test_engines_are_named_once_each_for_health_and_metrics() -> None:
    asr, korean_asr, tts, detector = ListAsr([]), ListAsr([]), ToneTts(), RecordingDetector()
    services = SpeechServices(
        asr, tts, turn=detector, by_language={"en": (asr, tts), "ko": (korean_asr, tts)}
    )
    assert services.engines() == {
        "asr:list": asr,
        "tts:tone": tts,
        "asr:list/ko": korean_asr,
        "turn:recording": detector,
    }
    assert services.for_language("ko") == (korean_asr, tts)
    assert services.for_language("de") == (asr, tts)  # no pair of its own: the default


# -- what a call keeps ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("said", "shown"),
    [
        (TranscriptLine("caller", "#4", 1.0), "#"),
        (TranscriptLine("caller", "#*", 1.0), "#"),
        (TranscriptLine("caller", " #0 ", 1.0), "#"),
        (TranscriptLine("caller", "4 2 1 7", 1.0), "4 2 1 7"),  # spoken digits are words
        (TranscriptLine("caller", "#42", 1.0), "#42"),
        (TranscriptLine("bot", "#4", 1.0), "#4"),
    ],
)
def test_without_key_hides_only_which_key_a_caller_pressed(
    said: TranscriptLine, shown: str
) -> None:
    hidden = said.without_key()
    assert hidden.text == shown
    assert (hidden.who, hidden.t) == (said.who, said.t)
    if shown == said.text:
        assert hidden is said


def test_a_transcript_line_as_json_leaves_out_what_does_not_apply() -> None:
    assert TranscriptLine("bot", "Hello.", 0.25).as_dict() == {
        "who": "bot",
        "text": "Hello.",
        "t": 0.25,
    }
    line = TranscriptLine("caller", "hours", 1.5, state="main", intent="hours")
    assert line.as_dict() == {
        "who": "caller",
        "text": "hours",
        "t": 1.5,
        "state": "main",
        "intent": "hours",
    }


def test_turn_timing_in_milliseconds_and_in_the_log() -> None:
    timing = TurnTiming(
        turn=1,
        voice_end=10.0,
        paused=10.15,
        transcribed=10.4,
        decided=10.45,
        dialog_done=10.46,
        first_audio=10.6,
        first_packet=10.62,
        text="hours",
    )
    assert timing.as_dict() == {
        "turn": 1,
        "text": "hours",
        "total_ms": 620.0,
        "pause_ms": 150.0,
        "asr_ms": 250.0,
        "wait_ms": 450.0,
        "dialog_ms": 10.0,
        "tts_ms": 140.0,
        "send_ms": 20.0,
    }
    assert timing.log_line() == (
        "turn 1 latency: 620.0 ms caller's voice end → first RTP (pause 150.0 ms, asr 250.0 ms, "
        "turn taken after 450.0 ms; dialog 10.0 ms, tts 140.0 ms, send 20.0 ms) heard 5 "
        "characters"
    )


def test_a_turn_not_answered_yet_has_no_total() -> None:
    timing = TurnTiming(turn=2, voice_end=1.0, paused=1.15, transcribed=1.3, decided=1.3)
    shown = timing.as_dict()
    assert (shown["total_ms"], shown["tts_ms"], shown["send_ms"]) == (None, None, None)
    assert shown["wait_ms"] == 300.0
