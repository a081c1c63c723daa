from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from voicebot.media.g711 import (
    ALAW_DECODE_TABLE,
    ALAW_ENCODE_TABLE,
    ULAW_DECODE_TABLE,
    ULAW_ENCODE_TABLE,
    alaw_decode,
    alaw_encode,
    slin16_decode,
    slin16_encode,
    ulaw_decode,
    ulaw_encode,
)

ALL_BYTES = bytes(range(256))
ALL_SAMPLES = np.arange(-32768, 32768, dtype=np.int32).astype(np.int16)


def test_table_shapes() -> None:
    assert ULAW_DECODE_TABLE.shape == ALAW_DECODE_TABLE.shape == (256,)
    assert ULAW_ENCODE_TABLE.shape == ALAW_ENCODE_TABLE.shape == (65536,)
    assert ULAW_DECODE_TABLE.dtype == np.int16
    assert not ULAW_DECODE_TABLE.flags.writeable


def test_ulaw_known_values() -> None:
    assert ulaw_decode(bytes([0xFF, 0x7F, 0x00, 0x80])).tolist() == [0, 0, -32124, 32124]
    assert ulaw_encode(np.array([0], dtype=np.int16)) == b"\xff"
    assert ulaw_encode(np.array([32767, -32768], dtype=np.int16)) == b"\x80\x00"
    # First segment boundaries from the G.711 table: 8 -> 0xFE (decodes to 8).
    assert ulaw_decode(b"\xfe").tolist() == [8]


def test_alaw_known_values() -> None:
    assert alaw_decode(bytes([0xD5, 0x55])).tolist() == [8, -8]
    assert alaw_encode(np.array([0], dtype=np.int16)) == b"\xd5"
    assert alaw_encode(np.array([-1], dtype=np.int16)) == b"\x55"
    assert alaw_decode(bytes([0xAA, 0x2A])).tolist() == [32256, -32256]
    assert alaw_encode(np.array([32767, -32768], dtype=np.int16)) == b"\xaa\x2a"


@pytest.mark.parametrize(
    ("encode", "decode"), [(ulaw_encode, ulaw_decode), (alaw_encode, alaw_decode)]
)
def test_codes_round_trip_exactly(encode, decode) -> None:  # type: ignore[no-untyped-def]
    # Every decoded level must encode back to a code that decodes to the same level.
    levels = decode(ALL_BYTES)
    assert np.array_equal(decode(encode(levels)), levels)


@pytest.mark.parametrize(
    ("encode", "decode"), [(ulaw_encode, ulaw_decode), (alaw_encode, alaw_decode)]
)
def test_encoding_is_monotonic_and_accurate(encode, decode) -> None:  # type: ignore[no-untyped-def]
    decoded = decode(encode(ALL_SAMPLES)).astype(np.int32)
    assert np.all(np.diff(decoded) >= 0)
    error = np.abs(decoded - ALL_SAMPLES.astype(np.int32))
    # Logarithmic: the error never exceeds ~1/16 of the magnitude (plus the first step).
    assert np.all(error <= np.abs(ALL_SAMPLES.astype(np.int32)) / 16 + 16)
    assert len(np.unique(decoded)) >= 250


def test_ulaw_is_symmetric() -> None:
    positive = ulaw_decode(ulaw_encode(ALL_SAMPLES[32769:])).astype(np.int32)
    negative = ulaw_decode(ulaw_encode(-ALL_SAMPLES[32769:])).astype(np.int32)
    assert np.array_equal(positive, -negative)


def test_slin16_is_big_endian() -> None:
    pcm = np.array([1, -2, 0x1234], dtype=np.int16)
    assert slin16_encode(pcm) == bytes.fromhex("0001fffe1234")
    assert slin16_decode(bytes.fromhex("0001fffe1234")).tolist() == [1, -2, 0x1234]
    assert slin16_decode(b"\x00\x01").dtype == np.int16


def test_slin16_odd_length_rejected() -> None:
    with pytest.raises(ValueError, match="odd length 3"):
        slin16_decode(b"abc")


def test_encode_rejects_non_int16() -> None:
    with pytest.raises(ValueError, match="int16"):
        ulaw_encode(np.zeros(4, dtype=np.float32))
    with pytest.raises(ValueError, match="mono"):
        alaw_encode(np.zeros((2, 2), dtype=np.int16))


def test_empty_input() -> None:
    assert ulaw_encode(np.zeros(0, dtype=np.int16)) == b""
    assert ulaw_decode(b"").size == 0
    assert slin16_decode(b"").size == 0


@given(arrays(np.int16, st.integers(0, 400)))
def test_slin16_round_trip(pcm: np.ndarray) -> None:
    assert np.array_equal(slin16_decode(slin16_encode(pcm)), pcm)


@given(st.binary(max_size=400))
def test_g711_byte_round_trip(data: bytes) -> None:
    # Decoding then encoding is exact except for the two codes of zero in mu-law.
    assert alaw_encode(alaw_decode(data)) == data
    assert ulaw_encode(ulaw_decode(data)) == data.replace(b"\x7f", b"\xff")
