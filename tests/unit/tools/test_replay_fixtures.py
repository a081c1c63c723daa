"""Real calls, replayed: the captures in tests/fixtures/captures/ through the real pipeline.

Each capture was recorded by the bot on a real call through the sandbox Asterisk (sipp speaking
Allison's words or pressing keys; see the README there). Replayed into the real endpoint,
VAD, whisper, dialog and Piper, with and without network trouble, the bot must take the same
path and say the same lines as on the real call.
"""

from __future__ import annotations

import pytest

from tests.support.replaying import CAPTURES, Replayer, recorded_bot_lines, recorded_transcript
from voicebot.capture.impair import Impairments

pytestmark = pytest.mark.slow
DEMO = CAPTURES / "demo-hours-goodbye.pcap"
BANK_KEYS = CAPTURES / "bank-keys-balance.pcap"
DEMO_PATH = ["main", "hours", "goodbye"]
BANK_PATH = ["main", "account", "confirm", "report"]


def recorded_intents(capture_name: str) -> list[str | None]:
    lines = recorded_transcript(CAPTURES / capture_name)
    return [line.get("intent") for line in lines if line["who"] == "caller"]


def demo_bot_lines() -> list[str]:
    """What the demo said on the recorded call, with its goodbye as the script has it since
    (a synthesized thanks, then Allison's recorded "Goodbye")."""
    lines = recorded_bot_lines(DEMO)
    assert lines[-1] == "Thank you for calling. Goodbye!"
    return [*lines[:-1], "Thank you for calling.", "[audio audio/goodbye.wav]"]


async def test_recorded_speech_call_replays_to_the_same_path_and_lines(replay: Replayer) -> None:
    result = await replay(DEMO, "demo")
    assert result.end == "bot-hangup"
    assert result.states == DEMO_PATH
    assert result.bot_lines == demo_bot_lines()
    caller = [line.intent for line in result.transcript if line.who == "caller"]
    assert caller == recorded_intents(DEMO.name) == ["hours", "goodbye"]
    assert result.rtp.malformed_dropped == result.rtp.lost == 0
    assert all(turn["total_ms"] is not None for turn in result.turns)


async def test_recorded_keys_call_replays_with_its_keys(replay: Replayer) -> None:
    result = await replay(BANK_KEYS, "bank")
    assert result.keys == list("142171")
    assert result.end == "bot-hangup"
    assert result.states == BANK_PATH
    assert result.bot_lines == recorded_bot_lines(BANK_KEYS)


async def test_five_percent_loss_and_40_ms_jitter_take_the_same_path(replay: Replayer) -> None:
    trouble = Impairments(loss_pct=5, jitter_ms=40, seed=7)
    result = await replay(DEMO, "demo", impairments=trouble)
    assert result.impairments.lost > 20 and result.impairments.delayed > 700
    assert result.rtp.lost > 0  # the endpoint saw the gaps...
    assert result.states == DEMO_PATH  # ...and the dialog did not notice
    assert result.bot_lines == demo_bot_lines()


async def test_every_other_impairment_at_once_takes_the_same_path(replay: Replayer) -> None:
    trouble = Impairments(
        reorder_pct=10, duplicate_pct=10, ssrc_change_at_s=12.0, truncate_pct=3, seed=3
    )
    result = await replay(DEMO, "demo", impairments=trouble)
    stats = result.impairments
    assert stats.reordered and stats.duplicated and stats.ssrc_changed and stats.truncated
    assert result.rtp.duplicates > 0
    assert result.rtp.malformed_dropped > 0  # the cut headers, dropped and counted
    assert result.states == DEMO_PATH
    assert result.bot_lines == demo_bot_lines()


async def test_heavy_loss_makes_the_bot_reprompt_not_hang_or_crash(replay: Replayer) -> None:
    result = await replay(DEMO, "demo", impairments=Impairments(loss_pct=90, seed=1))
    assert result.end == "capture-ended"  # still listening, not crashed or stuck
    assert result.rtp.lost > 500
    reprompts = [line for line in result.bot_lines if line.startswith("Sorry")]
    assert reprompts, result.bot_lines
    assert result.final_state == "main"  # nothing it heard was taken for an answer
