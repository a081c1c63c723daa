"""RTP (RFC 3550) packet parsing and serialization. Pure: no I/O, no clocks."""

from __future__ import annotations

import secrets
import struct
from dataclasses import dataclass

RTP_VERSION = 2
RTP_HEADER_SIZE = 12
RTP_CSRC_SIZE = 4
RTP_MAX_CSRCS = 15
RTP_EXTENSION_HEADER_SIZE = 4
RTP_MAX_PAYLOAD_TYPE = 127
SEQUENCE_MODULUS = 1 << 16
TIMESTAMP_MODULUS = 1 << 32

_HALF_SEQUENCE = SEQUENCE_MODULUS // 2
_FIXED_HEADER = struct.Struct("!BBHII")
_EXTENSION_HEADER = struct.Struct("!HH")
_PADDING_BIT = 0x20
_EXTENSION_BIT = 0x10
_CSRC_COUNT_MASK = 0x0F
_MARKER_BIT = 0x80
_PAYLOAD_TYPE_MASK = 0x7F


@dataclass(frozen=True)
class RtpPacket:
    """One RTP packet. Padding is stripped on parse and never emitted on serialize."""

    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes
    marker: bool = False
    csrcs: tuple[int, ...] = ()
    # (profile-defined 16-bit id, data); data length must be a multiple of 4 bytes.
    extension: tuple[int, bytes] | None = None

    def __post_init__(self) -> None:
        # Validate here so a bad packet fails where it is built, not later on the wire.
        if not 0 <= self.payload_type <= RTP_MAX_PAYLOAD_TYPE:
            raise ValueError(f"RTP payload type {self.payload_type} out of range 0-127")
        if not 0 <= self.sequence < SEQUENCE_MODULUS:
            raise ValueError(f"RTP sequence {self.sequence} out of range 0-65535")
        if not 0 <= self.timestamp < TIMESTAMP_MODULUS:
            raise ValueError(f"RTP timestamp {self.timestamp} out of 32-bit range")
        if not 0 <= self.ssrc < TIMESTAMP_MODULUS:
            raise ValueError(f"RTP SSRC {self.ssrc} out of 32-bit range")
        if len(self.csrcs) > RTP_MAX_CSRCS:
            raise ValueError(f"RTP CSRC list has {len(self.csrcs)} entries, at most 15 allowed")
        if any(not 0 <= csrc < TIMESTAMP_MODULUS for csrc in self.csrcs):
            raise ValueError("RTP CSRC out of 32-bit range")
        if self.extension is not None:
            profile, data = self.extension
            if not 0 <= profile < SEQUENCE_MODULUS:
                raise ValueError(f"RTP header extension id {profile} out of 16-bit range")
            if len(data) % 4:
                raise ValueError(
                    f"RTP header extension data is {len(data)} bytes, not a multiple of 4"
                )
            if len(data) // 4 >= SEQUENCE_MODULUS:
                raise ValueError("RTP header extension data too long")

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        """Parse one datagram. Raises ``ValueError`` (and nothing else) on malformed input."""
        size = len(data)
        if size < RTP_HEADER_SIZE:
            raise ValueError(f"RTP packet too short: {size} bytes, header needs {RTP_HEADER_SIZE}")
        first, second, sequence, timestamp, ssrc = _FIXED_HEADER.unpack_from(data)
        version = first >> 6
        if version != RTP_VERSION:
            raise ValueError(f"RTP version {version}, expected {RTP_VERSION}")

        end = size
        if first & _PADDING_BIT:
            padding = data[-1]
            if padding == 0:
                raise ValueError("RTP padding length 0 is invalid")
            if padding > size - RTP_HEADER_SIZE:
                raise ValueError(f"RTP padding length {padding} exceeds packet")
            end -= padding

        offset = RTP_HEADER_SIZE
        csrc_count = first & _CSRC_COUNT_MASK
        csrc_end = offset + csrc_count * RTP_CSRC_SIZE
        if csrc_end > end:
            raise ValueError("RTP CSRC list truncated")
        csrcs = struct.unpack_from(f"!{csrc_count}I", data, offset)
        offset = csrc_end

        extension: tuple[int, bytes] | None = None
        if first & _EXTENSION_BIT:
            if offset + RTP_EXTENSION_HEADER_SIZE > end:
                raise ValueError("RTP header extension truncated")
            profile, words = _EXTENSION_HEADER.unpack_from(data, offset)
            offset += RTP_EXTENSION_HEADER_SIZE
            ext_end = offset + words * 4
            if ext_end > end:
                raise ValueError("RTP header extension truncated")
            extension = (profile, bytes(data[offset:ext_end]))
            offset = ext_end

        return cls(
            payload_type=second & _PAYLOAD_TYPE_MASK,
            sequence=sequence,
            timestamp=timestamp,
            ssrc=ssrc,
            payload=bytes(data[offset:end]),
            marker=bool(second & _MARKER_BIT),
            csrcs=tuple(csrcs),
            extension=extension,
        )

    def serialize(self) -> bytes:
        first = (RTP_VERSION << 6) | len(self.csrcs)
        if self.extension is not None:
            first |= _EXTENSION_BIT
        second = self.payload_type | (_MARKER_BIT if self.marker else 0)
        parts = [_FIXED_HEADER.pack(first, second, self.sequence, self.timestamp, self.ssrc)]
        if self.csrcs:
            parts.append(struct.pack(f"!{len(self.csrcs)}I", *self.csrcs))
        if self.extension is not None:
            profile, data = self.extension
            parts.append(_EXTENSION_HEADER.pack(profile, len(data) // 4))
            parts.append(data)
        parts.append(self.payload)
        return b"".join(parts)


def seq_distance(a: int, b: int) -> int:
    """Signed distance from sequence ``a`` to ``b`` modulo 2^16, in [-32768, 32767].

    Positive when ``b`` comes after ``a`` (``seq_distance(65535, 0) == 1``).
    """
    return (b - a + _HALF_SEQUENCE) % SEQUENCE_MODULUS - _HALF_SEQUENCE


def is_newer(a: int, b: int) -> bool:
    """True when sequence ``a`` comes after ``b``, allowing for wrap-around."""
    return seq_distance(b, a) > 0


class RtpPacketizer:
    """Sequence numbers, timestamps and marker bits for one outbound stream."""

    def __init__(
        self,
        ssrc: int,
        payload_type: int,
        clock_rate: int,
        samples_per_frame: int,
        *,
        initial_sequence: int | None = None,
        initial_timestamp: int | None = None,
    ) -> None:
        self.ssrc = ssrc
        self.payload_type = payload_type
        self.clock_rate = clock_rate
        self.samples_per_frame = samples_per_frame
        # RFC 3550 §5.1: random starting points make known-plaintext attacks harder.
        self.sequence = (
            secrets.randbelow(SEQUENCE_MODULUS) if initial_sequence is None else initial_sequence
        )
        self.timestamp = (
            secrets.randbelow(TIMESTAMP_MODULUS) if initial_timestamp is None else initial_timestamp
        )

    def packet(self, payload: bytes, *, talkspurt_start: bool) -> RtpPacket:
        packet = RtpPacket(
            payload_type=self.payload_type,
            sequence=self.sequence,
            timestamp=self.timestamp,
            ssrc=self.ssrc,
            payload=payload,
            marker=talkspurt_start,
        )
        self.sequence = (self.sequence + 1) % SEQUENCE_MODULUS
        self.timestamp = (self.timestamp + self.samples_per_frame) % TIMESTAMP_MODULUS
        return packet

    def skip(self, samples: int) -> None:
        """Advance the timestamp over silence that was not sent (RFC 3551 §4.1)."""
        self.timestamp = (self.timestamp + samples) % TIMESTAMP_MODULUS
