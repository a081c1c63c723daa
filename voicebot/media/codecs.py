"""The payload formats we speak with Asterisk, and sample-rate conversion."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import soxr

from ..errors import MediaError
from .g711 import (
    PcmArray,
    alaw_decode,
    alaw_encode,
    slin16_decode,
    slin16_encode,
    ulaw_decode,
    ulaw_encode,
)

DEFAULT_FRAME_MS = 20
MS_PER_SECOND = 1000
PAYLOAD_TYPE_ULAW = 0
PAYLOAD_TYPE_ALAW = 8
# The number Asterisk's static table gives slin16 (a dynamic type in RFC 3551 terms).
PAYLOAD_TYPE_SLIN16 = 118
# RFC 3551's L16 mono; Asterisk's static table maps it to 8 kHz signed linear.
PAYLOAD_TYPE_L16_8K = 11
# Asterisk's chan_rtp (externalMedia) has no receive mapping of its own: a received payload
# type is looked up in the static table only up to 34 (rtp_engine.c,
# ast_rtp_codecs_get_payload). slin16's 118 is sent by Asterisk but silently dropped when
# received (measured on Asterisk 22.10: no audio reaches the caller). So 16 kHz audio comes
# in, and replies go back as L16 at 8 kHz, which Asterisk does accept.
LAST_STATIC_PAYLOAD_TYPE = 34
RESAMPLER_QUALITY = "HQ"


@dataclass(frozen=True)
class Codec:
    name: str
    payload_type: int
    sample_rate: int
    encode: Callable[[PcmArray], bytes]
    decode: Callable[[bytes], PcmArray]
    bytes_per_sample: int = 1

    def samples_per_frame(self, ms: int = DEFAULT_FRAME_MS) -> int:
        samples, remainder = divmod(self.sample_rate * ms, MS_PER_SECOND)
        if remainder or samples <= 0:
            raise ValueError(f"{ms} ms is not a whole number of samples at {self.sample_rate} Hz")
        return samples

    def bytes_per_frame(self, ms: int = DEFAULT_FRAME_MS) -> int:
        return self.samples_per_frame(ms) * self.bytes_per_sample


ULAW = Codec("ulaw", PAYLOAD_TYPE_ULAW, 8000, ulaw_encode, ulaw_decode)
ALAW = Codec("alaw", PAYLOAD_TYPE_ALAW, 8000, alaw_encode, alaw_decode)
SLIN16 = Codec("slin16", PAYLOAD_TYPE_SLIN16, 16000, slin16_encode, slin16_decode, 2)
# Big-endian 16-bit linear at 8 kHz: the same byte layout as slin16, at the narrowband rate.
SLIN8 = Codec("slin", PAYLOAD_TYPE_L16_8K, 8000, slin16_encode, slin16_decode, 2)

CODECS: dict[str, Codec] = {codec.name: codec for codec in (ULAW, ALAW, SLIN16)}


def get_codec(name: str) -> Codec:
    try:
        return CODECS[name]
    except KeyError:
        known = ", ".join(sorted(CODECS))
        raise MediaError(f"unknown codec {name!r} (known: {known})") from None


def reply_codec(codec: Codec) -> Codec:
    """The codec to answer in: the received one when Asterisk accepts it back, else L16 8 kHz."""
    return codec if codec.payload_type <= LAST_STATIC_PAYLOAD_TYPE else SLIN8


def _check_pcm(pcm: PcmArray) -> PcmArray:
    array = np.asarray(pcm)
    if array.dtype != np.int16 or array.ndim != 1:
        raise ValueError(f"expected mono int16 PCM, got {array.dtype} with shape {array.shape}")
    return array


class Resampler:
    """Streaming int16 mono resampler: chunk boundaries leave no clicks or gaps."""

    def __init__(self, in_rate: int, out_rate: int) -> None:
        if in_rate <= 0 or out_rate <= 0:
            raise ValueError(f"invalid sample rates {in_rate} -> {out_rate}")
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._stream = self._new_stream() if in_rate != out_rate else None

    def _new_stream(self) -> soxr.ResampleStream:
        return soxr.ResampleStream(
            self.in_rate, self.out_rate, 1, dtype="int16", quality=RESAMPLER_QUALITY
        )

    def process(self, pcm: PcmArray, last: bool = False) -> PcmArray:
        """Resample the next chunk; ``last=True`` drains the filter and starts a fresh stream."""
        array = _check_pcm(pcm)
        if self._stream is None:
            return array
        out: PcmArray = self._stream.resample_chunk(array, last=last)
        if last:
            # soxr forbids further chunks after the final one; the next utterance starts clean.
            self._stream = self._new_stream()
        return out


def resample(pcm: PcmArray, in_rate: int, out_rate: int) -> PcmArray:
    """One-shot resampling of a complete signal."""
    array = _check_pcm(pcm)
    if in_rate == out_rate:
        return array
    if in_rate <= 0 or out_rate <= 0:
        raise ValueError(f"invalid sample rates {in_rate} -> {out_rate}")
    out: PcmArray = soxr.resample(array, in_rate, out_rate, quality=RESAMPLER_QUALITY)
    return out
