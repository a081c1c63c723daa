from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voicebot.media.dtmf import (
    DEFAULT_EVENT_PAYLOAD_TYPE,
    DETECTOR_MEMORY,
    DTMF_DIGITS,
    TELEPHONE_EVENT_SIZE,
    DtmfDetector,
    TelephoneEvent,
    dtmf_packets,
)
from voicebot.media.rtp import RtpPacket

SSRC = 0x11223344


def event_packet(
    digit: str = "5",
    *,
    end: bool = False,
    duration: int = 160,
    timestamp: int = 8000,
    sequence: int = 1,
    ssrc: int = SSRC,
    marker: bool = False,
) -> RtpPacket:
    payload = TelephoneEvent(DTMF_DIGITS.index(digit), end, 10, duration).serialize()
    return RtpPacket(DEFAULT_EVENT_PAYLOAD_TYPE, sequence, timestamp, ssrc, payload, marker)


def test_serialize_known_bytes() -> None:
    event = TelephoneEvent(event=5, end=True, volume=10, duration=800)
    assert event.serialize() == bytes.fromhex("058a0320")
    assert len(event.serialize()) == TELEPHONE_EVENT_SIZE
    assert TelephoneEvent(11, False, 63, 0xFFFF).serialize() == bytes.fromhex("0b3fffff")


def test_parse_known_bytes() -> None:
    assert TelephoneEvent.parse(bytes.fromhex("058a0320")) == TelephoneEvent(5, True, 10, 800)


def test_parse_ignores_reserved_bit_and_trailing_events() -> None:
    # 0x40 is the reserved bit; the second report (digit 7) is not the one being read.
    event = TelephoneEvent.parse(bytes.fromhex("0bca00a0") + bytes.fromhex("070a0140"))
    assert event == TelephoneEvent(11, True, 10, 160)


@pytest.mark.parametrize("size", [0, 1, 3])
def test_parse_short_payload(size: int) -> None:
    message = f"telephone-event payload is {size} bytes, expected at least 4"
    with pytest.raises(ValueError, match=f"^{message}$"):
        TelephoneEvent.parse(bytes(size))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ((256, False, 0, 0), "telephone-event event 256 out of range 0-255"),
        ((-1, False, 0, 0), "telephone-event event -1 out of range 0-255"),
        ((1, False, 64, 0), "telephone-event volume 64 out of range 0-63"),
        ((1, False, 0, 65536), "telephone-event duration 65536 out of range 0-65535"),
        ((1, False, 0, -5), "telephone-event duration -5 out of range 0-65535"),
    ],
)
def test_constructor_validates_fields(fields: tuple[int, bool, int, int], message: str) -> None:
    with pytest.raises(ValueError, match=f"^{message}$"):
        TelephoneEvent(*fields)


def test_digit_property() -> None:
    assert [TelephoneEvent(code, False, 0, 0).digit for code in range(16)] == list(DTMF_DIGITS)
    assert TelephoneEvent(16, False, 0, 0).digit is None  # flash
    assert TelephoneEvent(255, False, 0, 0).digit is None


events = st.builds(
    TelephoneEvent,
    event=st.integers(0, 255),
    end=st.booleans(),
    volume=st.integers(0, 63),
    duration=st.integers(0, 65535),
)


@given(events)
def test_parse_serialize_round_trip(event: TelephoneEvent) -> None:
    assert TelephoneEvent.parse(event.serialize()) == event


@given(st.binary(max_size=12))
def test_parse_arbitrary_bytes_only_raises_value_error(data: bytes) -> None:
    try:
        event = TelephoneEvent.parse(data)
    except ValueError:
        assert len(data) < TELEPHONE_EVENT_SIZE
        return
    reserved_cleared = data[:1] + bytes([data[1] & 0xBF]) + data[2:4]
    assert event.serialize() == reserved_cleared


# ---------------------------------------------------------------------------------------------
# DtmfDetector


def test_detector_reports_once_across_updates_and_end_packets() -> None:
    detector = DtmfDetector()
    packets = [
        event_packet(duration=160, sequence=1, marker=True),
        event_packet(duration=320, sequence=2),
        event_packet(duration=320, sequence=2),  # network duplicate
        event_packet(end=True, duration=800, sequence=3),
        event_packet(end=True, duration=800, sequence=4),
        event_packet(end=True, duration=800, sequence=5),
    ]
    assert [detector.push(p) for p in packets] == ["5", None, None, None, None, None]
    assert detector.events == 1


def test_detector_survives_lost_start_packets() -> None:
    detector = DtmfDetector()
    assert detector.push(event_packet("#", duration=480, sequence=3)) == "#"
    assert detector.push(event_packet("#", end=True, duration=800, sequence=4)) is None


def test_detector_reports_a_press_seen_only_by_its_end_packet() -> None:
    detector = DtmfDetector()
    assert detector.push(event_packet("D", end=True, duration=800)) == "D"
    assert detector.push(event_packet("D", end=True, duration=800)) is None


def test_two_presses_of_the_same_key_give_two_digits() -> None:
    detector = DtmfDetector()
    first = [event_packet("7", timestamp=1000), event_packet("7", end=True, timestamp=1000)]
    second = [event_packet("7", timestamp=3000), event_packet("7", end=True, timestamp=3000)]
    assert [detector.push(p) for p in first + second] == ["7", None, "7", None]
    assert detector.events == 2


def test_same_timestamp_from_another_stream_is_another_press() -> None:
    detector = DtmfDetector()
    assert detector.push(event_packet("1", ssrc=1)) == "1"
    assert detector.push(event_packet("1", ssrc=2)) == "1"


def test_non_dtmf_events_are_ignored() -> None:
    detector = DtmfDetector()
    flash = RtpPacket(101, 1, 0, SSRC, TelephoneEvent(16, False, 10, 160).serialize())
    assert detector.push(flash) is None
    assert detector.events == 0


def test_malformed_payload_raises_value_error() -> None:
    detector = DtmfDetector()
    with pytest.raises(ValueError, match=r"^telephone-event payload is 2 bytes"):
        detector.push(RtpPacket(101, 1, 0, SSRC, b"\x05\x0a"))
    assert detector.events == 0


def test_detector_memory_is_bounded() -> None:
    detector = DtmfDetector()
    presses = 1000
    for press in range(presses):
        assert detector.push(event_packet(timestamp=press * 1000)) == "5"
    assert len(detector._seen) == len(detector._order) == DETECTOR_MEMORY
    # The newest presses are still recognised; a press that old has been forgotten.
    assert detector.push(event_packet(timestamp=(presses - 1) * 1000, end=True)) is None
    assert detector.push(event_packet(timestamp=(presses - DETECTOR_MEMORY) * 1000)) is None
    assert detector.push(event_packet(timestamp=0, end=True)) == "5"
    assert detector.events == presses + 1


def test_detector_rejects_empty_memory() -> None:
    with pytest.raises(ValueError, match=r"^DTMF detector memory must be >= 1, got 0$"):
        DtmfDetector(memory=0)


# ---------------------------------------------------------------------------------------------
# dtmf_packets


def test_dtmf_packets_layout() -> None:
    sent = dtmf_packets("9", ssrc=SSRC, first_sequence=100, timestamp=12345)
    offsets = [offset for offset, _ in sent]
    packets = [packet for _, packet in sent]
    reports = [TelephoneEvent.parse(packet.payload) for packet in packets]
    assert offsets == pytest.approx([0.02, 0.04, 0.06, 0.08, 0.1, 0.1, 0.1])
    assert [r.duration for r in reports] == [160, 320, 480, 640, 800, 800, 800]
    assert [r.end for r in reports] == [False] * 4 + [True] * 3
    assert {r.event for r in reports} == {9}
    assert [p.sequence for p in packets] == list(range(100, 107))
    assert [p.marker for p in packets] == [True] + [False] * 6
    assert {(p.timestamp, p.ssrc, p.payload_type) for p in packets} == {
        (12345, SSRC, DEFAULT_EVENT_PAYLOAD_TYPE)
    }


def test_dtmf_packets_uneven_duration_and_options() -> None:
    sent = dtmf_packets(
        "*",
        ssrc=1,
        first_sequence=0,
        timestamp=0,
        payload_type=96,
        duration_ms=50,
        packet_ms=30,
        end_repeats=1,
    )
    reports = [TelephoneEvent.parse(packet.payload) for _, packet in sent]
    assert [(r.duration, r.end) for r in reports] == [(240, False), (400, True)]
    assert [offset for offset, _ in sent] == pytest.approx([0.03, 0.05])
    assert {packet.payload_type for _, packet in sent} == {96}


def test_dtmf_packets_short_press_is_only_end_packets() -> None:
    sent = dtmf_packets("0", ssrc=1, first_sequence=0, timestamp=0, duration_ms=20)
    reports = [TelephoneEvent.parse(packet.payload) for _, packet in sent]
    assert [(r.duration, r.end) for r in reports] == [(160, True)] * 3
    assert [packet.marker for _, packet in sent] == [True, False, False]


def test_dtmf_packets_sequence_wraps() -> None:
    sent = dtmf_packets("1", ssrc=1, first_sequence=65533, timestamp=0)
    assert [packet.sequence for _, packet in sent] == [65533, 65534, 65535, 0, 1, 2, 3]


@pytest.mark.parametrize(
    ("digit", "options", "message"),
    [
        ("x", {}, "not a DTMF digit: 'x'"),
        ("a", {}, "not a DTMF digit: 'a'"),
        ("", {}, "not a DTMF digit: ''"),
        ("12", {}, "not a DTMF digit: '12'"),
        ("1", {"duration_ms": 0}, "duration_ms must be > 0, got 0"),
        ("1", {"duration_ms": -20}, "duration_ms must be > 0, got -20"),
        ("1", {"packet_ms": 0}, "packet_ms must be > 0, got 0"),
        ("1", {"end_repeats": 0}, "end_repeats must be >= 1, got 0"),
        ("1", {"first_sequence": 65536}, "first_sequence 65536 out of range 0-65535"),
        (
            "1",
            {"duration_ms": 8192},
            "duration_ms 8192 too long for one telephone-event (max 8191 ms)",
        ),
    ],
)
def test_dtmf_packets_validation(digit: str, options: dict[str, int], message: str) -> None:
    arguments = {"ssrc": 1, "first_sequence": 0, "timestamp": 0, **options}
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        dtmf_packets(digit, **arguments)


def test_longest_press_fits() -> None:
    sent = dtmf_packets("1", ssrc=1, first_sequence=0, timestamp=0, duration_ms=8191)
    assert TelephoneEvent.parse(sent[-1][1].payload).duration == 65528


@given(
    digit=st.sampled_from(DTMF_DIGITS),
    first_sequence=st.integers(0, 65535),
    timestamp=st.integers(0, 2**32 - 1),
    duration_ms=st.integers(1, 2000),
    packet_ms=st.sampled_from([10, 20, 30, 60]),
    end_repeats=st.integers(1, 5),
)
def test_dtmf_packets_round_trip_through_detector(
    digit: str,
    first_sequence: int,
    timestamp: int,
    duration_ms: int,
    packet_ms: int,
    end_repeats: int,
) -> None:
    sent = dtmf_packets(
        digit,
        ssrc=SSRC,
        first_sequence=first_sequence,
        timestamp=timestamp,
        duration_ms=duration_ms,
        packet_ms=packet_ms,
        end_repeats=end_repeats,
    )
    offsets = [offset for offset, _ in sent]
    assert offsets == sorted(offsets)
    assert offsets[-1] == pytest.approx(duration_ms / 1000, abs=1 / 8000)
    detector = DtmfDetector()
    digits = [detector.push(RtpPacket.parse(packet.serialize())) for _, packet in sent]
    assert digits == [digit] + [None] * (len(sent) - 1)
    # Robust to losing any prefix of the press, down to the very last end packet.
    for lost in range(len(sent)):
        detector = DtmfDetector()
        reported = [detector.push(packet) for _, packet in sent[lost:]]
        assert [d for d in reported if d is not None] == [digit]
