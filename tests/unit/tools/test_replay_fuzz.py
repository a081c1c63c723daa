"""Fuzzing captures: whatever a pcap holds, the replay path drops and counts what it cannot use,
and raises nothing but a ``CaptureError`` that names the problem."""

from __future__ import annotations

import asyncio
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
from voicebot.tools.replay import load_caller_stream, replay_call

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
