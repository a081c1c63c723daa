"""G.711 μ-law / A-law and big-endian 16-bit linear (slin16) payload codecs.

Everything is a table lookup: the tables are computed once at import from the ITU-T G.711
segment algorithm, vectorized over every possible input (audioop no longer exists in 3.13).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

PcmArray = NDArray[np.int16]

_ALL_BYTES = np.arange(256, dtype=np.int32)
# Every int16 value, ordered so that index == value reinterpreted as uint16.
_ALL_SAMPLES = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.int16).astype(np.int32)

ULAW_BIAS = 0x84
ULAW_CLIP = 32635
ULAW_SILENCE = 0xFF
ALAW_SILENCE = 0xD5
# A-law's even bits are inverted on the wire (G.711 §A.2) so idle lines keep toggling.
_ALAW_XOR = 0x55
_SIGN_BIT = 0x80


def _segment(value: NDArray[np.int32]) -> NDArray[np.int32]:
    """Index of the highest set bit (0 for 0): the G.711 segment before offsetting."""
    segment = np.zeros_like(value)
    for bit in range(1, 16):
        segment[value >= (1 << bit)] = bit
    return segment


def _build_ulaw_decode() -> PcmArray:
    code = ~_ALL_BYTES & 0xFF
    exponent = (code >> 4) & 0x07
    mantissa = code & 0x0F
    magnitude = (((mantissa << 3) + ULAW_BIAS) << exponent) - ULAW_BIAS
    return np.where(code & _SIGN_BIT, -magnitude, magnitude).astype(np.int16)


def _build_ulaw_encode() -> NDArray[np.uint8]:
    # Sign-magnitude on the full 16-bit value, as Asterisk's own ulaw.c does; CPython's old
    # audioop rounded negative values differently at segment boundaries (one step at most).
    sample = _ALL_SAMPLES
    sign = np.where(sample < 0, _SIGN_BIT, 0)
    magnitude = np.minimum(np.abs(sample), ULAW_CLIP) + ULAW_BIAS
    # Biased magnitudes start at 0x80, so segment 0 is the 8th bit.
    exponent = _segment(magnitude >> 7)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8)


def _build_alaw_decode() -> PcmArray:
    code = _ALL_BYTES ^ _ALAW_XOR
    mantissa = (code & 0x0F) << 4
    segment = (code & 0x70) >> 4
    magnitude = np.where(
        segment == 0,
        mantissa + 8,
        (mantissa + 0x108) << np.maximum(segment - 1, 0),
    )
    return np.where(code & _SIGN_BIT, magnitude, -magnitude).astype(np.int16)


def _build_alaw_encode() -> NDArray[np.uint8]:
    # A-law works on 13-bit magnitudes; negative values use one's complement (-x - 1).
    value = _ALL_SAMPLES >> 3
    mask = np.where(value >= 0, ALAW_SILENCE, _ALAW_XOR)
    magnitude = np.where(value >= 0, value, -value - 1)
    segment = _segment(magnitude >> 4)  # 0 for magnitudes below 0x20, then one per octave
    mantissa = np.where(segment < 2, magnitude >> 1, magnitude >> segment) & 0x0F
    return (((segment << 4) | mantissa) ^ mask).astype(np.uint8)


ULAW_DECODE_TABLE: PcmArray = _build_ulaw_decode()
ULAW_ENCODE_TABLE: NDArray[np.uint8] = _build_ulaw_encode()
ALAW_DECODE_TABLE: PcmArray = _build_alaw_decode()
ALAW_ENCODE_TABLE: NDArray[np.uint8] = _build_alaw_encode()
for _table in (ULAW_DECODE_TABLE, ULAW_ENCODE_TABLE, ALAW_DECODE_TABLE, ALAW_ENCODE_TABLE):
    _table.flags.writeable = False  # shared module state: nobody may patch it by accident


def _as_pcm(pcm: PcmArray) -> PcmArray:
    array = np.asarray(pcm)
    if array.dtype != np.int16:
        raise ValueError(f"expected int16 PCM samples, got {array.dtype}")
    if array.ndim != 1:
        raise ValueError(f"expected mono (1-D) PCM, got shape {array.shape}")
    return array


def ulaw_encode(pcm: PcmArray) -> bytes:
    return ULAW_ENCODE_TABLE[_as_pcm(pcm).view(np.uint16)].tobytes()


def ulaw_decode(data: bytes) -> PcmArray:
    return ULAW_DECODE_TABLE[np.frombuffer(data, dtype=np.uint8)]


def alaw_encode(pcm: PcmArray) -> bytes:
    return ALAW_ENCODE_TABLE[_as_pcm(pcm).view(np.uint16)].tobytes()


def alaw_decode(data: bytes) -> PcmArray:
    return ALAW_DECODE_TABLE[np.frombuffer(data, dtype=np.uint8)]


def slin16_encode(pcm: PcmArray) -> bytes:
    """Network byte order: Asterisk sends and expects slin16 RTP payloads big-endian."""
    return _as_pcm(pcm).astype(">i2").tobytes()


def slin16_decode(data: bytes) -> PcmArray:
    if len(data) % 2:
        raise ValueError(f"slin16 payload has odd length {len(data)}")
    return np.frombuffer(data, dtype=">i2").astype(np.int16)
