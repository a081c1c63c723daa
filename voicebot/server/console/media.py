"""A recorded call's audio for the console: both sides as PCM on one clock, WAV on request.

Our recorder marks each packet's direction by its Ethernet source (``CALLER_MAC``, ``BOT_MAC``),
so the sides are split by that mark. Each side is laid out as a listener heard it (pauses
included, ``lay_out_audio``) and placed on the clock of the recording's first packet: both
sides' WAVs start at the same moment and last as long, so a player seeks them together.

Reading decodes the whole file: blocking, for a worker thread (the console runs it in an
executor), never the event loop.
"""

from __future__ import annotations

import io
import wave
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from ...call.recording import BOT_MAC, CALLER_MAC
from ...capture.pcap import UdpDatagram, read_capture
from ...capture.timeline import lay_out_audio
from ...capture.wav import WAV_SAMPLE_WIDTH, wav_bytes
from ...errors import CaptureError
from ...media.codecs import ALAW, SLIN8, SLIN16, ULAW, Codec, resample
from ...media.g711 import PcmArray
from ...media.levels import FRAMES_PER_SECOND, VOICED_RMS
from ...media.rtp import RtpPacket

Side = Literal["caller", "bot", "both"]
SIDES: tuple[Side, ...] = ("caller", "bot", "both")
# What our calls carry: PCMU/PCMA from phones, slin16 from externalMedia, L16 8 kHz replies.
AUDIO_CODECS: dict[int, Codec] = {c.payload_type: c for c in (ULAW, ALAW, SLIN16, SLIN8)}
# A side that sent no audio at all (a caller who only pressed keys) is silence at this rate.
DEFAULT_RATE = ULAW.sample_rate
# Pauses between words and sentences shorter than this are one stretch of voice on the
# timeline (a prompt is one block, not one per sentence).
BRIDGE_GAP_S = 0.5
# A lone voiced frame or two is a click, not speech.
MIN_VOICE_S = 0.06


class RecordingError(CaptureError):
    """A call's recording cannot be read as audio; the message names the file."""


@dataclass(frozen=True)
class CallAudio:
    """Both sides of a recorded call at one sample ``rate``, equally long, sample 0 being the
    recording's first packet (``started``, epoch seconds; None for a recording with none)."""

    caller: PcmArray
    bot: PcmArray
    rate: int
    started: float | None

    @property
    def duration_s(self) -> float:
        return len(self.caller) / self.rate

    def pcm(self, side: Literal["caller", "bot"]) -> PcmArray:
        if side not in ("caller", "bot"):
            raise ValueError(f"side must be 'caller' or 'bot', got {side!r}")
        return self.caller if side == "caller" else self.bot

    def wav(self, side: Side) -> bytes:
        """One side as a mono WAV, or "both" as a stereo WAV: the caller left, the bot right."""
        if side != "both":
            return wav_bytes(self.pcm(side), self.rate)
        frames = np.column_stack((self.caller, self.bot)).astype("<i2")
        buffer = io.BytesIO()
        with wave.open(buffer, "wb") as out:
            out.setnchannels(2)
            out.setsampwidth(WAV_SAMPLE_WIDTH)
            out.setframerate(self.rate)
            out.writeframes(frames.tobytes())
        return buffer.getvalue()

    def voice(self) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        """Where each side is voiced, (caller, bot): ``voice_segments`` of their PCM."""
        return voice_segments(self.caller, self.rate), voice_segments(self.bot, self.rate)


def _side_audio(
    datagrams: Sequence[UdpDatagram],
) -> tuple[PcmArray, int, float | None]:
    """One side's packets laid out as heard: PCM, its rate and its first sample's time."""
    received: list[tuple[float, RtpPacket]] = []
    for datagram in datagrams:
        try:
            received.append((datagram.time, RtpPacket.parse(datagram.payload)))
        except ValueError:
            continue  # malformed: nothing a listener heard
    types = Counter(p.payload_type for _, p in received if p.payload_type in AUDIO_CODECS)
    if not types:
        return np.zeros(0, dtype=np.int16), 0, None
    codec = AUDIO_CODECS[types.most_common(1)[0][0]]
    pcm, start = lay_out_audio(received, codec)
    return pcm, codec.sample_rate, start


def _placed(pcm: PcmArray, rate: int, out_rate: int, offset_s: float, length: int) -> PcmArray:
    if rate and rate != out_rate:
        pcm = resample(pcm, rate, out_rate)
    out = np.zeros(length, dtype=np.int16)
    at = max(0, round(offset_s * out_rate))
    piece = pcm[: max(0, length - at)]
    out[at : at + len(piece)] = piece
    return out


def call_audio(pcap_path: str | Path) -> CallAudio:
    """Read a recording of ours once: both sides' PCM on the clock of its first packet.

    Raises ``CaptureError`` naming the file when it is missing or cannot be read,
    ``RecordingError`` when it is not a recording of ours (no packet marked by its side)."""
    path = Path(pcap_path)
    # A recording still being written (or whose bot was killed) ends mid-packet: what came
    # before the cut is the call so far.
    datagrams = sorted(read_capture(path)[0], key=lambda d: d.time)
    marked = [d for d in datagrams if d.link_src in (CALLER_MAC, BOT_MAC)]
    if datagrams and not marked:
        raise RecordingError(f"{path}: not a voicebot recording (no packet marked by its side)")
    sides = [_side_audio([d for d in marked if d.link_src == mac]) for mac in (CALLER_MAC, BOT_MAC)]
    rate = max((side_rate for _, side_rate, _ in sides), default=0) or DEFAULT_RATE
    started = marked[0].time if marked else None
    if started is None:
        silence = np.zeros(0, dtype=np.int16)
        return CallAudio(caller=silence, bot=silence, rate=rate, started=None)
    # The call lasts until its last packet's audio ends, whichever side sent it.
    end_s = max(marked[-1].time - started, 0.0)
    for pcm, side_rate, first in sides:
        if first is not None:
            end_s = max(end_s, first - started + len(pcm) / side_rate)
    length = round(end_s * rate)
    caller, bot = (
        _placed(pcm, side_rate, rate, (started if first is None else first) - started, length)
        for pcm, side_rate, first in sides
    )
    return CallAudio(caller=caller, bot=bot, rate=rate, started=started)


def voice_segments(
    pcm: PcmArray,
    rate: int,
    *,
    floor_rms: float = VOICED_RMS,
    bridge_s: float = BRIDGE_GAP_S,
    min_s: float = MIN_VOICE_S,
) -> list[tuple[float, float]]:
    """Where ``pcm`` is voiced, as (start, end) seconds: 20 ms frames whose RMS is over
    ``floor_rms`` (the project's one definition of voice), gaps shorter than ``bridge_s``
    bridged, stretches shorter than ``min_s`` dropped."""
    if rate <= 0:
        raise ValueError(f"rate must be positive, got {rate}")
    frame = max(1, rate // FRAMES_PER_SECOND)
    frames = len(pcm) // frame
    if frames == 0:
        return []
    blocks = np.asarray(pcm[: frames * frame], dtype=np.float64).reshape(frames, frame)
    voiced = np.sqrt(np.mean(blocks**2, axis=1)) > floor_rms
    edges = np.diff(np.concatenate(([0], voiced.astype(np.int8), [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    frame_s = frame / rate
    segments: list[tuple[float, float]] = []
    for start, end in zip(starts, ends, strict=True):
        begin_s, end_s = float(start * frame_s), float(end * frame_s)
        if segments and begin_s - segments[-1][1] < bridge_s:
            segments[-1] = (segments[-1][0], end_s)
        else:
            segments.append((begin_s, end_s))
    return [(round(a, 3), round(b, 3)) for a, b in segments if b - a >= min_s]
