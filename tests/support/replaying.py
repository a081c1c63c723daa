"""Replaying captures in tests: the real pipeline and dialog, a few lines per test.

    async def test_x(replay: Replayer) -> None:
        result = await replay(CAPTURES / "demo-hours-goodbye.pcap", "demo",
                              impairments=Impairments(loss_pct=5, seed=1))
        assert result.states == ["main", "hours", "goodbye"]

Latencies are reported, never asserted (the machines are shared and noisy): each replay
prints them (``pytest -s`` shows it), and an answer slower than the bound (``latency_bound_ms``,
600 ms from the caller's last voiced frame to the first RTP packet of the answer, the
turn-taking goal's p95) becomes a
``SlowAnswerWarning`` in pytest's warnings summary.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

from voicebot.capture.impair import Impairments
from voicebot.capture.pcap import UdpDatagram
from voicebot.config import Config
from voicebot.media.dtmf import DEFAULT_EVENT_PAYLOAD_TYPE, DtmfDetector
from voicebot.media.rtp import RtpPacket
from voicebot.runtime import Runtime
from voicebot.tools.replay import ReplayResult, load_caller_stream, replay_call, resolve_script

ROOT = Path(__file__).resolve().parents[2]
PROMPTS = ROOT / "prompts"
CAPTURES = ROOT / "tests" / "fixtures" / "captures"


def recorded_transcript(capture: Path) -> list[dict[str, Any]]:
    """The transcript the bot wrote beside its recording (NAME.jsonl for NAME.pcap)."""
    lines = capture.with_suffix(".jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def recorded_bot_lines(capture: Path) -> list[str]:
    return [line["text"] for line in recorded_transcript(capture) if line["who"] == "bot"]


def keys_in(datagrams: list[UdpDatagram]) -> list[str]:
    """The key presses in a capture's telephone-event packets, each once."""
    detector = DtmfDetector()
    digits = []
    for datagram in datagrams:
        packet = RtpPacket.parse(datagram.payload)
        if packet.payload_type == DEFAULT_EVENT_PAYLOAD_TYPE:
            digit = detector.push(packet)
            if digit is not None:
                digits.append(digit)
    return digits


class SlowAnswerWarning(UserWarning):
    """A replayed answer took longer than the bound (reported, not a failure)."""


DEFAULT_LATENCY_BOUND_MS = 600.0


class Replayer:
    """Replays captures with the real models (whisper, Piper), loaded once per language."""

    def __init__(
        self, config: Config | None = None, latency_bound_ms: float = DEFAULT_LATENCY_BOUND_MS
    ) -> None:
        self.config = config or Config()
        self.latency_bound_ms = latency_bound_ms
        self._runtimes: dict[str, Runtime] = {}

    async def __call__(
        self,
        capture: Path,
        script: str | Path,
        *,
        impairments: Impairments | None = None,
        tail_s: float = 1.0,
        **selection: Any,
    ) -> ReplayResult:
        loaded = resolve_script(str(script), PROMPTS)
        stream, warning = load_caller_stream(capture, **selection)
        runtime = self._runtimes.get(loaded.language)
        if runtime is None:
            runtime = await Runtime.open(self.config, {"replay": loaded}, "replay")
            self._runtimes[loaded.language] = runtime
        else:
            await runtime.warm([loaded])
        result = await replay_call(stream, loaded, runtime, impairments=impairments, tail_s=tail_s)
        if warning:
            result.warnings.append(warning)
        totals = [t["total_ms"] for t in result.turns]
        what = f"replay {capture.name} ({(impairments or Impairments()).describe()})"
        print(
            f"{what}: {result.end}, states {' → '.join(result.states)}, "
            f"latency per turn (caller's voice end → first RTP) {totals} ms"
        )
        slow = [t for t in totals if t is None or t > self.latency_bound_ms]
        if slow:
            warnings.warn(
                f"{what}: {len(slow)} of {len(totals)} answers over "
                f"{self.latency_bound_ms:g} ms: {slow}",
                SlowAnswerWarning,
                stacklevel=2,
            )
        return result

    async def close(self) -> None:
        for runtime in self._runtimes.values():
            await runtime.close()
        self._runtimes.clear()
