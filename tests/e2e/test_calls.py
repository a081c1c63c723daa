"""Real calls: sipp → Asterisk 22 → ARI + externalMedia → the real bot (whisper, Piper) → back.

The caller speaks Allison's recorded prompts (real human speech); what the caller heard is
transcribed with whisper and compared with the demo script's lines.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.e2e.conftest import (
    AsteriskSandbox,
    RunningBot,
    bot_environment,
    run_bot,
    start_bot,
)
from tests.e2e.helpers import allison, assert_all_released, last_call, wait_for, words
from voicebot.media.g711 import ulaw_encode
from voicebot.media.rtp import RtpPacket
from voicebot.speech.asr.whisper import WhisperEngine
from voicebot.tools.callprobe import transcribe_received
from voicebot.tools.sip import CallResult, Hangup, Pause, Play, WaitForBye, place_call

pytestmark = pytest.mark.slow
GREETING_S = 8.0  # the demo greeting lasts about 6 s
ANSWER_S = 7.5


async def test_call_hears_greeting_answers_spoken_choice_and_cleans_up(
    asterisk: AsteriskSandbox, bot: RunningBot, whisper: WhisperEngine, tmp_path: Path
) -> None:
    result = await place_call(
        extension="100", workdir=tmp_path, timeout_s=90,
        steps=[Pause(GREETING_S), Play(allison("hours")), Pause(ANSWER_S),
               Play(allison("goodbye")), WaitForBye(timeout_s=20)],
    )  # fmt: skip
    assert result.hangup_by == "remote"  # the bot said goodbye and hung up
    heard = await transcribe_received(result, whisper)
    assert len(heard) == 3, heard
    greeting, hours, goodbye = (words(s.text) for s in heard)
    assert "demo" in greeting and "hours" in greeting
    assert "monday" in hours and "friday" in hours
    assert "goodbye" in goodbye or "thank you" in goodbye

    await assert_all_released(asterisk, bot)
    call = last_call(bot)
    assert call["end_reason"] == "bot-hangup"
    caller_lines = [line for line in call["transcript"] if line["who"] == "caller"]
    assert [line["intent"] for line in caller_lines] == ["hours", "goodbye"]
    assert all(turn["total_ms"] is not None for turn in call["turns"])
    assert "latency:" in bot.log_text() and "caller's voice end → first RTP" in bot.log_text()


def _voiced_seconds(result: CallResult, rms: float = 300.0) -> float:
    frames = result.received_audio[: result.received_audio.size // 160 * 160].reshape(-1, 160)
    loud = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1)) > rms
    return float(loud.sum()) * 0.02


async def test_hangup_while_bot_speaks_releases_everything_and_next_call_works(
    asterisk: AsteriskSandbox, bot: RunningBot, tmp_path: Path
) -> None:
    first = await place_call(
        extension="100", workdir=tmp_path / "first", steps=[Pause(2.0), Hangup()]
    )
    assert _voiced_seconds(first) > 0.5  # the greeting was playing when the caller left
    await assert_all_released(asterisk, bot)
    assert last_call(bot)["end_reason"] == "caller hangup"
    assert "Traceback" not in bot.log_text()

    second = await place_call(
        extension="101", workdir=tmp_path / "second", steps=[Pause(4.0), Hangup()]
    )
    assert _voiced_seconds(second) > 2.0
    await assert_all_released(asterisk, bot)


async def test_two_calls_at_once_have_independent_dialogs(
    asterisk: AsteriskSandbox, bot: RunningBot, whisper: WhisperEngine, tmp_path: Path
) -> None:
    hours_call = place_call(
        extension="100", workdir=tmp_path / "a", timeout_s=90,
        steps=[Pause(GREETING_S), Play(allison("hours")), Pause(ANSWER_S), Hangup()],
    )  # fmt: skip
    goodbye_call = place_call(
        extension="101", workdir=tmp_path / "b", timeout_s=90,
        steps=[Pause(GREETING_S + 0.5), Play(allison("goodbye")), WaitForBye(timeout_s=20)],
    )  # fmt: skip
    hours_result, goodbye_result = await asyncio.gather(hours_call, goodbye_call)
    hours_heard = [words(s.text) for s in await transcribe_received(hours_result, whisper)]
    goodbye_heard = [words(s.text) for s in await transcribe_received(goodbye_result, whisper)]
    assert "monday" in hours_heard[-1] and "thank you" not in hours_heard[-1]
    assert "thank you" in goodbye_heard[-1] and "monday" not in goodbye_heard[-1]
    assert hours_result.hangup_by == "caller" and goodbye_result.hangup_by == "remote"
    await assert_all_released(asterisk, bot)
    ends = {c["end_reason"] for c in bot.get("/calls")["recent"][-2:]}
    assert ends == {"caller hangup", "bot-hangup"}


async def test_rtp_from_a_foreign_address_is_dropped_and_counted(
    asterisk: AsteriskSandbox, bot: RunningBot, tmp_path: Path
) -> None:
    call = asyncio.create_task(place_call(
        extension="100", workdir=tmp_path, steps=[Pause(4.0), Hangup()]
    ))  # fmt: skip
    await wait_for(lambda: bool(bot.get("/calls")["active"]), 10, "the call to reach the bot")
    port = bot.get("/calls")["active"][0]["rtp_port"]
    intruder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        noise = ulaw_encode((np.random.default_rng(1).normal(0, 8000, 160)).astype(np.int16))
        for seq in range(25):
            intruder.sendto(
                RtpPacket(0, seq, seq * 160, 0xBAD, noise).serialize(), ("127.0.0.1", port)
            )
            await asyncio.sleep(0.02)
    finally:
        intruder.close()
    await call
    await assert_all_released(asterisk, bot)
    stats = last_call(bot)["rtp"]
    assert stats["foreign_dropped"] >= 25, stats


def test_wrong_ari_password_exits_non_zero_naming_the_problem(
    asterisk: AsteriskSandbox, tmp_path: Path
) -> None:
    env = bot_environment(asterisk, VOICEBOT_ARI_PASSWORD="wrong-password", VOICEBOT_HTTP_PORT="0")
    process = start_bot(env, tmp_path / "bot.log")
    try:
        code = process.wait(timeout=120)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    log = (tmp_path / "bot.log").read_text()
    assert code == 1, log
    assert "401" in log and "wrong ari.user/ari.password" in log


def test_unreachable_asterisk_is_retried_with_backoff_and_reported(
    asterisk: AsteriskSandbox, tmp_path: Path
) -> None:
    env = bot_environment(
        asterisk,
        VOICEBOT_ARI_URL="http://127.0.0.1:9",
        VOICEBOT_HTTP_PORT="0",
        VOICEBOT_ARI_RETRY_INITIAL_S="0.2",
        VOICEBOT_ARI_RETRY_MAX_S="1",
    )
    log_path = tmp_path / "bot.log"
    process = start_bot(env, log_path)
    try:
        deadline = time.monotonic() + 120
        while log_path.read_text().count("not reachable") < 3:
            assert process.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.5)
    finally:
        process.terminate()
        process.wait(timeout=30)
    retries = [line for line in log_path.read_text().splitlines() if "not reachable" in line]
    assert all("retrying in" in line for line in retries)


WIDEBAND_HTTP_PORT = 18090


@pytest.fixture(scope="module")
def wideband_bot(
    asterisk: AsteriskSandbox, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningBot]:
    """A second bot on its own ARI app (extension 916) with media.format = slin16."""
    env = bot_environment(
        asterisk,
        VOICEBOT_ARI_APP="voicebot-wideband",
        VOICEBOT_MEDIA_FORMAT="slin16",
        VOICEBOT_HTTP_PORT=str(WIDEBAND_HTTP_PORT),
        VOICEBOT_MEDIA_PORT_MIN="42100",
        VOICEBOT_MEDIA_PORT_MAX="42199",
    )
    yield from run_bot(
        env, tmp_path_factory.mktemp("wideband") / "voicebot.log", WIDEBAND_HTTP_PORT
    )


async def test_slin16_call_hears_the_bot_and_is_understood(
    asterisk: AsteriskSandbox, wideband_bot: RunningBot, whisper: WhisperEngine, tmp_path: Path
) -> None:
    result = await place_call(
        extension="916", workdir=tmp_path, timeout_s=90,
        steps=[Pause(GREETING_S), Play(allison("hours")), Pause(ANSWER_S), Hangup()],
    )  # fmt: skip
    heard = [words(s.text) for s in await transcribe_received(result, whisper)]
    assert "demo" in heard[0] and "monday" in heard[-1], heard
    await assert_all_released(asterisk, wideband_bot)
    call = last_call(wideband_bot)
    assert [t["intent"] for t in call["transcript"] if t["who"] == "caller"] == ["hours"]
