"""Recording real calls, and replaying the recordings: sipp → Asterisk 22 → the real bot.

The session bot records every call. Each recording must be a standard capture (tshark reads
it), hold every packet of both directions and the bot's own transcript, survive a shutdown in
mid-call, and replay (no Asterisk) to the same dialog path and the same bot lines.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.e2e.conftest import AsteriskSandbox, RunningBot, bot_environment, run_bot
from tests.e2e.helpers import allison, assert_all_released, last_call
from tests.support.replaying import Replayer, recorded_bot_lines, recorded_transcript
from voicebot.call.recording import BOT_MAC, CALLER_MAC
from voicebot.capture.pcap import read_pcap
from voicebot.media.rtp import RtpPacket
from voicebot.tools.sip import Dtmf, Pause, Play, WaitForBye, place_call

pytestmark = pytest.mark.slow
RATE = 8000
EVENT_PAYLOAD_TYPE = 101


def silence(seconds: float) -> Play:
    """What most phones send while the caller is quiet."""
    return Play(np.zeros(round(seconds * RATE), dtype=np.int16))


def recording_of(call: dict[str, Any]) -> Path:
    assert call["recording"], call
    path = Path(call["recording"])
    assert path.is_file() and path.with_suffix(".jsonl").is_file()
    return path


def tshark_payload_types(path: Path, rtp_port: int) -> list[str]:
    """What Wireshark's dissector makes of the recording (RTP on the bot's port)."""
    done = subprocess.run(
        ["tshark", "-r", str(path), "-d", f"udp.port=={rtp_port},rtp", "-T", "fields",
         "-e", "rtp.p_type"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return done.stdout.split()


async def test_a_real_call_is_recorded_whole_and_replays_to_the_same_path(
    asterisk: AsteriskSandbox, bot: RunningBot, replay: Replayer, tmp_path: Path
) -> None:
    await place_call(
        extension="100", workdir=tmp_path, timeout_s=90,
        steps=[silence(8.0), Play(allison("hours")), silence(7.5), Play(allison("goodbye")),
               WaitForBye(timeout_s=20)],
    )  # fmt: skip
    await assert_all_released(asterisk, bot)
    call = last_call(bot)
    path = recording_of(call)

    datagrams = read_pcap(path)  # strict: a file cut short raises
    caller = [d for d in datagrams if d.link_src == CALLER_MAC]
    sent = [d for d in datagrams if d.link_src == BOT_MAC]
    assert len(caller) == call["rtp"]["received"] > 500  # every packet Asterisk sent us
    assert len(sent) == call["rtp"]["sent"] > 500  # every packet we sent, to the last
    assert {d.dst[1] for d in caller} == {d.src[1] for d in sent} == {call["rtp_port"]}
    types = tshark_payload_types(path, call["rtp_port"])
    assert len(types) == len(datagrams) and set(types) == {"0"}  # PCMU both ways

    lines = recorded_transcript(path)
    assert lines == call["transcript"]  # the JSONL is the bot's own record of the call
    assert [line.get("intent") for line in lines if line["who"] == "caller"] == [
        "hours", "goodbye",
    ]  # fmt: skip
    answers = [line for line in lines if "latency_ms" in line]
    assert len(answers) == 2 and all(a["latency_ms"]["total_ms"] > 0 for a in answers)

    result = await replay(path, "demo")
    assert result.end == "bot-hangup"
    assert result.states == ["main", "hours", "goodbye"]
    assert result.bot_lines == recorded_bot_lines(path)


async def test_keys_of_a_real_call_are_recorded_and_pressed_again_on_replay(
    asterisk: AsteriskSandbox, bot: RunningBot, replay: Replayer, tmp_path: Path
) -> None:
    await place_call(
        extension="102", workdir=tmp_path, timeout_s=120,
        steps=[Pause(7.0), Dtmf("1"), Pause(4.5), Dtmf("4217"), Pause(5.5), Dtmf("1"),
               WaitForBye(timeout_s=25)],
    )  # fmt: skip
    await assert_all_released(asterisk, bot)
    call = last_call(bot)
    path = recording_of(call)
    # Asterisk delivers keys as ARI events only; the recorder writes them as RFC 4733.
    assert call["rtp"]["dtmf"] == 0
    events = [RtpPacket.parse(d.payload) for d in read_pcap(path) if d.link_src == CALLER_MAC]
    assert {p.payload_type for p in events} == {EVENT_PAYLOAD_TYPE}
    result = await replay(path, "bank")
    assert result.keys == list("142171")
    assert result.states == ["main", "account", "confirm", "report"]
    assert result.bot_lines == recorded_bot_lines(path)


SHUTDOWN_HTTP_PORT = 18091


@pytest.fixture
def recording_bot(asterisk: AsteriskSandbox, tmp_path: Path) -> Iterator[RunningBot]:
    """A bot of its own (ARI app voicebot-wideband, extension 916) that a test may stop."""
    env = bot_environment(
        asterisk,
        VOICEBOT_ARI_APP="voicebot-wideband",
        VOICEBOT_HTTP_PORT=str(SHUTDOWN_HTTP_PORT),
        VOICEBOT_MEDIA_PORT_MIN="42200",
        VOICEBOT_MEDIA_PORT_MAX="42299",
        VOICEBOT_RECORD_ENABLED="true",
        VOICEBOT_RECORD_DIR=str(tmp_path / "recordings"),
        # Stopped mid-call, it waits this long for the call to end, then hands it back.
        VOICEBOT_CALLS_DRAIN_TIMEOUT_S="1",
    )
    yield from run_bot(env, tmp_path / "voicebot.log", SHUTDOWN_HTTP_PORT)


async def test_stopping_the_bot_mid_call_leaves_a_complete_recording(
    asterisk: AsteriskSandbox, recording_bot: RunningBot, tmp_path: Path
) -> None:
    async def stop_bot_while_it_speaks() -> None:
        await asyncio.sleep(3.0)
        recording_bot.process.terminate()

    stopper = asyncio.create_task(stop_bot_while_it_speaks())
    result = await place_call(
        extension="916", workdir=tmp_path / "call", timeout_s=60,
        steps=[silence(2.0), WaitForBye(timeout_s=20)],
    )  # fmt: skip
    await stopper
    # On the way out the bot handed its caller back to the dialplan (VOICEBOT_RESULT=error),
    # whose fallback apologised and hung up.
    assert result.hangup_by == "remote"
    assert await asyncio.to_thread(recording_bot.process.wait, 30) == 0
    assert "handed back to the dialplan with VOICEBOT_RESULT=error" in recording_bot.log_text()
    (path,) = (tmp_path / "recordings").glob("*.pcap")
    datagrams = read_pcap(path)  # strict: the file was closed, not cut
    spoken = [d for d in datagrams if d.link_src == BOT_MAC]
    assert len(spoken) > 2 / 0.02  # the greeting, up to the stop
    lines = [json.loads(line) for line in path.with_suffix(".jsonl").read_text().splitlines()]
    assert lines[0]["who"] == "bot" and "demo" in lines[0]["text"]
