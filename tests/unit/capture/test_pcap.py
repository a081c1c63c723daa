from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from tests.support.audio import ALLISON
from voicebot.capture.pcap import (
    PcapTruncatedError,
    UdpDatagram,
    read_pcap,
    rtp_stream_from_pcm,
    write_pcap,
)
from voicebot.capture.wav import read_wav
from voicebot.media.codecs import get_codec
from voicebot.media.rtp import RtpPacket

HELLO_WORLD = ALLISON / "hello-world.wav"
SRC = ("10.0.0.1", 4000)
DST = ("192.168.1.20", 40002)


def sample_datagrams() -> list[UdpDatagram]:
    return [
        UdpDatagram(1.5, SRC, DST, b"hello"),
        UdpDatagram(1.520001, DST, SRC, b"\x80" + bytes(200)),
        UdpDatagram(2.0, SRC, DST, b""),
    ]


def ip_packets(tmp_path: Path) -> list[bytes]:
    """IPv4 packets (no link header) as our writer produces them."""
    path = tmp_path / "ref.pcap"
    write_pcap(path, sample_datagrams())
    data = path.read_bytes()[24:]
    packets = []
    while data:
        length = struct.unpack_from("<I", data, 8)[0]
        packets.append(data[16 + 14 : 16 + length])
        data = data[16 + length :]
    return packets


def classic(linktype: int, frames: list[bytes], *, order: str = "<", nano: bool = False) -> bytes:
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = struct.pack(f"{order}IHHiIII", magic, 2, 4, 0, 0, 65535, linktype)
    scale = 1_000_000_000 if nano else 1_000_000
    for datagram, frame in zip(sample_datagrams(), frames, strict=False):
        seconds = int(datagram.time)
        fraction = round((datagram.time - seconds) * scale)
        out += struct.pack(f"{order}IIII", seconds, fraction, len(frame), len(frame)) + frame
    return out


def assert_same(datagrams: list[UdpDatagram]) -> None:
    expected = sample_datagrams()
    assert [(d.src, d.dst, d.payload) for d in datagrams] == [
        (d.src, d.dst, d.payload) for d in expected
    ]
    assert [d.time for d in datagrams] == pytest.approx([d.time for d in expected], abs=1e-6)


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "out.pcap"
    write_pcap(path, sample_datagrams())
    assert_same(read_pcap(path))


def test_written_ipv4_header_checksum_is_valid(tmp_path: Path) -> None:
    for packet in ip_packets(tmp_path):
        header = packet[:20]
        total = sum(struct.unpack("!10H", header))
        while total >> 16:
            total = (total & 0xFFFF) + (total >> 16)
        assert total == 0xFFFF
        assert struct.unpack_from("!H", packet, 26)[0] == 0  # UDP checksum "not computed"


def test_written_global_header(tmp_path: Path) -> None:
    path = tmp_path / "out.pcap"
    write_pcap(path, [])
    magic, major, minor, _, _, _, linktype = struct.unpack("<IHHiIII", path.read_bytes())
    assert (magic, major, minor, linktype) == (0xA1B2C3D4, 2, 4, 1)
    assert read_pcap(path) == []


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("nano", [False, True])
def test_byte_orders_and_resolutions(tmp_path: Path, order: str, nano: bool) -> None:
    eth = bytes(12) + b"\x08\x00"
    path = tmp_path / "x.pcap"
    path.write_bytes(classic(1, [eth + p for p in ip_packets(tmp_path)], order=order, nano=nano))
    assert_same(read_pcap(path))


def link_frames(linktype: int, packet: bytes) -> bytes:
    if linktype == 1:  # with an 802.1Q tag
        return bytes(12) + b"\x81\x00\x00\x05\x08\x00" + packet
    if linktype == 113:
        return struct.pack("!HHH8sH", 0, 1, 6, bytes(8), 0x0800) + packet
    if linktype == 276:
        return struct.pack("!HHIHBB8s", 0x0800, 0, 3, 1, 0, 6, bytes(8)) + packet
    if linktype in (101, 228):
        return packet
    if linktype == 0:
        return struct.pack("<I", 2) + packet
    raise AssertionError(linktype)


@pytest.mark.parametrize("linktype", [0, 1, 101, 113, 228, 276])
def test_link_types(tmp_path: Path, linktype: int) -> None:
    path = tmp_path / "x.pcap"
    frames = [link_frames(linktype, p) for p in ip_packets(tmp_path)]
    path.write_bytes(classic(linktype, frames))
    assert_same(read_pcap(path))


def test_bsd_loopback_big_endian_family(tmp_path: Path) -> None:
    path = tmp_path / "x.pcap"
    frames = [struct.pack(">I", 2) + p for p in ip_packets(tmp_path)]
    path.write_bytes(classic(0, frames))
    assert_same(read_pcap(path))


def test_non_udp_and_ipv6_skipped_and_padding_trimmed(tmp_path: Path) -> None:
    hello = ip_packets(tmp_path)[0]
    tcp = bytearray(hello)
    tcp[9] = 6
    ipv6 = bytes(12) + b"\x86\xdd" + bytes([0x60]) + bytes(60)
    padded = bytes(12) + b"\x08\x00" + hello + bytes(64 - 14 - len(hello))  # Ethernet minimum
    path = tmp_path / "x.pcap"
    path.write_bytes(classic(1, [bytes(12) + b"\x08\x00" + bytes(tcp), ipv6, padded]))
    datagrams = read_pcap(path)
    assert len(datagrams) == 1
    assert datagrams[0].payload == b"hello"  # without the Ethernet padding
    assert datagrams[0].time == pytest.approx(2.0)


def pcapng_block(block_type: int, body: bytes) -> bytes:
    body += bytes(-len(body) % 4)
    length = len(body) + 12
    return struct.pack("<II", block_type, length) + body + struct.pack("<I", length)


def test_pcapng(tmp_path: Path) -> None:
    shb = pcapng_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    tsresol = struct.pack("<HHB3x", 9, 1, 9) + struct.pack("<HH", 0, 0)  # nanoseconds
    idb_ns = pcapng_block(1, struct.pack("<HHI", 1, 0, 65535) + tsresol)
    idb_usb = pcapng_block(1, struct.pack("<HHI", 189, 0, 65535))  # unsupported: skipped
    idb_raw = pcapng_block(1, struct.pack("<HHI", 101, 0, 65535))  # default microseconds
    blocks = [shb, idb_ns, idb_usb, idb_raw]
    packets = ip_packets(tmp_path)
    for index, (datagram, packet) in enumerate(zip(sample_datagrams(), packets, strict=True)):
        iface = 0 if index % 2 == 0 else 2
        frame = bytes(12) + b"\x08\x00" + packet if iface == 0 else packet
        ticks = round(datagram.time * (1e9 if iface == 0 else 1e6))
        body = struct.pack("<IIIII", iface, ticks >> 32, ticks & 0xFFFFFFFF, len(frame), len(frame))
        blocks.append(pcapng_block(6, body + frame))
    blocks.append(pcapng_block(6, struct.pack("<IIIII", 1, 0, 0, 3, 3) + b"usb"))
    blocks.append(pcapng_block(5, b"statistics are ignored"))
    path = tmp_path / "x.pcapng"
    path.write_bytes(b"".join(blocks))
    assert_same(read_pcap(path))


def test_errors_name_file_and_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"GIF89a" + bytes(30))
    with pytest.raises(ValueError, match=r"bad\.pcap: not a pcap file: bad magic 0x38464947"):
        read_pcap(bad)
    truncated = tmp_path / "trunc.pcap"
    write_pcap(truncated, sample_datagrams())
    truncated.write_bytes(truncated.read_bytes()[:-3])
    with pytest.raises(ValueError, match=r"trunc\.pcap: truncated packet data"):
        read_pcap(truncated)
    unsupported = tmp_path / "usb.pcap"
    unsupported.write_bytes(classic(189, []))
    with pytest.raises(ValueError, match="unsupported pcap link type 189"):
        read_pcap(unsupported)


def test_truncated_ok_keeps_what_came_before_the_cut(tmp_path: Path) -> None:
    classic_path = tmp_path / "cut.pcap"
    write_pcap(classic_path, sample_datagrams())
    whole = classic_path.read_bytes()
    pcapng_path = tmp_path / "cut.pcapng"
    shb = pcapng_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    blocks = [shb, pcapng_block(1, struct.pack("<HHI", 101, 0, 65535))]
    for datagram, packet in zip(sample_datagrams(), ip_packets(tmp_path), strict=True):
        ticks = round(datagram.time * 1e6)
        body = struct.pack("<IIIII", 0, ticks >> 32, ticks & 0xFFFFFFFF, len(packet), len(packet))
        blocks.append(pcapng_block(6, body + packet))
    pcapng_whole = b"".join(blocks)
    expected = [(d.src, d.dst, d.payload) for d in sample_datagrams()[:2]]
    # Cut inside the last packet's data, then inside its record header / block.
    for path, data in [(classic_path, whole), (pcapng_path, pcapng_whole)]:
        last = len(sample_datagrams()[-1].payload) + 28 + (14 if path is classic_path else 0)
        for cut in (3, last + 10):
            path.write_bytes(data[:-cut])
            with pytest.raises(PcapTruncatedError, match="truncated"):
                read_pcap(path)
            got = read_pcap(path, truncated_ok=True)
            assert [(d.src, d.dst, d.payload) for d in got] == expected
    # Nothing or only part of the file header: no datagrams.
    for data in (b"", whole[:2], whole[:10], pcapng_whole[:10]):
        classic_path.write_bytes(data)
        with pytest.raises(ValueError):
            read_pcap(classic_path)
        assert read_pcap(classic_path, truncated_ok=True) == []
    # Damage other than a cut still raises.
    classic_path.write_bytes(b"GIF89a" + bytes(30))
    with pytest.raises(ValueError, match="bad magic"):
        read_pcap(classic_path, truncated_ok=True)


def test_write_rejects_ipv6(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="IPv4"):
        write_pcap(tmp_path / "x.pcap", [UdpDatagram(0, ("::1", 1), ("::1", 2), b"")])


def test_rtp_stream_from_pcm() -> None:
    pcm = (np.arange(500) * 37 % 4000).astype(np.int16)
    stream = rtp_stream_from_pcm(
        pcm,
        codec="ulaw",
        src=SRC,
        dst=DST,
        ssrc=0x1234,
        payload_type=0,
        start_time=10.0,
        first_sequence=65535,
        first_timestamp=100,
    )
    assert len(stream) == 4  # 500 samples -> 3 full frames + 1 padded
    packets = [RtpPacket.parse(d.payload) for d in stream]
    assert [p.sequence for p in packets] == [65535, 0, 1, 2]
    assert [p.timestamp for p in packets] == [100, 260, 420, 580]
    assert [p.marker for p in packets] == [True, False, False, False]
    assert all(len(p.payload) == 160 for p in packets)
    assert [d.time for d in stream] == pytest.approx([10.0, 10.02, 10.04, 10.06])
    assert {(d.src, d.dst) for d in stream} == {(SRC, DST)}
    tail = get_codec("ulaw").decode(packets[-1].payload)
    assert np.all(tail[500 - 480 :] == 0)


@pytest.mark.parametrize("codec_name", ["ulaw", "alaw"])
def test_allison_hello_world_survives_pcap(tmp_path: Path, codec_name: str) -> None:
    pcm, rate = read_wav(HELLO_WORLD)
    assert rate == 8000 and len(pcm) > 8000
    codec = get_codec(codec_name)
    stream = rtp_stream_from_pcm(
        pcm, codec=codec, src=SRC, dst=DST, ssrc=7, payload_type=codec.payload_type
    )
    path = tmp_path / "hello.pcap"
    write_pcap(path, stream)
    datagrams = read_pcap(path)
    assert len(datagrams) == len(stream) == -(-len(pcm) // 160)
    packets = [RtpPacket.parse(d.payload) for d in datagrams]
    decoded = np.concatenate([codec.decode(p.payload) for p in packets])[: len(pcm)]
    assert np.array_equal(decoded, codec.decode(codec.encode(pcm)))
    # And the companded speech is still the recording: high SNR against the original.
    signal = np.sum(pcm.astype(np.float64) ** 2)
    noise = np.sum((pcm.astype(np.float64) - decoded) ** 2)
    assert 10 * np.log10(signal / noise) > 30
