"""The audio the test caller sends: WAV prompts in, one RTP pcap per step out.

sipp sends media by replaying pcaps (``play_pcap_audio``), so each Play and Dtmf step becomes
a pcap of PCMU or RFC 4733 telephone-event packets. ``plan_media`` builds the packets (pure);
``write_media`` writes them next to the scenario.
"""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ...capture.pcap import UdpDatagram, rtp_stream_from_pcm, write_pcap
from ...capture.wav import read_wav
from ...media.codecs import ULAW
from ...media.dtmf import dtmf_packets
from ...media.rtp import SEQUENCE_MODULUS, TIMESTAMP_MODULUS
from .scenario import FRAME_SAMPLES, PT_TELEPHONE_EVENT, SAMPLE_RATE, Dtmf, Pause, Pcm, Play, Step

# sipp replays a pcap by the packets' relative times; the absolute base is arbitrary.
PCAP_BASE_TIME = 1_000_000_000.0
# sipp replaces the pcaps' destination with the address from Asterisk's SDP.
PLACEHOLDER_REMOTE_PORT = 10000


def read_wav_8k(path: str | os.PathLike[str]) -> Pcm:
    """Read an 8 kHz 16-bit WAV (e.g. Asterisk's prompts) as mono int16 samples."""
    pcm, rate = read_wav(os.fspath(path))
    if rate != SAMPLE_RATE:
        raise ValueError(f"{path}: need an 8 kHz 16-bit WAV, got {rate} Hz")
    return pcm


@dataclass
class MediaPlan:
    # step index -> pcap file name (relative to the scenario's directory)
    pcaps: dict[int, str] = field(default_factory=dict)
    # step index -> first RTP sequence number of that step
    first_seq: dict[int, int] = field(default_factory=dict)
    ssrc: int = 0
    # step index -> the packets of its pcap
    datagrams: dict[int, list[UdpDatagram]] = field(default_factory=dict)


def pcap_name(index: int, step: Step) -> str:
    return f"step{index:02d}-{type(step).__name__.lower()}.pcap"


def plan_media(
    steps: Sequence[Step],
    media_ip: str,
    media_port: int,
    remote_ip: str,
    rng: random.Random | None = None,
) -> MediaPlan:
    """One pcap per Play/Dtmf step. All steps share one SSRC with continuous sequence
    numbers and timestamps that advance with the scheduled time, like a real phone."""
    rng = rng or random.Random()
    plan = MediaPlan(ssrc=rng.getrandbits(32))
    seq = rng.getrandbits(15)
    ts = rng.getrandbits(31)
    src = (media_ip, media_port)
    dst = (remote_ip, PLACEHOLDER_REMOTE_PORT)
    for index, step in enumerate(steps):
        packets: list[UdpDatagram] = []
        if isinstance(step, Play):
            plan.first_seq[index] = seq
            packets = rtp_stream_from_pcm(
                step.pcm, codec=ULAW, src=src, dst=dst, ssrc=plan.ssrc,
                start_time=PCAP_BASE_TIME, first_sequence=seq, first_timestamp=ts,
            )  # fmt: skip
            seq = (seq + len(packets)) % SEQUENCE_MODULUS
            ts = (ts + len(packets) * FRAME_SAMPLES) % TIMESTAMP_MODULUS
        elif isinstance(step, Dtmf):
            plan.first_seq[index] = seq
            packets = dtmf_datagrams(step, src, dst, plan.ssrc, seq, ts)
            seq = (seq + len(packets)) % SEQUENCE_MODULUS
            step_samples = len(step.digits) * (step.tone_ms + step.gap_ms) * SAMPLE_RATE // 1000
            ts = (ts + step_samples) % TIMESTAMP_MODULUS
        elif isinstance(step, Pause):
            ts = (ts + int(step.seconds * SAMPLE_RATE)) % TIMESTAMP_MODULUS
        if packets:
            plan.pcaps[index] = pcap_name(index, step)
            plan.datagrams[index] = packets
    return plan


def dtmf_datagrams(
    step: Dtmf, src: tuple[str, int], dst: tuple[str, int], ssrc: int, seq: int, ts: int
) -> list[UdpDatagram]:
    """RFC 4733 telephone-events for each digit, as a phone sends them (``dtmf_packets``);
    each digit has its own timestamp (the start of its tone)."""
    out: list[UdpDatagram] = []
    for index, digit in enumerate(step.digits.upper()):
        period_ms = index * (step.tone_ms + step.gap_ms)
        start = PCAP_BASE_TIME + period_ms / 1000.0
        packets = dtmf_packets(
            digit,
            ssrc=ssrc,
            first_sequence=(seq + len(out)) % SEQUENCE_MODULUS,
            timestamp=(ts + period_ms * SAMPLE_RATE // 1000) % TIMESTAMP_MODULUS,
            payload_type=PT_TELEPHONE_EVENT,
            duration_ms=step.tone_ms,
        )
        out += [UdpDatagram(start + offset, src, dst, p.serialize()) for offset, p in packets]
    return out


def write_media(plan: MediaPlan, workdir: Path) -> None:
    """Write each step's pcap into ``workdir`` under the name the scenario refers to."""
    for index, name in plan.pcaps.items():
        write_pcap(workdir / name, plan.datagrams[index])
