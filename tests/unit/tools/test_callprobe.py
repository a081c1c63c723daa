"""``voicebot call``'s own reckoning, from what a test call left behind: the caller's steps,
what the caller heard, voice-to-voice and barge-in times at the phone, the pacing on the
wire, and what the bot's status server says (an in-process server here). The call itself
needs sipp and Asterisk: tests/e2e."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.support.audio import ALLISON
from voicebot.capture.wav import read_wav, write_wav
from voicebot.config import AriConfig, Config, HttpConfig
from voicebot.errors import VoicebotError
from voicebot.media import levels
from voicebot.media.codecs import ULAW
from voicebot.media.rtp import RtpPacket
from voicebot.speech.asr.base import Transcript
from voicebot.tools.callprobe import (
    ANSWER_WAIT_S,
    GREETING_WAIT_S,
    RECEIVED_RATE,
    barge_in_stop_ms,
    bot_is_answering,
    caller_steps,
    load_utterances,
    recent_call_summary,
    speech_end_s,
    speech_onset_s,
    transcribe_received,
    voice_to_voice_ms,
    wire_pacing,
)
from voicebot.tools.sip import CallResult, Hangup, Pause, Play, ReceivedRtp, WaitForBye
from voicebot.tools.sounds import ALLISON_DIR

FRAME = 160
TONE = (8000 * np.sin(2 * np.pi * 440 * np.arange(FRAME) / RECEIVED_RATE)).astype(np.int16)
SILENCE = np.zeros(FRAME, np.int16)


def allison(name: str) -> np.ndarray:
    pcm, rate = read_wav(ALLISON / f"{name}.wav")
    assert rate == RECEIVED_RATE
    return pcm


def bot_audio(start: float, frames: int, *, voiced: bool = True, seq: int = 0) -> list[ReceivedRtp]:
    """The bot's packets reaching the phone every 20 ms from ``start`` (wall time)."""
    payload = ULAW.encode(TONE if voiced else SILENCE)
    return [
        ReceivedRtp(start + n * 0.02, RtpPacket(0, seq + n, (seq + n) * FRAME, 7, payload))
        for n in range(frames)
    ]


def call_result(
    packets: list[ReceivedRtp],
    sent: list[float | None],
    *,
    audio: np.ndarray | None = None,
    start: float | None = None,
    answered: float | None = None,
) -> CallResult:
    return CallResult(
        call_id="probe-1",
        sipp_returncode=0,
        sipp_log="",
        received_audio=audio if audio is not None else np.zeros(0, np.int16),
        received_packets=packets,
        received_start_time=start,
        sent_start_time=sent,
        dtmf_sent_time=[],
        answered_time=answered,
    )


# -- the caller's steps ------------------------------------------------------------------------


@pytest.mark.parametrize("wait_for_bye", [True, False])
def test_the_caller_waits_for_the_greeting_speaks_each_line_and_ends(wait_for_bye: bool) -> None:
    lines = [allison("hours"), allison("goodbye")]
    steps = caller_steps(lines, wait_for_bye=wait_for_bye)
    kinds = [type(step) for step in steps]
    ending = [WaitForBye] if wait_for_bye else [Pause, Hangup]
    assert kinds == [Pause, Play, Pause, Play, *ending]
    first, between = steps[0], steps[2]
    assert isinstance(first, Pause) and first.seconds == GREETING_WAIT_S
    assert isinstance(between, Pause) and between.seconds == ANSWER_WAIT_S
    played = [step.pcm for step in steps if isinstance(step, Play)]
    for sent, line in zip(played, lines, strict=True):
        np.testing.assert_array_equal(sent, line)
    if wait_for_bye:
        assert steps[-1] == WaitForBye(timeout_s=20.0)


def test_the_callers_lines_are_read_at_8_khz(tmp_path: Path) -> None:
    lines = load_utterances([str(ALLISON / "hours.wav"), str(ALLISON / "goodbye.wav")])
    assert [name for name, _ in lines] == ["hours.wav", "goodbye.wav"]
    np.testing.assert_array_equal(lines[0][1], allison("hours"))


def test_the_default_lines_are_in_the_bots_language() -> None:
    assert [name for name, _ in load_utterances(None)] == ["hours.wav", "goodbye.wav"]
    russian = load_utterances(None, "ru")
    assert [name for name, _ in russian] == ["hours.wav", "goodbye.wav"]
    assert not np.array_equal(russian[0][1][:8000], allison("hours")[:8000])
    with pytest.raises(VoicebotError, match=r"no default caller lines in language 'ko'.*--say"):
        load_utterances(None, "ko")


def test_a_missing_line_is_refused_before_calling(tmp_path: Path) -> None:
    with pytest.raises(VoicebotError) as refused:
        load_utterances([str(ALLISON / "hours.wav"), str(tmp_path / "hello.wav")])
    assert str(refused.value) == f"sound file not found: {tmp_path / 'hello.wav'}"
    with pytest.raises(VoicebotError, match="make setup"):
        load_utterances([str(ALLISON_DIR / "no-such-prompt.wav")])


def test_a_line_that_is_not_8_khz_is_refused_as_a_voicebot_error(tmp_path: Path) -> None:
    wideband = tmp_path / "wideband.wav"
    write_wav(wideband, np.zeros(16000, np.int16), 16000)
    with pytest.raises(VoicebotError, match="8 kHz"):
        load_utterances([str(wideband)])


# -- what the caller heard ---------------------------------------------------------------------


class Scribe:
    """Stands in for whisper: says how many samples it was given."""

    sample_rate = 16000

    def __init__(self) -> None:
        self.given: list[int] = []

    async def transcribe(self, pcm: np.ndarray) -> Transcript:
        self.given.append(pcm.size)
        return Transcript(f"{pcm.size} samples", is_final=True)


async def test_what_the_caller_heard_is_cut_where_the_caller_spoke() -> None:
    # 3 s of the bot's audio from t=100: loud, then quiet (skipped), then loud again; the
    # caller spoke at 101.0 and at 102.0. The call was answered at 99.5.
    loud = np.tile(TONE, 50)  # 1 s
    audio = np.concatenate([loud, np.zeros(RECEIVED_RATE, np.int16), loud])
    result = call_result([], [101.0, 102.0], audio=audio, start=100.0, answered=99.5)
    scribe = Scribe()
    heard = await transcribe_received(result, scribe)  # type: ignore[arg-type]
    assert [(s.start_s, s.text) for s in heard] == [(0.5, "16000 samples"), (2.5, "16000 samples")]
    assert scribe.given == [16000, 16000]  # 1 s each, at whisper's 16 kHz


async def test_nothing_received_is_nothing_heard() -> None:
    scribe = Scribe()
    assert await transcribe_received(call_result([], [1.0]), scribe) == []  # type: ignore[arg-type]
    assert scribe.given == []


# -- times at the phone ------------------------------------------------------------------------


def test_voice_to_voice_is_from_the_callers_last_word_to_the_bots_first() -> None:
    hours = allison("hours")
    ended = 100.0 + speech_end_s(hours)
    packets = bot_audio(ended + 0.1, 10, voiced=False) + bot_audio(ended + 0.5, 10, seq=10)
    result = call_result(packets, [100.0])
    assert voice_to_voice_ms(result, 0, hours) == pytest.approx(500.0)
    assert voice_to_voice_ms(result, 1, hours) is None  # no such step
    assert voice_to_voice_ms(call_result(packets, [None]), 0, hours) is None  # never sent
    assert voice_to_voice_ms(call_result([], [100.0]), 0, hours) is None  # no answer


def test_speech_onset_and_end_of_a_recording() -> None:
    hours = allison("hours")
    onset, end = speech_onset_s(hours), speech_end_s(hours)
    assert 0 <= onset < end <= hours.size / RECEIVED_RATE
    assert (onset, end) == (
        levels.speech_onset_s(hours, RECEIVED_RATE),
        levels.speech_end_s(hours, RECEIVED_RATE),
    )


@pytest.mark.parametrize(
    ("prompt_until", "onset_s", "stop_ms"),
    [
        (101.0, 0.1, 700.0),  # the caller spoke up at 100.3; the prompt stopped at 101.0
        (100.5, 0.1, 200.0),
        (100.2, 0.1, 0.0),  # the prompt had ended before the caller spoke
    ],
)
def test_a_barge_in_is_timed_from_the_callers_voice_to_the_prompts_last_packet(
    prompt_until: float, onset_s: float, stop_ms: float
) -> None:
    frames = round((prompt_until - 100.0) / 0.02) + 1
    packets = bot_audio(100.0, frames) + bot_audio(102.0, 20, seq=500)  # then the answer
    result = call_result(packets, [100.2])
    measured = barge_in_stop_ms(result, 0, allison("hours"), onset_s=onset_s)
    assert measured == pytest.approx(stop_ms, abs=1e-6)


def test_a_barge_in_onset_is_found_in_the_callers_audio_when_not_given() -> None:
    hours = allison("hours")
    onset = 100.2 + speech_onset_s(hours)
    packets = bot_audio(100.0, 51) + bot_audio(102.0, 20, seq=500)  # prompt until 101.0
    measured = barge_in_stop_ms(call_result(packets, [100.2]), 0, hours)
    assert measured == pytest.approx((101.0 - onset) * 1000)


def test_no_barge_in_time_without_the_step_or_the_prompt() -> None:
    hours = allison("hours")
    assert barge_in_stop_ms(call_result(bot_audio(100.0, 5), [None]), 0, hours) is None
    assert barge_in_stop_ms(call_result(bot_audio(100.0, 5), []), 0, hours) is None
    assert barge_in_stop_ms(call_result([], [100.2]), 0, hours) is None


def test_wire_pacing_of_the_bots_audio() -> None:
    # Two talkspurts without markers (as Asterisk sends towards a phone), 20 ms apart within.
    packets = bot_audio(100.0, 10) + bot_audio(101.0, 10, seq=10)
    text = wire_pacing(call_result(packets, []))
    assert text.startswith("bot audio on the wire: 20 packets in 2 talkspurts; gaps median 20.0")
    assert text.endswith("100.0% within 20±2 ms; wrong size 0")
    assert wire_pacing(call_result([], [])) == "bot audio on the wire: no packets"


# -- the bot's status server -------------------------------------------------------------------


@pytest.fixture
async def status() -> AsyncIterator[tuple[dict[str, Any], list[dict[str, str]]]]:
    """A bot's status server: its answers (``health``, ``calls``) and the headers it got."""
    answers: dict[str, Any] = {"health": {"ari_connected": True}, "calls": {"recent": []}}
    headers: list[dict[str, str]] = []

    async def health(request: web.Request) -> web.Response:
        return web.json_response(answers["health"])

    async def calls(request: web.Request) -> web.Response:
        headers.append(dict(request.headers))
        return web.json_response(answers["calls"])

    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_get("/calls", calls)
    async with TestServer(app, host="127.0.0.1") as server:
        answers["port"] = server.port
        yield answers, headers


def config_for(port: int, token: str = "") -> Config:
    return Config(
        ari=AriConfig(url="http://pbx.example:8088"),
        http=HttpConfig(host="127.0.0.1", port=port, token=token),
    )


async def test_a_connected_bot_is_answering(
    status: tuple[dict[str, Any], list[dict[str, str]]],
) -> None:
    answers, _ = status
    assert await bot_is_answering(config_for(answers["port"])) is None


async def test_a_bot_not_connected_to_asterisk_says_so(
    status: tuple[dict[str, Any], list[dict[str, str]]],
) -> None:
    answers, _ = status
    answers["health"] = {"ari_connected": False}
    why = await bot_is_answering(config_for(answers["port"]))
    assert why is not None
    assert why.startswith(
        "the bot is running but not connected to Asterisk at http://pbx.example:8088"
    )


async def test_no_bot_there_says_how_to_start_one() -> None:
    async with TestServer(web.Application(), host="127.0.0.1") as server:
        port = server.port  # free again once the server is gone
    assert port is not None
    why = await bot_is_answering(config_for(port))
    assert why is not None
    assert f"nothing answered at http://127.0.0.1:{port}/health" in why and "make run" in why


async def test_without_a_status_server_nothing_is_asked() -> None:
    assert await bot_is_answering(config_for(0)) is None
    assert await recent_call_summary(config_for(0), since=0.0) is None


async def test_the_newest_call_since_the_probe_began_is_the_probes(
    status: tuple[dict[str, Any], list[dict[str, str]]],
) -> None:
    answers, headers = status
    answers["calls"] = {
        "recent": [
            {"call_id": "old", "started": 50.0},
            {"call_id": "mine", "started": 99.5},
            {"call_id": "next", "started": 120.0},
        ]
    }
    summary = await recent_call_summary(config_for(answers["port"], token="t0ken"), since=100.0)
    assert summary is not None and summary["call_id"] == "next"
    assert headers[-1]["Authorization"] == "Bearer t0ken"
    answers["calls"] = {"recent": [{"call_id": "old", "started": 50.0}]}
    assert await recent_call_summary(config_for(answers["port"]), since=100.0) is None
    assert "Authorization" not in headers[-1]


async def test_a_calls_answer_without_recent_calls_is_no_summary(
    status: tuple[dict[str, Any], list[dict[str, str]]],
) -> None:
    answers, _ = status
    answers["calls"] = {"active": []}
    assert await recent_call_summary(config_for(answers["port"]), since=0.0) is None
