from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voicebot.media.rtp import RTP_HEADER_SIZE, RtpPacket, is_newer, seq_distance


def header(first: int = 0x80, second: int = 0, seq: int = 1, ts: int = 2, ssrc: int = 3) -> bytes:
    return struct.pack("!BBHII", first, second, seq, ts, ssrc)


def test_parse_minimal_packet() -> None:
    packet = RtpPacket.parse(header(second=0x80 | 8, seq=513, ts=160, ssrc=0xDEADBEEF) + b"abc")
    assert packet == RtpPacket(8, 513, 160, 0xDEADBEEF, b"abc", marker=True)


def test_serialize_known_bytes() -> None:
    packet = RtpPacket(
        payload_type=0, sequence=0x1234, timestamp=0x01020304, ssrc=0x0A0B0C0D, payload=b"\xff\xff"
    )
    assert packet.serialize() == bytes.fromhex("80001234010203040a0b0c0dffff")


def test_csrc_and_extension_round_trip() -> None:
    packet = RtpPacket(0, 1, 2, 3, b"xy", csrcs=(7, 8), extension=(0xBEDE, b"\x01\x02\x03\x04"))
    data = packet.serialize()
    assert data[0] == 0x80 | 0x10 | 2
    assert len(data) == RTP_HEADER_SIZE + 8 + 4 + 4 + 2
    assert RtpPacket.parse(data) == packet


def test_padding_is_stripped() -> None:
    data = header(first=0xA0) + b"payload" + b"\x00\x00\x03"
    assert RtpPacket.parse(data).payload == b"payload"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x80" * 7, "RTP packet too short: 7 bytes, header needs 12"),
        (header(first=0x40), "RTP version 1, expected 2"),
        (header(first=0xA0) + b"\x28", "RTP padding length 40 exceeds packet"),
        (header(first=0xA0) + b"\x00", "RTP padding length 0 is invalid"),
        (header(first=0x82) + b"\x00\x00\x00\x01", "RTP CSRC list truncated"),
        (header(first=0x90) + b"\xbe\xde", "RTP header extension truncated"),
        (header(first=0x90) + b"\xbe\xde\x00\x02" + b"\x00" * 4, "RTP header extension truncated"),
    ],
)
def test_malformed_packets_name_the_problem(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{message}$"):
        RtpPacket.parse(data)


def test_padding_cannot_eat_csrcs() -> None:
    # Padding is removed first, so a CSRC list overlapping it is truncated.
    with pytest.raises(ValueError, match="CSRC list truncated"):
        RtpPacket.parse(header(first=0xA1) + b"\x00\x00\x00\x04")


def test_constructor_validates_fields() -> None:
    with pytest.raises(ValueError, match="payload type"):
        RtpPacket(128, 0, 0, 0, b"")
    with pytest.raises(ValueError, match="sequence"):
        RtpPacket(0, 65536, 0, 0, b"")
    with pytest.raises(ValueError, match="multiple of 4"):
        RtpPacket(0, 0, 0, 0, b"", extension=(1, b"abc"))
    with pytest.raises(ValueError, match="at most 15"):
        RtpPacket(0, 0, 0, 0, b"", csrcs=tuple(range(16)))


def test_seq_distance_and_wrap() -> None:
    assert seq_distance(1, 5) == 4
    assert seq_distance(5, 1) == -4
    assert seq_distance(65535, 0) == 1
    assert seq_distance(0, 65535) == -1
    assert seq_distance(65530, 4) == 10
    assert is_newer(0, 65535)
    assert not is_newer(65535, 0)
    assert not is_newer(7, 7)


u32 = st.integers(0, 2**32 - 1)
packets = st.builds(
    RtpPacket,
    payload_type=st.integers(0, 127),
    sequence=st.integers(0, 65535),
    timestamp=u32,
    ssrc=u32,
    payload=st.binary(max_size=200),
    marker=st.booleans(),
    csrcs=st.lists(u32, max_size=15).map(tuple),
    extension=st.none()
    | st.tuples(st.integers(0, 65535), st.binary(max_size=40).map(lambda b: b[: len(b) // 4 * 4])),
)


@given(packets)
def test_parse_serialize_round_trip(packet: RtpPacket) -> None:
    assert RtpPacket.parse(packet.serialize()) == packet


@given(st.binary(max_size=100))
def test_parse_arbitrary_bytes_only_raises_value_error(data: bytes) -> None:
    try:
        packet = RtpPacket.parse(data)
    except ValueError:
        return
    assert packet.serialize() == data or data[0] & 0x20  # only padding is not reproduced


@given(st.binary(min_size=12, max_size=60))
def test_parse_version2_arbitrary_bytes(data: bytes) -> None:
    data = bytes([0x80 | (data[0] & 0x3F)]) + data[1:]
    try:
        RtpPacket.parse(data)
    except ValueError:
        pass


@given(st.integers(0, 65535), st.integers(-32768, 32767))
def test_seq_distance_inverts_addition(a: int, delta: int) -> None:
    assert seq_distance(a, (a + delta) % 65536) == delta
