"""Fuzzing captures: whatever a pcap holds, the replay path drops and counts what it cannot use,
and raises nothing but a ``CaptureError`` that names the problem."""

from __future__ import annotations

import asyncio
import struct
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.doubles import ListAsr, ToneTts
from voicebot.call import SpeechServices
from voicebot.capture.impair import Impairments, impair
from voicebot.capture.pcap import UdpDatagram, write_pcap
from voicebot.config import Config, VadConfig
from voicebot.dialog.parser import parse_script
from voicebot.errors import CaptureError
from voicebot.media.dtmf import DtmfDetector
from voicebot.media.endpoint import PortAllocator, RtpEndpoint
from voicebot.media.inbound import FrameAssembler
from voicebot.media.rtp import RtpPacket
from voicebot.runtime import Runtime
from voicebot.speech.vad import VoiceSegmenter
from voicebot.tools.replay import AUDIO_CODECS, load_caller_stream, replay_call

PHONE = ("10.0.0.5", 4000)
PBX = ("10.0.0.1", 10000)
OTHER = ("10.0.0.9", 6000)
SCRIPT = parse_script(
    'start: a\nstates:\n  a:\n    say: "Hi."\n    expect:\n      x: {phrases: [x], goto: b}\n'
    '  b:\n    say: "Bye."\n    hangup: true\n',
    "fuzz.yaml",
)

rtp_packets = st.builds(
    RtpPacket,
    payload_type=st.sampled_from([0, 0, 0, 8, 101, 96, 13, 118, 127]),
    sequence=st.integers(0, 65535),
    timestamp=st.integers(0, 2**32 - 1),
    ssrc=st.sampled_from([1, 2, 0xFFFFFFFF]),
    payload=st.binary(max_size=200),
    marker=st.booleans(),
)
payloads = st.one_of(
    rtp_packets.map(lambda p: p.serialize()),
    st.tuples(rtp_packets, st.integers(0, 11)).map(lambda pc: pc[0].serialize()[: pc[1]]),
    st.binary(max_size=40),  # anything at all
    st.just(b"INVITE sip:100@pbx SIP/2.0\r\n\r\na=rtpmap:96 telephone-event/8000"),
)
junk = st.lists(
    st.builds(
        UdpDatagram,
        time=st.floats(0, 3, allow_nan=False),
        src=st.sampled_from([PHONE, PBX, OTHER]),
        dst=st.sampled_from([PHONE, PBX]),
        payload=payloads,
    ),
    max_size=60,
)


def _phone_audio(count: int, level: int) -> list[UdpDatagram]:
    """A plausible PCMU stream, so most examples get past the choice of stream."""
    frame = bytes([level]) * 160
    return [
        UdpDatagram(n * 0.02, PHONE, PBX, RtpPacket(0, n, n * 160, 1, frame).serialize())
        for n in range(count)
    ]


datagrams = st.builds(
    lambda base, extra: sorted([*base, *extra], key=lambda d: d.time),
    st.builds(_phone_audio, st.integers(1, 120), st.integers(0, 255)),
    junk,
).filter(bool)
impairments = st.builds(
    Impairments,
    loss_pct=st.floats(0, 100),
    jitter_ms=st.floats(0, 200),
    reorder_pct=st.floats(0, 100),
    duplicate_pct=st.floats(0, 100),
    ssrc_change_at_s=st.none() | st.floats(0, 3),
    truncate_pct=st.floats(0, 100),
    seed=st.integers(0, 2**32),
)


class _NoTransport:
    def sendto(self, data: bytes, address: Any = None) -> None:
        return None

    def close(self) -> None:
        return None


def _load(items: list[UdpDatagram], ssrc: int | None = None) -> Any:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.pcap"
        write_pcap(path, items)
        try:
            stream, _ = load_caller_stream(path, ssrc=ssrc)
        except CaptureError:
            return None
        return stream


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(datagrams, impairments, st.none() | st.sampled_from([1, 2]))
def test_any_capture_through_stream_choice_impairments_and_the_receive_path(
    items: list[UdpDatagram], trouble: Impairments, ssrc: int | None
) -> None:
    stream = _load(items, ssrc)
    if stream is None:
        return
    impaired, _ = impair(stream.datagrams, trouble)
    endpoint = RtpEndpoint(
        _NoTransport(),  # type: ignore[arg-type]
        PortAllocator("127.0.0.1", 1, 1),
        1,
        event_payload_types=frozenset({stream.event_payload_type}),
        reorder_depth=3,
        audio_payload_type=stream.codec.payload_type,
    )
    endpoint.set_remote(*stream.source)
    assembler = FrameAssembler(stream.codec, out_rate=stream.codec.sample_rate)
    segmenter = VoiceSegmenter(VadConfig(), stream.codec.sample_rate)
    detector = DtmfDetector()
    for datagram in impaired:
        endpoint._on_datagram(datagram.payload, datagram.src)
    packets = [endpoint.audio_queue.get_nowait() for _ in range(endpoint.audio_queue.qsize())]
    packets += endpoint._reorder.flush()
    for packet in packets:
        try:
            frames = assembler.push_packet(packet)
        except ValueError:
            endpoint.note_undecodable(ValueError("odd"))
            continue
        for frame in frames:
            segmenter.feed(frame)
    while not endpoint.dtmf_queue.empty():
        try:
            detector.push(endpoint.dtmf_queue.get_nowait())
        except ValueError:
            pass  # counted as a bad key packet by the replay
    stats = endpoint.stats
    dropped = stats.foreign_dropped + stats.malformed_dropped + stats.wrong_payload_type_dropped
    assert stats.accepted + dropped == stats.received


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(datagrams, impairments)
def test_any_capture_replays_without_crashing(
    items: list[UdpDatagram], trouble: Impairments
) -> None:
    stream = _load(items)
    if stream is None:
        return
    runtime = Runtime(Config(), SpeechServices(ListAsr(["x"]), ToneTts(seconds_per_char=0.001)))

    async def replay() -> None:
        result = await replay_call(
            stream, SCRIPT, runtime, impairments=trouble, speed=20,
            tail_s=0.05,
        )  # fmt: skip
        assert not result.end.startswith("error"), result.end
        assert result.bot_lines[:1] == ["Hi."]
        assert np.asarray(result.bot_audio).size > 0

    asyncio.run(replay())


# ---- damaged files: a real recording, mutated field by field ----------------------------

CAPTURES = Path(__file__).resolve().parents[3] / "tests" / "fixtures" / "captures"
RECORDINGS = {
    name: (CAPTURES / f"{name}.pcap").read_bytes()
    for name in ("demo-hours-goodbye", "bank-keys-balance")
}
GLOBAL_HEADER_SIZE = 24
RECORD_HEADER_SIZE = 16
ETHERNET = 14
IPV4 = 20
UDP = 8


def _record_offsets(data: bytes) -> list[int]:
    """Where each packet record of a classic little-endian pcap begins."""
    offsets, offset = [], GLOBAL_HEADER_SIZE
    while offset + RECORD_HEADER_SIZE <= len(data):
        offsets.append(offset)
        offset += RECORD_HEADER_SIZE + struct.unpack_from("<I", data, offset + 8)[0]
    return offsets


def _sdp_record(digits: str) -> bytes:
    """A packet record carrying SDP whose telephone-event payload type is ``digits``."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sdp.pcap"
        sdp = f"v=0\r\nm=audio 4000 RTP/AVP 0 {digits}\r\na=rtpmap:{digits} telephone-event/8000"
        write_pcap(path, [UdpDatagram(0.0, PHONE, ("10.0.0.1", 5060), sdp.encode())])
        return path.read_bytes()[GLOBAL_HEADER_SIZE:]


U32 = st.sampled_from([0, 1, 8, 0x7FFFFFFF, 0xFFFFFFFF]) | st.integers(0, 2**32 - 1)
U16 = st.sampled_from([0, 1, 7, 8, 9, 20, 28, 0xFFFF]) | st.integers(0, 0xFFFF)
# (what, where in a record or file, how wide, values): each a field a damaged or crafted
# file gets wrong. Offsets in a record count from its header; the frame starts after it.
FRAME = RECORD_HEADER_SIZE
FIELDS: dict[str, tuple[int, str, st.SearchStrategy[int]]] = {
    "seconds": (0, "<I", U32),
    "fraction": (4, "<I", U32),
    "incl_len": (8, "<I", U32),
    "orig_len": (12, "<I", U32),
    "ethertype": (FRAME + 12, "!H", st.sampled_from([0x8100, 0x86DD, 0x0806, 0, 0xFFFF])),
    "ip_version_and_header_length": (FRAME + ETHERNET, "!B", st.integers(0, 255)),
    "ip_total_length": (FRAME + ETHERNET + 2, "!H", U16),
    "ip_fragment": (FRAME + ETHERNET + 6, "!H", U16),
    "ip_protocol": (FRAME + ETHERNET + 9, "!B", st.sampled_from([0, 1, 6, 17, 255])),
    "udp_length": (FRAME + ETHERNET + IPV4 + 4, "!H", U16),
    "rtp_first_byte": (FRAME + ETHERNET + IPV4 + UDP, "!B", st.integers(0, 255)),
    "rtp_payload_type": (FRAME + ETHERNET + IPV4 + UDP + 1, "!B", st.integers(0, 255)),
}
HEADER_FIELDS: dict[str, tuple[int, str, st.SearchStrategy[int]]] = {
    "magic": (
        0,
        "<I",
        st.sampled_from([0x0A0D0D0A, 0xD4C3B2A1, 0x4D3CB2A1, 0xA1B23C4D, 0, 0x12345678]),
    ),
    "version": (4, "<I", U32),
    "snaplen": (16, "<I", U32),
    "linktype": (20, "<I", st.sampled_from([0, 101, 113, 147, 228, 276, 0xFFFF, 0xFFFFFFFF])),
}


# Python refuses to convert a number of more than 4,300 digits from text.
SDP_PAYLOAD_TYPES = st.text("0123456789", min_size=1, max_size=4) | st.integers(4000, 6000).map(
    lambda length: "9" * length
)


@st.composite
def damaged_recordings(draw: st.DrawFn) -> tuple[str, bytes]:
    """A real recording with a few fields set wrong, cut short, or given a crafted packet."""
    name = draw(st.sampled_from(sorted(RECORDINGS)))
    data = bytearray(RECORDINGS[name])
    records = _record_offsets(bytes(data))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["record", "record", "header", "cut", "zero", "insert"]))
        if kind == "header":
            at, form, values = HEADER_FIELDS[draw(st.sampled_from(sorted(HEADER_FIELDS)))]
            if at + struct.calcsize(form) <= len(data):
                struct.pack_into(form, data, at, draw(values))
        elif kind == "record":
            record = draw(st.sampled_from(records))
            at, form, values = FIELDS[draw(st.sampled_from(sorted(FIELDS)))]
            if record + at + struct.calcsize(form) <= len(data):
                struct.pack_into(form, data, record + at, draw(values))
        elif kind == "cut":
            del data[draw(st.integers(0, len(data))) :]
        elif kind == "zero":
            # A datagram with nothing after its UDP header, as its IP and UDP lengths say.
            record = draw(st.sampled_from(records))
            if record + FRAME + ETHERNET + IPV4 + UDP <= len(data):
                struct.pack_into("!H", data, record + FRAME + ETHERNET + 2, IPV4 + UDP)
                struct.pack_into("!H", data, record + FRAME + ETHERNET + IPV4 + 4, UDP)
        else:
            # Non-RTP UDP among the call's packets: SDP (its number as long as a sender
            # likes) or anything at all.
            extra = draw(
                st.builds(_sdp_record, SDP_PAYLOAD_TYPES)
                | st.binary(max_size=64).map(lambda b: _sdp_record("101")[:-5] + b)
            )
            at = draw(st.sampled_from([*records, len(data)]))
            data[at:at] = extra
    return name, bytes(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(damaged_recordings())
def test_a_damaged_or_crafted_capture_loads_or_fails_naming_the_file(
    damaged: tuple[str, bytes],
) -> None:
    name, data = damaged
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{name}-damaged.pcap"
        path.write_bytes(data)
        try:
            stream, _ = load_caller_stream(path)
        except CaptureError as exc:
            assert str(exc).startswith(f"{path}: "), exc
            assert "\n" not in str(exc)
        else:
            assert stream.datagrams and stream.codec in AUDIO_CODECS.values()
            assert 0 <= stream.event_payload_type <= 127
