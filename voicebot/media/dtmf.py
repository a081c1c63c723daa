"""RFC 4733 telephone-event (DTMF) payloads: parse, build, and detect key presses. Pure."""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass

from .codecs import MS_PER_SECOND
from .rtp import SEQUENCE_MODULUS, RtpPacket

TELEPHONE_EVENT_SIZE = 4
DEFAULT_EVENT_PAYLOAD_TYPE = 101
EVENT_CLOCK_RATE = 8000
DTMF_DIGITS = "0123456789*#ABCD"  # index == RFC 4733 event code
MAX_EVENT = 255
MAX_VOLUME = 63
MAX_DURATION = 0xFFFF
# What phones typically report (-10 dBm0); the value only matters to tone regenerators.
DEFAULT_VOLUME = 10
# Retransmissions of one press arrive within a few hundred ms, during which only a handful
# of other presses can start, so 64 remembered presses is far more than ever needed.
DETECTOR_MEMORY = 64

_PAYLOAD = struct.Struct("!BBH")
_END_BIT = 0x80
_VOLUME_MASK = 0x3F


@dataclass(frozen=True)
class TelephoneEvent:
    """The first (usually only) event report of a telephone-event payload."""

    event: int
    end: bool
    volume: int
    duration: int  # in EVENT_CLOCK_RATE samples since the event's RTP timestamp

    def __post_init__(self) -> None:
        for name, value, limit in (
            ("event", self.event, MAX_EVENT),
            ("volume", self.volume, MAX_VOLUME),
            ("duration", self.duration, MAX_DURATION),
        ):
            if not 0 <= value <= limit:
                raise ValueError(f"telephone-event {name} {value} out of range 0-{limit}")

    @classmethod
    def parse(cls, payload: bytes) -> TelephoneEvent:
        """Parse the first event report. Raises ``ValueError`` (and nothing else) if too short.

        Bytes after the first report are ignored: RFC 4733 lets a payload carry several
        (redundant or consecutive) events, and the first is the one being reported now.
        The reserved bit is ignored, as RFC 4733 tells receivers to.
        """
        size = len(payload)
        if size < TELEPHONE_EVENT_SIZE:
            raise ValueError(
                f"telephone-event payload is {size} bytes, expected at least {TELEPHONE_EVENT_SIZE}"
            )
        event, flags, duration = _PAYLOAD.unpack_from(payload)
        return cls(
            event=event,
            end=bool(flags & _END_BIT),
            volume=flags & _VOLUME_MASK,
            duration=duration,
        )

    def serialize(self) -> bytes:
        flags = (_END_BIT if self.end else 0) | self.volume
        return _PAYLOAD.pack(self.event, flags, self.duration)

    @property
    def digit(self) -> str | None:
        """The DTMF key, or None for the other RFC 4733 events (fax tones, flash...)."""
        return DTMF_DIGITS[self.event] if self.event < len(DTMF_DIGITS) else None


class DtmfDetector:
    """Turns a stream of telephone-event packets into key presses, each reported once.

    Every packet of one event carries the same RTP timestamp (the key-down instant), so a
    press is identified by ``(ssrc, timestamp)``. Reporting on the first packet seen of a
    press, whatever its kind, makes detection survive the loss of the start packet and of
    all but one of the updates and end packets. The caller routes only packets of the
    negotiated telephone-event payload type here.

    Events longer than the 16-bit duration field (about 8 s) are split by the sender into
    segments with new timestamps; each segment would be reported as a new press.
    """

    def __init__(self, memory: int = DETECTOR_MEMORY) -> None:
        if memory < 1:
            raise ValueError(f"DTMF detector memory must be >= 1, got {memory}")
        self._memory = memory
        self._order: deque[tuple[int, int]] = deque()
        self._seen: set[tuple[int, int]] = set()
        self.events = 0

    def push(self, packet: RtpPacket) -> str | None:
        """The digit if this packet starts a new key press, else None.

        A malformed payload raises ``ValueError`` from ``TelephoneEvent.parse``.
        """
        digit = TelephoneEvent.parse(packet.payload).digit
        if digit is None:
            return None
        key = (packet.ssrc, packet.timestamp)
        if key in self._seen:
            return None
        self._seen.add(key)
        self._order.append(key)
        if len(self._order) > self._memory:
            self._seen.discard(self._order.popleft())
        self.events += 1
        return digit


def dtmf_packets(
    digit: str,
    *,
    ssrc: int,
    first_sequence: int,
    timestamp: int,
    payload_type: int = DEFAULT_EVENT_PAYLOAD_TYPE,
    duration_ms: int = 100,
    packet_ms: int = 20,
    end_repeats: int = 3,
) -> list[tuple[float, RtpPacket]]:
    """The packets a phone sends for one key press, with send offsets in seconds.

    ``timestamp`` is the RTP timestamp of the key-down, which every packet carries. A
    packet reporting a duration of ``d`` samples is sent ``d / 8000`` s after the key-down,
    i.e. once that much of the tone has elapsed: progress updates every ``packet_ms`` (the
    first one with the marker bit), then ``end_repeats`` identical end packets carrying the
    full duration, all sent at the same offset, ``duration_ms`` after the key-down (as
    Asterisk does). A press no longer than one packet interval is only its end packets, the
    first of them marked. Sequence numbers are consecutive and wrap modulo 65536.
    """
    if len(digit) != 1 or digit not in DTMF_DIGITS:
        raise ValueError(f"not a DTMF digit: {digit!r}")
    if duration_ms <= 0:
        raise ValueError(f"duration_ms must be > 0, got {duration_ms}")
    if packet_ms <= 0:
        raise ValueError(f"packet_ms must be > 0, got {packet_ms}")
    if end_repeats < 1:
        raise ValueError(f"end_repeats must be >= 1, got {end_repeats}")
    if not 0 <= first_sequence < SEQUENCE_MODULUS:
        raise ValueError(f"first_sequence {first_sequence} out of range 0-65535")
    total = duration_ms * EVENT_CLOCK_RATE // MS_PER_SECOND
    if total > MAX_DURATION:
        longest_ms = MAX_DURATION * MS_PER_SECOND // EVENT_CLOCK_RATE
        raise ValueError(
            f"duration_ms {duration_ms} too long for one telephone-event (max {longest_ms} ms)"
        )
    step = packet_ms * EVENT_CLOCK_RATE // MS_PER_SECOND

    event = DTMF_DIGITS.index(digit)
    reports = [
        TelephoneEvent(event, False, DEFAULT_VOLUME, duration)
        for duration in range(step, total, step)
    ]
    reports += [TelephoneEvent(event, True, DEFAULT_VOLUME, total)] * end_repeats
    return [
        (
            report.duration / EVENT_CLOCK_RATE,
            RtpPacket(
                payload_type=payload_type,
                sequence=(first_sequence + index) % SEQUENCE_MODULUS,
                timestamp=timestamp,
                ssrc=ssrc,
                payload=report.serialize(),
                marker=index == 0,
            ),
        )
        for index, report in enumerate(reports)
    ]
