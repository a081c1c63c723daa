"""Caller audio to speech frames: decoding, resampling, cutting, and concealing lost packets."""

from __future__ import annotations

import numpy as np

from voicebot.media.codecs import SLIN16, ULAW
from voicebot.media.inbound import FrameAssembler
from voicebot.media.rtp import TIMESTAMP_MODULUS, RtpPacket

LOUD = ULAW.encode(np.full(160, 8000, dtype=np.int16))


def packet(n: int, *, ssrc: int = 1, first_ts: int = 1000) -> RtpPacket:
    return RtpPacket(0, n % 65536, (first_ts + n * 160) % TIMESTAMP_MODULUS, ssrc, LOUD)


def samples(frames: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(frames) if frames else np.zeros(0, dtype=np.int16)


def test_frames_are_speech_rate_and_whole() -> None:
    assembler = FrameAssembler(ULAW, frame_ms=20)
    out = samples([f for n in range(50) for f in assembler.push_packet(packet(n))])
    # 16 kHz frames; the resampler holds some audio back (it is measured, not bounded, here).
    assert out.size % 320 == 0 and 40 * 320 <= out.size <= 50 * 320
    assert assembler.concealed_samples == 0


def test_lost_packets_become_silence_of_their_length() -> None:
    whole = FrameAssembler(ULAW)
    lossy = FrameAssembler(ULAW)
    full = samples([f for n in range(20) for f in whole.push_packet(packet(n))])
    kept = [n for n in range(20) if n not in (7, 8)]
    concealed = samples([f for n in kept for f in lossy.push_packet(packet(n))])
    assert lossy.concealed_samples == 320  # two 20 ms packets at 8 kHz
    assert concealed.size == full.size  # the timing survives the loss
    quiet = np.abs(concealed[7 * 320 + 40 : 9 * 320 - 40]).max()
    assert quiet < 1000 < np.abs(full[7 * 320 + 40 : 9 * 320 - 40]).min()


def test_long_gaps_new_streams_and_wall_clock_silence_are_not_concealed() -> None:
    assembler = FrameAssembler(ULAW)
    assembler.push_packet(packet(0))
    assembler.push_packet(packet(10))  # 180 ms gap: a pause, not loss
    assembler.push_packet(packet(11, ssrc=2, first_ts=5))  # a new stream
    assembler.push_packet(packet(12, ssrc=2, first_ts=5))
    assembler.silence(0.1)  # the call already counted the gap in wall-clock time
    assembler.push_packet(packet(14, ssrc=2, first_ts=5))
    assert assembler.concealed_samples == 0


def test_concealment_across_timestamp_wrap_and_at_16_khz() -> None:
    assembler = FrameAssembler(ULAW)
    first_ts = TIMESTAMP_MODULUS - 160
    assembler.push_packet(packet(0, first_ts=first_ts))
    assembler.push_packet(packet(2, first_ts=first_ts))  # timestamp wrapped past 2^32
    assert assembler.concealed_samples == 160
    wide = FrameAssembler(SLIN16)
    payload = SLIN16.encode(np.full(320, 5000, dtype=np.int16))
    wide.push_packet(RtpPacket(118, 0, 0, 9, payload))
    wide.push_packet(RtpPacket(118, 2, 640, 9, payload))
    assert wide.concealed_samples == 320


def test_a_pause_in_the_packets_first_releases_what_the_resampler_held_back() -> None:
    # A phone that stops sending when the caller stops talking: the end of the last word
    # must reach the VAD before the silence, not when the phone sends again.
    assembler = FrameAssembler(ULAW)
    words = samples([f for n in range(25) for f in assembler.push_packet(packet(n))])
    assert words.size < 25 * 320  # soxr keeps some back while it waits for more input
    flushed = assembler.silence(0.1)
    out = samples(flushed)
    assert words.size + out.size >= 25 * 320 + 5 * 320  # all the words, then the silence
    loud = np.flatnonzero(np.abs(out) > 4000)
    assert loud.size and loud[-1] < out.size - 4 * 320  # the held words come first
    assert assembler.silence(0.1) and len(assembler.silence(0.1)) == 5  # nothing left inside
