"""Packet captures of UDP/RTP: feed a real SIP caller, decode captured calls.

Reads classic libpcap (either byte order, micro- or nanosecond stamps) and pcapng; writes
classic pcap with Ethernet/IPv4/UDP frames, which is what sipp's play_pcap_audio expects.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

import numpy as np

from ..errors import CaptureError
from ..media.codecs import DEFAULT_FRAME_MS, MS_PER_SECOND, Codec, get_codec
from ..media.g711 import PcmArray
from ..media.rtp import RtpPacketizer

PCAP_MAGIC_MICRO = 0xA1B2C3D4
PCAP_MAGIC_NANO = 0xA1B23C4D
PCAPNG_SHB_TYPE = 0x0A0D0D0A
PCAPNG_BYTE_ORDER_MAGIC = 0x1A2B3C4D
PCAPNG_IDB_TYPE = 0x00000001
PCAPNG_SPB_TYPE = 0x00000003
PCAPNG_EPB_TYPE = 0x00000006
PCAPNG_OPT_END = 0
PCAPNG_OPT_TSRESOL = 9
PCAPNG_OPT_TSOFFSET = 14
PCAPNG_DEFAULT_TSRESOL = 1e-6
PCAP_VERSION = (2, 4)
PCAP_SNAPLEN = 65535

LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_LINUX_SLL2 = 276
# The upper bits of the classic header's link type field carry FCS information.
LINKTYPE_MASK = 0xFFFF

ETHERTYPE_IPV4 = 0x0800
ETHERTYPES_VLAN = (0x8100, 0x88A8, 0x9100)
ETHERNET_HEADER_SIZE = 14
ETHERNET_ADDRESS_SIZE = 6
VLAN_TAG_SIZE = 4
SLL_HEADER_SIZE = 16
SLL2_HEADER_SIZE = 20
NULL_HEADER_SIZE = 4
AF_INET = 2
IPV4_MIN_HEADER_SIZE = 20
IP_PROTO_UDP = 17
IPV4_FRAGMENT_MASK = 0x3FFF  # more-fragments flag + fragment offset
IPV4_DONT_FRAGMENT = 0x4000
IPV4_TTL = 64
UDP_HEADER_SIZE = 8
# Locally administered MAC addresses: nothing real answers to them.
SRC_MAC = bytes.fromhex("020000000001")
DST_MAC = bytes.fromhex("020000000002")

_IPV4_HEADER = struct.Struct("!BBHHHBBH4s4s")
_UDP_HEADER = struct.Struct("!HHHH")


class PcapTruncatedError(ValueError):
    """The file ends in the middle of a header or packet (e.g. its writer was killed)."""


@dataclass
class UdpDatagram:
    time: float
    src: tuple[str, int]
    dst: tuple[str, int]
    payload: bytes
    # The Ethernet source address, when the capture has one (our recordings mark the direction
    # of each packet with it); written as SRC_MAC when None.
    link_src: bytes | None = field(default=None, compare=False)


# ---------------------------------------------------------------------------------------------
# Writing


def _ipv4_checksum(header: bytes) -> int:
    words = np.frombuffer(header, dtype=">u2").astype(np.uint32)
    total = int(words.sum())
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _ipv4_bytes(host: str) -> bytes:
    address = ipaddress.ip_address(host)
    if address.version != 4:
        raise ValueError(f"only IPv4 addresses can be written to pcap, got {host}")
    return address.packed


def _frame(datagram: UdpDatagram, ident: int) -> bytes:
    udp_length = UDP_HEADER_SIZE + len(datagram.payload)
    total_length = IPV4_MIN_HEADER_SIZE + udp_length
    if total_length > 0xFFFF:
        raise ValueError(f"UDP payload of {len(datagram.payload)} bytes does not fit in IPv4")
    src, dst = _ipv4_bytes(datagram.src[0]), _ipv4_bytes(datagram.dst[0])
    fields = [0x45, 0, total_length, ident, IPV4_DONT_FRAGMENT, IPV4_TTL, IP_PROTO_UDP]
    header = _IPV4_HEADER.pack(*fields, 0, src, dst)
    header = _IPV4_HEADER.pack(*fields, _ipv4_checksum(header), src, dst)
    # UDP checksum 0 means "not computed", which IPv4 allows and every reader accepts.
    udp = _UDP_HEADER.pack(datagram.src[1], datagram.dst[1], udp_length, 0)
    source_mac = datagram.link_src if datagram.link_src is not None else SRC_MAC
    if len(source_mac) != ETHERNET_ADDRESS_SIZE:
        raise ValueError(f"Ethernet address must be 6 bytes, got {len(source_mac)}")
    ethernet = DST_MAC + source_mac + struct.pack("!H", ETHERTYPE_IPV4)
    return ethernet + header + udp + datagram.payload


class PcapWriter:
    """Classic little-endian microsecond pcap, one Ethernet/IPv4/UDP frame per datagram,
    written as datagrams come (a call being recorded). ``close()`` flushes; a writer killed
    before that leaves a file that ``read_pcap(truncated_ok=True)`` reads up to the cut."""

    def __init__(self, path: str | Path, file: BinaryIO | None = None) -> None:
        """Write to ``path``, or to ``file`` (already open, e.g. created private) named so."""
        self.path = Path(path)
        self._file: BinaryIO | None = file if file is not None else self.path.open("wb")
        self._ident = 0
        self.written = 0
        self._file.write(
            struct.pack(
                "<IHHiIII", PCAP_MAGIC_MICRO, *PCAP_VERSION, 0, 0, PCAP_SNAPLEN, LINKTYPE_ETHERNET
            )
        )

    @property
    def closed(self) -> bool:
        return self._file is None

    def write(self, datagram: UdpDatagram) -> None:
        if self._file is None:
            raise ValueError(f"{self.path}: pcap writer is closed")
        frame = _frame(datagram, self._ident)
        self._ident = (self._ident + 1) & 0xFFFF
        seconds, micros = divmod(round(datagram.time * 1_000_000), 1_000_000)
        self._file.write(struct.pack("<IIII", seconds, micros, len(frame), len(frame)) + frame)
        self.written += 1

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> PcapWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def write_pcap(path: str | Path, datagrams: Iterable[UdpDatagram]) -> None:
    """Write a whole capture at once (see ``PcapWriter``)."""
    with PcapWriter(path) as writer:
        for datagram in datagrams:
            writer.write(datagram)


# ---------------------------------------------------------------------------------------------
# Reading: link layer -> IPv4 -> UDP


def _udp_from_ipv4(packet: bytes, time: float) -> UdpDatagram | None:
    """The UDP datagram inside an IPv4 packet, or None for anything else (skipped quietly)."""
    if len(packet) < IPV4_MIN_HEADER_SIZE or packet[0] >> 4 != 4:
        return None
    header_length = (packet[0] & 0x0F) * 4
    total_length = struct.unpack_from("!H", packet, 2)[0]
    flags_fragment = struct.unpack_from("!H", packet, 6)[0]
    if packet[9] != IP_PROTO_UDP or header_length < IPV4_MIN_HEADER_SIZE:
        return None
    if flags_fragment & IPV4_FRAGMENT_MASK:
        return None  # fragments: RTP never needs reassembly
    # Trim by the IP length: Ethernet pads short frames, and that padding is not payload.
    packet = packet[: min(total_length, len(packet))]
    if len(packet) < header_length + UDP_HEADER_SIZE:
        return None
    src_port, dst_port, udp_length, _ = _UDP_HEADER.unpack_from(packet, header_length)
    start = header_length + UDP_HEADER_SIZE
    end = header_length + udp_length
    if udp_length < UDP_HEADER_SIZE or end > len(packet):
        return None  # truncated by the capture's snap length
    src = str(ipaddress.IPv4Address(packet[12:16]))
    dst = str(ipaddress.IPv4Address(packet[16:20]))
    return UdpDatagram(time, (src, src_port), (dst, dst_port), bytes(packet[start:end]))


def _link_source(linktype: int, frame: bytes) -> bytes | None:
    if linktype == LINKTYPE_ETHERNET and len(frame) >= ETHERNET_HEADER_SIZE:
        return bytes(frame[ETHERNET_ADDRESS_SIZE : 2 * ETHERNET_ADDRESS_SIZE])
    return None


def _ipv4_payload(linktype: int, frame: bytes) -> bytes | None:
    """Strip the link-layer header; None when the frame does not carry IPv4."""
    if linktype == LINKTYPE_ETHERNET:
        offset = ETHERNET_HEADER_SIZE
        if len(frame) < offset:
            return None
        ethertype = struct.unpack_from("!H", frame, offset - 2)[0]
        while ethertype in ETHERTYPES_VLAN and len(frame) >= offset + VLAN_TAG_SIZE:
            ethertype = struct.unpack_from("!H", frame, offset + 2)[0]
            offset += VLAN_TAG_SIZE
        return frame[offset:] if ethertype == ETHERTYPE_IPV4 else None
    if linktype == LINKTYPE_LINUX_SLL:
        if len(frame) < SLL_HEADER_SIZE:
            return None
        protocol = struct.unpack_from("!H", frame, SLL_HEADER_SIZE - 2)[0]
        return frame[SLL_HEADER_SIZE:] if protocol == ETHERTYPE_IPV4 else None
    if linktype == LINKTYPE_LINUX_SLL2:
        if len(frame) < SLL2_HEADER_SIZE:
            return None
        protocol = struct.unpack_from("!H", frame, 0)[0]
        return frame[SLL2_HEADER_SIZE:] if protocol == ETHERTYPE_IPV4 else None
    if linktype in (LINKTYPE_RAW, LINKTYPE_IPV4):
        return frame
    if linktype == LINKTYPE_NULL:
        if len(frame) < NULL_HEADER_SIZE:
            return None
        # The family is in the capturing host's byte order, which the file does not record.
        family_le, family_be = (
            struct.unpack_from("<I", frame)[0],
            struct.unpack_from(">I", frame)[0],
        )
        return frame[NULL_HEADER_SIZE:] if AF_INET in (family_le, family_be) else None
    return None  # a pcapng interface of a kind we do not decode


SUPPORTED_LINKTYPES = frozenset(
    {
        LINKTYPE_NULL,
        LINKTYPE_ETHERNET,
        LINKTYPE_RAW,
        LINKTYPE_LINUX_SLL,
        LINKTYPE_IPV4,
        LINKTYPE_LINUX_SLL2,
    }
)


def _check_linktype(path: Path, linktype: int) -> None:
    if linktype not in SUPPORTED_LINKTYPES:
        raise ValueError(f"{path}: unsupported pcap link type {linktype}")


def _classic_frames(path: Path, data: bytes) -> Iterator[tuple[int, float, bytes]]:
    magic_le = struct.unpack_from("<I", data)[0]
    order = "<" if magic_le in (PCAP_MAGIC_MICRO, PCAP_MAGIC_NANO) else ">"
    magic = struct.unpack_from(f"{order}I", data)[0]
    fraction = 1e-9 if magic == PCAP_MAGIC_NANO else 1e-6
    global_header = struct.Struct(f"{order}IHHiIII")
    if len(data) < global_header.size:
        raise PcapTruncatedError(f"{path}: truncated pcap file header")
    linktype = global_header.unpack_from(data)[6] & LINKTYPE_MASK
    _check_linktype(path, linktype)
    record = struct.Struct(f"{order}IIII")
    offset = global_header.size
    while offset < len(data):
        if offset + record.size > len(data):
            raise PcapTruncatedError(f"{path}: truncated packet record header at offset {offset}")
        seconds, fractional, captured, _ = record.unpack_from(data, offset)
        offset += record.size
        if offset + captured > len(data):
            raise PcapTruncatedError(f"{path}: truncated packet data at offset {offset}")
        yield linktype, seconds + fractional * fraction, data[offset : offset + captured]
        offset += captured


@dataclass
class _Interface:
    linktype: int
    resolution: float = PCAPNG_DEFAULT_TSRESOL
    offset_s: int = 0


def _pcapng_options(body: bytes, order: str) -> Iterator[tuple[int, bytes]]:
    offset = 0
    while offset + 4 <= len(body):
        code, length = struct.unpack_from(f"{order}HH", body, offset)
        offset += 4
        if code == PCAPNG_OPT_END:
            return
        yield code, body[offset : offset + length]
        offset += (length + 3) & ~3


def _parse_interface(path: Path, body: bytes, order: str) -> _Interface:
    if len(body) < 8:
        raise ValueError(f"{path}: truncated pcapng interface description")
    interface = _Interface(linktype=struct.unpack_from(f"{order}H", body)[0])
    for code, value in _pcapng_options(body[8:], order):
        if code == PCAPNG_OPT_TSRESOL and value:
            exponent = value[0] & 0x7F
            interface.resolution = 2.0**-exponent if value[0] & 0x80 else 10.0**-exponent
        elif code == PCAPNG_OPT_TSOFFSET and len(value) >= 8:
            interface.offset_s = struct.unpack_from(f"{order}q", value)[0]
    return interface


def _pcapng_frames(path: Path, data: bytes) -> Iterator[tuple[int, float, bytes]]:
    order = "<"
    interfaces: list[_Interface] = []
    offset = 0
    while offset < len(data):
        if offset + 12 > len(data):
            raise PcapTruncatedError(f"{path}: truncated pcapng block at offset {offset}")
        if struct.unpack_from("<I", data, offset)[0] == PCAPNG_SHB_TYPE:
            # Each section declares its own byte order; the SHB type reads the same either way.
            bom = data[offset + 8 : offset + 12]
            if bom == struct.pack("<I", PCAPNG_BYTE_ORDER_MAGIC):
                order = "<"
            elif bom == struct.pack(">I", PCAPNG_BYTE_ORDER_MAGIC):
                order = ">"
            else:
                raise ValueError(f"{path}: bad pcapng byte-order magic 0x{bom.hex()}")
            interfaces = []
        block_type, block_length = struct.unpack_from(f"{order}II", data, offset)
        if block_length < 12 or block_length % 4:
            raise ValueError(f"{path}: bad pcapng block length {block_length} at offset {offset}")
        if offset + block_length > len(data):
            raise PcapTruncatedError(
                f"{path}: truncated pcapng block of {block_length} bytes at offset {offset}"
            )
        body = data[offset + 8 : offset + block_length - 4]
        offset += block_length
        if block_type == PCAPNG_IDB_TYPE:
            # Unsupported interfaces are tolerated: their packets are skipped like non-UDP.
            interfaces.append(_parse_interface(path, body, order))
        elif block_type == PCAPNG_EPB_TYPE:
            if len(body) < 20:
                raise ValueError(f"{path}: truncated pcapng enhanced packet block")
            iface_id, high, low, captured, _ = struct.unpack_from(f"{order}IIIII", body)
            if iface_id >= len(interfaces):
                raise ValueError(f"{path}: packet refers to unknown interface {iface_id}")
            iface = interfaces[iface_id]
            stamp = ((high << 32) | low) * iface.resolution + iface.offset_s
            yield iface.linktype, stamp, body[20 : 20 + captured]
        elif block_type == PCAPNG_SPB_TYPE:
            if not interfaces or len(body) < 4:
                raise ValueError(f"{path}: simple packet block without interface")
            original = struct.unpack_from(f"{order}I", body)[0]
            # Simple packet blocks carry no timestamp at all.
            yield interfaces[0].linktype, 0.0, body[4 : 4 + original]
        # Other blocks (statistics, name resolution, custom...) carry no packets.


def read_pcap(path: str | Path, *, truncated_ok: bool = False) -> list[UdpDatagram]:
    """Every IPv4 UDP datagram in a pcap or pcapng file; other traffic is skipped.

    A file that ends mid-header or mid-packet raises ``PcapTruncatedError``; with
    ``truncated_ok`` it gives the datagrams before the cut instead (a capture whose writer
    was killed), and an empty or header-less file gives none.
    """
    path = Path(path)
    data = path.read_bytes()
    if len(data) < 4:
        if truncated_ok:
            return []
        raise PcapTruncatedError(f"{path}: not a pcap file: only {len(data)} bytes")
    magic = struct.unpack_from("<I", data)[0]
    if magic == PCAPNG_SHB_TYPE:
        frames = _pcapng_frames(path, data)
    elif magic in (PCAP_MAGIC_MICRO, PCAP_MAGIC_NANO) or struct.unpack_from(">I", data)[0] in (
        PCAP_MAGIC_MICRO,
        PCAP_MAGIC_NANO,
    ):
        frames = _classic_frames(path, data)
    else:
        raise ValueError(f"{path}: not a pcap file: bad magic 0x{magic:08x}")
    datagrams = []
    try:
        for linktype, stamp, frame in frames:
            ip = _ipv4_payload(linktype, frame)
            datagram = _udp_from_ipv4(ip, stamp) if ip is not None else None
            if datagram is not None:
                datagram.link_src = _link_source(linktype, frame)
                datagrams.append(datagram)
    except PcapTruncatedError:
        if not truncated_ok:
            raise
    return datagrams


# ---------------------------------------------------------------------------------------------
# RTP streams


def rtp_stream_from_pcm(
    pcm: PcmArray,
    *,
    codec: Codec | str,
    src: tuple[str, int],
    dst: tuple[str, int],
    ssrc: int,
    payload_type: int | None = None,
    start_time: float = 0.0,
    first_sequence: int = 0,
    first_timestamp: int = 0,
    frame_ms: int = DEFAULT_FRAME_MS,
) -> list[UdpDatagram]:
    """Packetize PCM at the codec's rate into 20 ms RTP datagrams; the last frame is padded."""
    codec = get_codec(codec) if isinstance(codec, str) else codec
    array = np.asarray(pcm)
    if array.dtype != np.int16 or array.ndim != 1:
        raise ValueError(f"expected mono int16 PCM, got {array.dtype} with shape {array.shape}")
    samples = codec.samples_per_frame(frame_ms)
    frames = -(-len(array) // samples)
    padded = np.zeros(frames * samples, dtype=np.int16)
    padded[: len(array)] = array
    packetizer = RtpPacketizer(
        ssrc,
        codec.payload_type if payload_type is None else payload_type,
        codec.sample_rate,
        samples,
        initial_sequence=first_sequence,
        initial_timestamp=first_timestamp,
    )
    out = []
    for index in range(frames):
        payload = codec.encode(padded[index * samples : (index + 1) * samples])
        packet = packetizer.packet(payload, talkspurt_start=index == 0)
        when = start_time + index * frame_ms / MS_PER_SECOND
        out.append(UdpDatagram(when, src, dst, packet.serialize()))
    return out


def read_capture(path: Path) -> tuple[list[UdpDatagram], PcapTruncatedError | None]:
    """``read_pcap`` for a file someone named: the datagrams, and how the file was cut short
    when its writer was killed (the datagrams before the cut are given); ``CaptureError``
    naming the file when it cannot be read at all."""
    try:
        try:
            return read_pcap(path), None
        except PcapTruncatedError as cut:
            return read_pcap(path, truncated_ok=True), cut
    except FileNotFoundError:
        raise CaptureError(f"{path}: no such file") from None
    except OSError as exc:  # a directory, no permission, an I/O error
        raise CaptureError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except ValueError as exc:  # the reader's messages name the file
        raise CaptureError(str(exc)) from None
