"""Received RTP laid out as one audio signal, pauses included: what a listener heard."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ..media.codecs import Codec
from ..media.g711 import PcmArray
from ..media.rtp import TIMESTAMP_MODULUS, RtpPacket

# Within a talkspurt packets arrive 20 ms apart give or take jitter; a disagreement beyond
# this between timestamp and arrival is a pause the timestamps did not count.
REANCHOR_S = 0.125


def lay_out_audio(
    received: Iterable[tuple[float, RtpPacket]], codec: Codec
) -> tuple[PcmArray, float | None]:
    """Decode the ``codec`` packets of ``(arrival_time, packet)`` pairs onto one timeline, and
    the arrival time of its first sample (None when there was no audio).

    Placed by RTP timestamp within a stream (SSRC), by arrival time across a change of SSRC
    or where the timestamps disagree with the arrival times. Asterisk does not advance its
    timestamps over the pauses between the bot's prompts, so a timeline kept by timestamps
    alone drifts earlier with every pause (seen: a prompt landing seconds early, on top of the
    one before)."""
    audio = [(at, p) for at, p in received if p.payload_type == codec.payload_type]
    if not audio:
        return np.zeros(0, dtype=np.int16), None
    rate = codec.sample_rate
    reanchor = round(REANCHOR_S * rate)
    start = audio[0][0]
    placed: list[tuple[int, PcmArray]] = []
    anchor_pos = 0
    anchor_ts = audio[0][1].timestamp
    ssrc = audio[0][1].ssrc
    for arrival, packet in audio:
        by_arrival = round((arrival - start) * rate)
        delta = (packet.timestamp - anchor_ts) % TIMESTAMP_MODULUS
        if delta >= TIMESTAMP_MODULUS // 2:
            delta -= TIMESTAMP_MODULUS
        pos = anchor_pos + delta
        if packet.ssrc != ssrc or abs(pos - by_arrival) > reanchor:
            ssrc = packet.ssrc
            anchor_pos, anchor_ts, pos = by_arrival, packet.timestamp, by_arrival
        if pos < 0:
            continue
        try:
            placed.append((pos, codec.decode(packet.payload)))
        except ValueError:
            continue  # an odd-length linear payload: nothing a listener could hear
    if not placed:
        return np.zeros(0, dtype=np.int16), start
    length = max(pos + len(samples) for pos, samples in placed)
    out = np.zeros(length, dtype=np.int16)
    for pos, samples in placed:
        out[pos : pos + len(samples)] = samples
    return out, start
