"""Per-turn latency of the bot with the real models, in-process, without Asterisk.

Each round plays the Asterisk side of one externalMedia RTP stream over real UDP sockets:
it waits for the greeting, sends one recorded utterance as 20 ms packets in real time, then
stops sending (as many phones do when the caller falls silent) and waits for the answer.
The session's ``TurnTiming`` gives the stage breakdown; the packets the peer received give
the outbound pacing as a far end would see it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..call import CallEnd, CallSession, TurnTiming
from ..capture.wav import read_wav
from ..config import Config
from ..dialog.library import script_settings
from ..dialog.model import Script
from ..dialog.parser import load_script
from ..errors import VoicebotError
from ..media.codecs import Codec, get_codec, reply_codec, resample
from ..media.endpoint import PortAllocator, RtpEndpoint
from ..media.peer import Arrival, RtpPeer
from ..media.rtp import SEQUENCE_MODULUS, TIMESTAMP_MODULUS
from ..runtime import Runtime
from .sounds import ALLISON_DIR, missing_sound_message

# Allison's recordings matching the demo script's intents: "hours" → hours, "goodbye" → goodbye.
DEFAULT_UTTERANCES = (ALLISON_DIR / "hours.wav", ALLISON_DIR / "goodbye.wav")
DEFAULT_SCRIPT = Path(__file__).resolve().parents[1] / "prompts" / "demo.yaml"

FRAME_MS = 20
# The peer's view of a prompt being over: nothing received for this long.
QUIET_S = 0.5
GREETING_TIMEOUT_S = 60.0
ANSWER_TIMEOUT_S = 30.0
# Bench sockets stay outside the bot's default RTP range (40000-40999), so a bot or a packet
# capture running on the same machine never sees benchmark traffic.
BENCH_PORTS = (47000, 47099)
# "On time" for an outbound packet gap.
GAP_TOLERANCE_MS = 2.0

STAGES: tuple[tuple[str, str], ...] = (
    ("pause", "pause seen (voice end → decode starts, vad.pause_ms)"),
    ("asr", "asr (decode of the turn)"),
    ("wait", "turn taken (voice end → decision)"),
    ("dialog", "dialog (decision → actions)"),
    ("tts", "tts first chunk (actions → first audio)"),
    ("send", "send (first audio → first RTP packet)"),
    ("total", "total: decision → first RTP packet"),
    ("total_from_voice_end", "total: voice end → first RTP packet"),
    ("voice_end_to_decision", "peer: caller's last voiced frame → decision"),
    ("voice_to_voice", "peer: voice to voice (last voiced → first voiced)"),
)


class BenchError(VoicebotError):
    """A benchmark round could not be completed (no greeting, no answer, call crashed)."""


# -- results ---------------------------------------------------------------------------------


@dataclass
class RoundResult:
    round: int
    utterance: str
    heard: str
    intent: str | None
    answer: str
    end: str  # "bot-hangup" | "answered"
    stages_ms: dict[str, float | None]


@dataclass
class PacingStats:
    codec: str
    expected_frame_bytes: int
    packets: int = 0
    talkspurts: int = 0
    wrong_size: int = 0
    wrong_payload_type: int = 0
    sequence_breaks: int = 0  # within a talkspurt
    timestamp_breaks: int = 0  # within a talkspurt
    gaps_ms: list[float] = field(default_factory=list)

    def add_stream(
        self,
        arrivals: Sequence[Arrival],
        payload_type: int,
        samples: int,
        *,
        split_gap_ms: float | None = None,
    ) -> None:
        """Count packets and gaps. A talkspurt starts at a marker bit or, for senders that do
        not mark them (Asterisk towards a phone), after more than ``split_gap_ms`` of silence."""
        previous: Arrival | None = None
        for arrival in arrivals:
            packet = arrival.packet
            self.packets += 1
            if len(packet.payload) != self.expected_frame_bytes:
                self.wrong_size += 1
            if packet.payload_type != payload_type:
                self.wrong_payload_type += 1
            gap_ms = (arrival.at - previous.at) * 1000 if previous is not None else 0.0
            if (
                packet.marker
                or previous is None
                or (split_gap_ms is not None and gap_ms > split_gap_ms)
            ):
                self.talkspurts += 1
            else:
                prev = previous.packet
                if packet.sequence != (prev.sequence + 1) % SEQUENCE_MODULUS:
                    self.sequence_breaks += 1
                if packet.timestamp != (prev.timestamp + samples) % TIMESTAMP_MODULUS:
                    self.timestamp_breaks += 1
                self.gaps_ms.append(gap_ms)
            previous = arrival

    def summary(self) -> dict[str, Any]:
        gaps = np.asarray(self.gaps_ms, dtype=np.float64)
        out: dict[str, Any] = {
            "codec": self.codec,
            "packets": self.packets,
            "talkspurts": self.talkspurts,
            "expected_frame_bytes": self.expected_frame_bytes,
            "wrong_size": self.wrong_size,
            "wrong_payload_type": self.wrong_payload_type,
            "sequence_breaks": self.sequence_breaks,
            "timestamp_breaks": self.timestamp_breaks,
            "gaps": len(gaps),
        }
        if len(gaps):
            out.update(
                median_ms=round(float(np.median(gaps)), 2),
                p95_ms=round(float(np.percentile(gaps, 95)), 2),
                p99_ms=round(float(np.percentile(gaps, 99)), 2),
                max_ms=round(float(gaps.max()), 2),
                min_ms=round(float(gaps.min()), 2),
                within_tolerance=round(
                    float(np.mean(np.abs(gaps - FRAME_MS) <= GAP_TOLERANCE_MS)), 4
                ),
            )
        return out


@dataclass
class BenchReport:
    codec: str
    rounds: list[RoundResult]
    pacing: PacingStats
    machine: dict[str, Any]
    load_s: float

    def stage_summary(self) -> dict[str, dict[str, float | int]]:
        out: dict[str, dict[str, float | int]] = {}
        for key, _label in STAGES:
            values = np.asarray(
                [v for r in self.rounds if (v := r.stages_ms.get(key)) is not None],
                dtype=np.float64,
            )
            if not len(values):
                continue
            out[key] = {
                "n": len(values),
                "p50": round(float(np.percentile(values, 50)), 1),
                "p95": round(float(np.percentile(values, 95)), 1),
                "max": round(float(values.max()), 1),
            }
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "codec": self.codec,
            "rounds": len(self.rounds),
            "machine": self.machine,
            "models_load_s": round(self.load_s, 1),
            "stages_ms": self.stage_summary(),
            "pacing": self.pacing.summary(),
            "turns": [vars(r) for r in self.rounds],
        }

    def format(self) -> str:
        m = self.machine
        lines = [
            f"voicebot turn latency: {len(self.rounds)} rounds, codec {self.codec}, "
            f"real models (whisper {m['asr_model']}, {m['asr_threads']} threads; "
            f"piper {m['tts_voice']}, fixed prompts cached)",
            f"machine: {m['cpu_count']} CPUs ({m['cpus_usable']} usable), {m['cpu_model']}, "
            f"python {m['python']}; load average (1/5/15 min) "
            f"{' '.join(map(str, m['load_average']))} at start, "
            f"{' '.join(map(str, m.get('load_average_end', [])))} at end "
            "(other processes share these CPUs)",
            f"models loaded in {self.load_s:.1f} s",
            "",
            f"{'stage (ms)':<52} {'p50':>8} {'p95':>8} {'max':>8} {'n':>4}",
            "-" * 84,
        ]
        summary = self.stage_summary()
        for key, label in STAGES:
            s = summary.get(key)
            if s is None:
                lines.append(f"{label:<52} {'-':>8} {'-':>8} {'-':>8} {0:>4}")
                continue
            if key == "total":
                lines.append("-" * 84)
            lines.append(
                f"{label:<52} {s['p50']:>8.1f} {s['p95']:>8.1f} {s['max']:>8.1f} {s['n']:>4}"
            )
        p = self.pacing.summary()
        lines += ["", "outbound pacing (bot → peer, gaps within talkspurts):"]
        if p["gaps"]:
            lines.append(
                f"  {p['gaps']} gaps in {p['talkspurts']} talkspurts: median {p['median_ms']:.2f} "
                f"p95 {p['p95_ms']:.2f} p99 {p['p99_ms']:.2f} max {p['max_ms']:.2f} "
                f"min {p['min_ms']:.2f} ms; within {FRAME_MS}±{GAP_TOLERANCE_MS:.0f} ms: "
                f"{p['within_tolerance'] * 100:.1f}%"
            )
        else:
            lines.append("  no gaps measured")
        lines.append(
            f"  frames: {p['packets'] - p['wrong_size']}/{p['packets']} of "
            f"{p['expected_frame_bytes']} bytes; wrong payload type {p['wrong_payload_type']}; "
            f"seq breaks {p['sequence_breaks']}; timestamp breaks {p['timestamp_breaks']}"
        )
        lines += ["", "turns:"]
        for r in self.rounds:
            total = r.stages_ms.get("total")
            shown = "-" if total is None else f"{total:.1f}"
            lines.append(
                f"  {r.round:>3} {r.utterance:<14} heard {r.heard!r:<14} → "
                f"{r.intent or '(no match)':<10} total {shown:>7} ms  ({r.end})"
            )
        return "\n".join(lines)


def _stages(
    t: TurnTiming, voice_ended: float, answer_heard: float | None
) -> dict[str, float | None]:
    def ms(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else round((b - a) * 1000, 1)

    return {
        "pause": ms(t.voice_end, t.paused),
        "asr": ms(t.paused, t.transcribed),
        "wait": ms(t.voice_end, t.decided),
        "dialog": ms(t.decided, t.dialog_done),
        "tts": ms(t.dialog_done, t.first_audio),
        "send": ms(t.first_audio, t.first_packet),
        "total": ms(t.decided, t.first_packet),
        "total_from_voice_end": ms(t.voice_end, t.first_packet),
        "voice_end_to_decision": ms(voice_ended, t.decided),
        "voice_to_voice": ms(voice_ended, answer_heard),
    }


def machine_facts(config: Config) -> dict[str, Any]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {
        "load_average": [round(v, 2) for v in load],
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
        "cpu_model": model,
        "python": platform.python_version(),
        "asr_model": config.asr.whisper_model or "tiny.en (bundled)",
        "asr_threads": config.asr.threads,
        "tts_voice": config.tts.voice or "en_US-joe-medium (bundled)",
    }


# -- one round -------------------------------------------------------------------------------


async def _wait_until(predicate: Callable[[], bool], within_s: float, what: str) -> None:
    deadline = time.monotonic() + within_s
    while not predicate():
        if time.monotonic() > deadline:
            raise BenchError(f"{what} within {within_s:.0f} s")
        await asyncio.sleep(0.01)


def _load_utterance(path: Path, codec: Codec) -> np.ndarray:
    try:
        pcm, rate = read_wav(path)
    except FileNotFoundError:
        raise BenchError(missing_sound_message(path)) from None
    except ValueError as exc:
        raise BenchError(str(exc)) from None
    return resample(pcm, rate, codec.sample_rate)


async def _one_round(
    number: int,
    config: Config,
    codec: Codec,
    script: Script,
    runtime: Runtime,
    allocator: PortAllocator,
    utterance: Path,
    pcm: np.ndarray,
    pacing: PacingStats,
) -> RoundResult:
    host = config.media.bind_host
    endpoint = await RtpEndpoint.open(allocator, host)
    peer = await RtpPeer.open(host)
    session: CallSession | None = None
    task: asyncio.Task[CallEnd] | None = None
    try:
        endpoint.set_remote(*peer.address)
        peer.bot = (host, endpoint.local_port)
        session = runtime.new_session(
            call_id=f"bench-{number}",
            endpoint=endpoint,
            codec=codec,
            script=script,
        )
        task = asyncio.create_task(session.run(), name=f"bench-{number}")

        def check_task() -> None:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise BenchError(f"round {number}: call crashed: {task.exception()!r}")

        try:
            await peer.wait_quiet(0, QUIET_S, GREETING_TIMEOUT_S)
        except TimeoutError as exc:
            check_task()
            raise BenchError(f"round {number}: greeting: {exc}") from None
        check_task()
        greeting_end = len(peer.received)

        await peer.send_speech(pcm, codec)
        # Measured as the caller lives it: from their last voiced frame, not the file's end.
        voice_ended = peer.last_voiced_sent
        try:
            await _wait_until(
                lambda: (
                    task.done()
                    or (
                        bool(session.stats.turns)
                        and session.stats.turns[-1].first_packet is not None
                    )
                ),
                ANSWER_TIMEOUT_S,
                "no answer (empty transcript or no match?)",
            )
        except BenchError as exc:
            check_task()
            heard = [line.text for line in session.transcript if line.who == "caller"]
            raise BenchError(f"round {number} ({utterance.name}): {exc}; heard {heard}") from None
        check_task()
        if not session.stats.turns or session.stats.turns[-1].first_packet is None:
            raise BenchError(f"round {number}: call ended without answering")
        # Let the answer play out: its packets count for the pacing figures too.
        if not task.done():
            with contextlib.suppress(TimeoutError):
                await peer.wait_quiet(greeting_end, QUIET_S, ANSWER_TIMEOUT_S)
        end = "bot-hangup" if task.done() and not task.cancelled() else "answered"
        check_task()
        timing = session.stats.turns[-1]
        answer = reply_codec(codec)
        first_voiced = peer.first_voiced_since(voice_ended, answer)
        answer_heard = first_voiced.at if first_voiced is not None else None
        pacing.add_stream(peer.received, answer.payload_type, answer.samples_per_frame(FRAME_MS))
        caller = next((line for line in session.transcript if line.who == "caller"), None)
        bot_lines = [line.text for line in session.transcript if line.who == "bot"]
        return RoundResult(
            round=number,
            utterance=utterance.name,
            heard=timing.text,
            intent=caller.intent if caller else None,
            answer=bot_lines[1] if len(bot_lines) > 1 else "",
            end=end,
            stages_ms=_stages(timing, voice_ended, answer_heard),
        )
    finally:
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await endpoint.aclose()
        peer.close()


async def bench_turns(
    config: Config,
    *,
    rounds: int,
    utterances: Sequence[Path] = DEFAULT_UTTERANCES,
    script: Path = DEFAULT_SCRIPT,
    ports: tuple[int, int] = BENCH_PORTS,
) -> BenchReport:
    """Measure per-turn latency with the real models; rounds cycle through ``utterances``."""
    if rounds < 1:
        raise BenchError("rounds must be at least 1")
    if not utterances:
        raise BenchError("at least one utterance is needed")
    codec = get_codec(config.media.format)
    audio = [_load_utterance(path, codec) for path in utterances]
    loaded = load_script(script, script_settings(config.dialog))
    machine = machine_facts(config)  # load average before our own work starts
    started = time.monotonic()
    runtime = await Runtime.open(config, {script.stem: loaded}, script.stem)
    load_s = time.monotonic() - started
    allocator = PortAllocator(config.media.bind_host, *ports)
    pacing = PacingStats(codec.name, reply_codec(codec).bytes_per_frame(FRAME_MS))
    results: list[RoundResult] = []
    try:
        for n in range(rounds):
            i = n % len(utterances)
            results.append(
                await _one_round(
                    n + 1,
                    config,
                    codec,
                    loaded,
                    runtime,
                    allocator,
                    utterances[i],
                    audio[i],
                    pacing,
                )
            )
    finally:
        await runtime.close()
    if hasattr(os, "getloadavg"):
        machine["load_average_end"] = [round(v, 2) for v in os.getloadavg()]
    return BenchReport(codec.name, results, pacing, machine, load_s)
