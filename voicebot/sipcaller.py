"""A real SIP test caller: sipp places the call, dumpcap records what the caller hears.

``place_call`` turns a list of steps (play audio, pause, send DTMF, hang up, wait for the
remote to hang up) into a sipp XML scenario plus one RTP pcap per audio/DTMF step, runs
sipp against Asterisk, and captures the RTP arriving at (and leaving) the caller's media
port with ``dumpcap`` on the matching interface. The capture gives both the audio the caller
received (decoded from PCMU, gaps filled from RTP timestamps) and the wall-clock time each
played step really started on the wire, for latency measurements.

Needs the ``sipp`` (Debian: sip-tester) and ``dumpcap`` (Debian: tshark/wireshark-common)
binaries, and the right to capture packets (root). Media is IPv4 PCMU/8000 with RFC 4733
telephone-events on payload type 101.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import random
import re
import shutil
import signal
import socket
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple
from xml.sax.saxutils import escape

import numpy as np
from numpy.typing import NDArray

from .capture.pcap import UdpDatagram, read_pcap, read_wav, rtp_stream_from_pcm, write_pcap
from .capture.timeline import lay_out_audio
from .errors import VoicebotError
from .media.codecs import ULAW
from .media.dtmf import DEFAULT_EVENT_PAYLOAD_TYPE, DTMF_DIGITS, dtmf_packets
from .media.levels import is_voiced
from .media.rtp import SEQUENCE_MODULUS, TIMESTAMP_MODULUS, RtpPacket

SAMPLE_RATE = ULAW.sample_rate
FRAME_SAMPLES = ULAW.samples_per_frame()  # 20 ms of PCMU per RTP packet
PT_PCMU = ULAW.payload_type
PT_TELEPHONE_EVENT = DEFAULT_EVENT_PAYLOAD_TYPE

Pcm = NDArray[np.int16]


class SipCallError(VoicebotError):
    """The test call failed (sipp error, timeout, capture failure). ``result`` may hold what
    was recorded before the failure (``None`` if nothing ran)."""

    def __init__(self, message: str, result: CallResult | None = None) -> None:
        super().__init__(message)
        self.result = result


# ---- steps -----------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Play:
    """Send this audio (8 kHz mono int16) as PCMU RTP, then wait for its duration."""

    pcm: Pcm

    def __post_init__(self) -> None:
        array = np.asarray(self.pcm)
        if array.dtype != np.int16 or array.ndim != 1:
            raise ValueError("Play needs 1-D int16 PCM at 8 kHz")
        if array.size == 0:
            raise ValueError("Play needs at least one sample")
        object.__setattr__(self, "pcm", array)

    @property
    def duration_s(self) -> float:
        return float(self.pcm.size) / SAMPLE_RATE


@dataclass(frozen=True)
class Pause:
    """Send nothing for this long (the call stays up)."""

    seconds: float

    def __post_init__(self) -> None:
        if self.seconds < 0:
            raise ValueError("Pause needs seconds >= 0")


@dataclass(frozen=True)
class Dtmf:
    """Send DTMF digits (0-9 * # A-D) as RFC 4733 telephone-events (payload type 101)."""

    digits: str
    tone_ms: int = 120
    gap_ms: int = 120

    def __post_init__(self) -> None:
        if not self.digits or any(d.upper() not in DTMF_DIGITS for d in self.digits):
            raise ValueError(f"Dtmf digits must be from 0-9*#A-D, got {self.digits!r}")
        if self.tone_ms < 40 or self.gap_ms < 20:
            raise ValueError("Dtmf needs tone_ms >= 40 and gap_ms >= 20")

    @property
    def duration_s(self) -> float:
        return len(self.digits) * (self.tone_ms + self.gap_ms) / 1000.0


@dataclass(frozen=True)
class Hangup:
    """Send BYE and wait for its 200 OK. Ends the step list."""


@dataclass(frozen=True)
class WaitForBye:
    """Wait until the remote side hangs up (BYE, answered 200 OK). Ends the step list.
    The call fails if no BYE arrives within ``timeout_s``."""

    timeout_s: float = 30.0


Step = Play | Pause | Dtmf | Hangup | WaitForBye


# ---- result ----------------------------------------------------------------------------


class ReceivedRtp(NamedTuple):
    """One RTP packet captured at the caller's media port. ``arrival_time`` is wall time
    (``time.time()`` clock) from the capture."""

    arrival_time: float
    packet: RtpPacket

    @property
    def seq(self) -> int:
        return self.packet.sequence

    @property
    def ts(self) -> int:
        return self.packet.timestamp

    @property
    def marker(self) -> bool:
        return self.packet.marker

    @property
    def payload(self) -> bytes:
        return self.packet.payload


@dataclass
class CallResult:
    call_id: str
    sipp_returncode: int
    # sipp's SIP message trace, then the tails of its error log and stdout/stderr.
    sipp_log: str
    # What the caller heard: PCMU decoded to 8 kHz int16; silence where no packets arrived
    # (placed by RTP timestamp). Sample 0 is at ``received_start_time``.
    received_audio: Pcm
    received_packets: list[ReceivedRtp]
    # Wall time of received_audio[0] (arrival of the first received packet), or None.
    received_start_time: float | None
    # Per Play step, in order: wall time its first RTP packet left the caller (None if the
    # call ended before it was sent).
    sent_start_time: list[float | None]
    # Per Dtmf step, in order: wall time its first telephone-event packet left.
    dtmf_sent_time: list[float | None]
    sent_packets: list[ReceivedRtp] = field(default_factory=list)
    # Wall times from sipp's message trace.
    answered_time: float | None = None
    hangup_time: float | None = None
    # "caller" (we sent BYE), "remote" (we received BYE) or None (no BYE seen).
    hangup_by: str | None = None
    workdir: Path | None = None
    # One line per SIP message: "12:00:01.234 -> INVITE sip:100@... SIP/2.0", "<-" received.
    sip_flow: list[str] = field(default_factory=list)
    # The final error response to the INVITE ("404 Not Found"), if the call was rejected.
    rejected: str | None = None

    @property
    def received_duration_s(self) -> float:
        return float(self.received_audio.size) / SAMPLE_RATE

    def time_of_sample(self, index: int) -> float | None:
        """Approximate wall time of ``received_audio[index]``."""
        if self.received_start_time is None:
            return None
        return self.received_start_time + index / SAMPLE_RATE

    def first_voiced_after(self, t: float) -> float | None:
        """Arrival time of the first received PCMU packet after wall time ``t`` that is voiced
        (``media.levels``; a latency probe: "when did the bot start talking")."""
        for pkt in self.received_packets:
            if pkt.arrival_time < t or pkt.packet.payload_type != PT_PCMU:
                continue
            if is_voiced(ULAW.decode(pkt.packet.payload)):
                return pkt.arrival_time
        return None


# ---- public API ------------------------------------------------------------------------


def read_wav_8k(path: str | os.PathLike[str]) -> Pcm:
    """Read an 8 kHz 16-bit WAV (e.g. Asterisk's prompts) as mono int16 samples."""
    pcm, rate = read_wav(os.fspath(path))
    if rate != SAMPLE_RATE:
        raise ValueError(f"{path}: need an 8 kHz 16-bit WAV, got {rate} Hz")
    return pcm


async def place_call(
    *,
    target: str = "127.0.0.1:5060",
    extension: str = "100",
    steps: Sequence[Step],
    media_ip: str | None = None,
    media_port: int | None = None,
    timeout_s: float = 60.0,
    workdir: Path,
    sipp_binary: str = "sipp",
    dumpcap_binary: str = "dumpcap",
) -> CallResult:
    """Call ``extension`` at ``target`` (host:port, UDP) and run ``steps``.

    ``media_ip`` defaults to the local address that routes to the target (127.0.0.1 for a
    local Asterisk); ``media_port`` defaults to a free even port. ``workdir`` receives the
    scenario, pcaps, capture and sipp logs (kept for post-mortems). A call that does not end
    with Hangup/WaitForBye gets a Hangup appended. Raises ``SipCallError`` when sipp fails
    or the whole call exceeds ``timeout_s``; the error's ``result`` has what was recorded.
    """
    steps = list(steps)
    _validate_steps(steps)
    if not steps or not isinstance(steps[-1], (Hangup, WaitForBye)):
        steps.append(Hangup())
    for binary in (sipp_binary, dumpcap_binary):
        if shutil.which(binary) is None:
            raise SipCallError(
                f"{binary} not found; run scripts/install-system-deps.sh (sip-tester, tshark)"
            )
    host, port = _split_hostport(target)
    remote_ip = socket.gethostbyname(host)
    local_ip = _local_ip_for(remote_ip)
    media_ip = media_ip or local_ip
    if media_port is None:
        media_port = _free_media_port(media_ip)
    sip_port = _free_sip_port(local_ip)

    workdir = Path(workdir)
    workdir = workdir.absolute()  # sipp runs in its own directory
    workdir.mkdir(parents=True, exist_ok=True)
    call_tag = uuid.uuid4().hex[:12]
    call_id = f"voicebot-{call_tag}-1@{local_ip}"

    plan = _build_media(steps, workdir, media_ip, media_port, remote_ip)
    scenario = workdir / "scenario.xml"
    scenario.write_text(_scenario_xml(steps, plan), encoding="utf-8")

    capture_file = workdir / "capture.pcap"
    message_file = workdir / "sipp-messages.log"
    error_file = workdir / "sipp-errors.log"
    stdout_file = workdir / "sipp-stdout.log"
    for stale in (capture_file, message_file, error_file, stdout_file):
        stale.unlink(missing_ok=True)

    sipp_cmd = [
        sipp_binary, f"{remote_ip}:{port}",
        "-sf", str(scenario),
        "-s", extension,
        "-i", local_ip, "-p", str(sip_port),
        "-mi", media_ip, "-mp", str(media_port),
        "-m", "1", "-l", "1",
        "-cid_str", f"voicebot-{call_tag}-%u@%s",
        "-timeout", f"{max(1, int(timeout_s))}s", "-timeout_error",
        "-trace_msg", "-message_file", str(message_file),
        "-trace_err", "-error_file", str(error_file),
        "-nostdin",
    ]  # fmt: skip
    capture_iface = "lo" if ipaddress.ip_address(media_ip).is_loopback else "any"
    dumpcap_cmd = [
        dumpcap_binary, "-i", capture_iface, "-f", f"udp port {media_port}",
        "-P", "-q", "-w", str(capture_file),
    ]  # fmt: skip

    dumpcap: asyncio.subprocess.Process | None = None
    sipp: asyncio.subprocess.Process | None = None
    returncode = -1
    try:
        dumpcap = await _start_capture(dumpcap_cmd)
        with stdout_file.open("wb") as out:
            sipp = await asyncio.create_subprocess_exec(
                *sipp_cmd,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                cwd=str(workdir),
                start_new_session=True,
            )
            try:
                returncode = await asyncio.wait_for(sipp.wait(), timeout_s + 10)
            except TimeoutError:
                await _kill(sipp)
                returncode = -1
        # Let the last packets in flight reach the capture before stopping it.
        await asyncio.sleep(0.3)
        await _stop_capture(dumpcap)
    finally:
        # Also runs on cancellation: never leave sipp or dumpcap behind.
        if sipp is not None:
            await _kill(sipp)
        if dumpcap is not None:
            await _kill(dumpcap)

    result = _collect(
        call_id, returncode, plan, media_port, capture_file, message_file, error_file, stdout_file
    )
    result.workdir = workdir
    if returncode != 0:
        raise SipCallError(
            _failure_message(result, returncode, extension, target, timeout_s), result
        )
    return result


def _failure_message(
    result: CallResult, returncode: int, extension: str, target: str, timeout_s: float
) -> str:
    errors = ""
    if result.workdir is not None:
        errors = _tail(_read_text(result.workdir / "sipp-errors.log"), 15)
    if result.rejected:
        reason = f"the INVITE was rejected with {result.rejected}"
    elif "receive timeout" in errors:
        reason = "an expected message never came (e.g. no BYE within WaitForBye's timeout)"
    elif returncode == -1:
        reason = f"sipp did not finish within {timeout_s + 10:.0f} s"
    elif not result.sip_flow:
        reason = "sipp did not send anything (see its output below)"
    elif result.answered_time is None:
        reason = "the call was not answered"
    else:
        reason = "the call failed after it was answered (see sipp errors below)"
    if not errors.strip():
        errors = _tail(result.sipp_log, 30)
    return (
        f"SIP test call to {extension}@{target} failed: {reason} "
        f"(sipp exit code {returncode}; scenario, pcaps and logs in {result.workdir})\n"
        "SIP messages:\n  " + "\n  ".join(result.sip_flow[-20:] or ["(none)"]) + "\n"
        "sipp errors/output:\n" + errors
    )


# ---- validation and helpers --------------------------------------------------------------


def _validate_steps(steps: list[Step]) -> None:
    for i, step in enumerate(steps):
        if not isinstance(step, (Play, Pause, Dtmf, Hangup, WaitForBye)):
            raise TypeError(f"step {i}: unknown step {step!r}")
        if isinstance(step, (Hangup, WaitForBye)) and i != len(steps) - 1:
            raise ValueError(f"step {i}: {type(step).__name__} must be the last step")


def _split_hostport(target: str) -> tuple[str, int]:
    host, sep, port = target.rpartition(":")
    if not sep:
        return target, 5060
    return host, int(port)


def _local_ip_for(remote_ip: str) -> str:
    if ipaddress.ip_address(remote_ip).is_loopback:
        return "127.0.0.1"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect((remote_ip, 9))  # no packet is sent; this only picks the route
        return str(sock.getsockname()[0])


# Ports handed to callers placed from this process lately: a probed port stays free only until
# sipp binds it, and callers placed together (a load bench: dozens at once) must not pick the
# same one in between.
_RECENTLY_GIVEN: dict[int, float] = {}
_GIVEN_FOR_S = 120.0


def _claim(ip: str, lowest: int, highest: int, span: int, step: int, what: str) -> int:
    """A port in [lowest, highest) whose ``span`` ports from it bind now and were not given out
    lately. The range stays below Linux's ephemeral ports (32768+): a port free when probed
    could otherwise be handed to some other socket before sipp binds it."""
    now = time.monotonic()
    for port, at in list(_RECENTLY_GIVEN.items()):
        if now - at > _GIVEN_FOR_S:
            del _RECENTLY_GIVEN[port]
    rng = random.Random()
    for _ in range(400):
        port = rng.randrange(lowest, highest, step)
        if any(p in _RECENTLY_GIVEN for p in range(port, port + span)):
            continue
        socks: list[socket.socket] = []
        try:
            for p in range(port, port + span):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind((ip, p))
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
        for p in range(port, port + span):
            _RECENTLY_GIVEN[p] = now
        return port
    raise SipCallError(f"no free UDP port for the caller's {what}")


def _free_sip_port(ip: str) -> int:
    return _claim(ip, 30000, 32760, 1, 1, "SIP")


def _free_media_port(ip: str) -> int:
    # sipp binds the audio port and port+2 (video); RTP ports are even by convention. The
    # range also misses Asterisk's RTP range (10000-10999) and voicebot's own (40000+).
    return _claim(ip, 20000, 29998, 3, 2, "media")


def _tail(text: str, lines: int) -> str:
    return "\n".join(text.splitlines()[-lines:])


async def _kill(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(proc.wait(), 5)


async def _start_capture(cmd: list[str]) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        *cmd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    assert proc.stderr is not None
    seen: list[str] = []
    try:
        async with asyncio.timeout(15):
            while True:
                line = await proc.stderr.readline()
                if not line:
                    break
                text = line.decode(errors="replace").rstrip()
                seen.append(text)
                if text.startswith("Capturing on"):
                    break
    except TimeoutError:
        pass
    if proc.returncode is not None or not seen or not seen[-1].startswith("Capturing on"):
        await _kill(proc)
        raise SipCallError(
            "packet capture did not start (" + " ".join(cmd) + "): " + " | ".join(seen[-5:])
        )
    # Keep draining stderr so dumpcap never blocks on a full pipe.
    asyncio.get_running_loop().create_task(_drain(proc.stderr))
    return proc


async def _drain(stream: asyncio.StreamReader) -> None:
    with contextlib.suppress(Exception):
        while await stream.read(4096):
            pass


async def _stop_capture(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGINT)
    try:
        await asyncio.wait_for(proc.wait(), 5)
    except TimeoutError:
        await _kill(proc)


# ---- media: RTP pcaps for sipp's play_pcap_audio -----------------------------------------


@dataclass
class _MediaPlan:
    # step index -> pcap file name (relative to the scenario's directory)
    pcaps: dict[int, str] = field(default_factory=dict)
    # step index -> first RTP sequence number of that step
    first_seq: dict[int, int] = field(default_factory=dict)
    ssrc: int = 0


# sipp replays a pcap by the packets' relative times; the absolute base is arbitrary.
_PCAP_BASE_TIME = 1_000_000_000.0


def _build_media(
    steps: list[Step], workdir: Path, media_ip: str, media_port: int, remote_ip: str
) -> _MediaPlan:
    """One pcap per Play/Dtmf step. All steps share one SSRC with continuous sequence
    numbers and timestamps that advance with the scheduled time, like a real phone."""
    rng = random.Random()
    plan = _MediaPlan(ssrc=rng.getrandbits(32))
    seq = rng.getrandbits(15)
    ts = rng.getrandbits(31)
    src = (media_ip, media_port)
    # sipp replaces the destination with the address from Asterisk's SDP.
    dst = (remote_ip, 10000)
    for index, step in enumerate(steps):
        packets: list[UdpDatagram] = []
        if isinstance(step, Play):
            plan.first_seq[index] = seq
            packets = rtp_stream_from_pcm(
                step.pcm, codec=ULAW, src=src, dst=dst, ssrc=plan.ssrc,
                start_time=_PCAP_BASE_TIME, first_sequence=seq, first_timestamp=ts,
            )  # fmt: skip
            seq = (seq + len(packets)) % SEQUENCE_MODULUS
            ts = (ts + len(packets) * FRAME_SAMPLES) % TIMESTAMP_MODULUS
        elif isinstance(step, Dtmf):
            plan.first_seq[index] = seq
            packets = _dtmf_datagrams(step, src, dst, plan.ssrc, seq, ts)
            seq = (seq + len(packets)) % SEQUENCE_MODULUS
            step_samples = len(step.digits) * (step.tone_ms + step.gap_ms) * SAMPLE_RATE // 1000
            ts = (ts + step_samples) % TIMESTAMP_MODULUS
        elif isinstance(step, Pause):
            ts = (ts + int(step.seconds * SAMPLE_RATE)) % TIMESTAMP_MODULUS
        if packets:
            name = f"step{index:02d}-{type(step).__name__.lower()}.pcap"
            write_pcap(workdir / name, packets)
            plan.pcaps[index] = name
    return plan


def _dtmf_datagrams(
    step: Dtmf, src: tuple[str, int], dst: tuple[str, int], ssrc: int, seq: int, ts: int
) -> list[UdpDatagram]:
    """RFC 4733 telephone-events for each digit, as a phone sends them (``dtmf_packets``);
    each digit has its own timestamp (the start of its tone)."""
    out: list[UdpDatagram] = []
    for index, digit in enumerate(step.digits.upper()):
        period_ms = index * (step.tone_ms + step.gap_ms)
        start = _PCAP_BASE_TIME + period_ms / 1000.0
        packets = dtmf_packets(
            digit,
            ssrc=ssrc,
            first_sequence=(seq + len(out)) % SEQUENCE_MODULUS,
            timestamp=(ts + period_ms * SAMPLE_RATE // 1000) % TIMESTAMP_MODULUS,
            payload_type=PT_TELEPHONE_EVENT,
            duration_ms=step.tone_ms,
        )
        out += [UdpDatagram(start + offset, src, dst, p.serialize()) for offset, p in packets]
    return out


# ---- scenario ----------------------------------------------------------------------------

_INVITE = """
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "voicebot test" <sip:voicebot-test@[local_ip]:[local_port]>;tag=[pid]vbt[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:voicebot-test@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      User-Agent: voicebot-sipcaller (sipp)
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=voicebot 1 1 IN IP[local_ip_type] [local_ip]
      s=voicebot test call
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0 101
      a=rtpmap:0 PCMU/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-16
      a=ptime:20
      a=sendrecv
"""

_ACK = """
      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      [routes]
      [last_From:]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Contact: <sip:voicebot-test@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      Content-Length: 0
"""

_BYE = """
      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      [routes]
      From: "voicebot test" <sip:voicebot-test@[local_ip]:[local_port]>;tag=[pid]vbt[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Max-Forwards: 70
      Content-Length: 0
"""

_BYE_OK = """
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:voicebot-test@[local_ip]:[local_port];transport=[transport]>
      Content-Length: 0
"""


def _cdata(text: str) -> str:
    return "<![CDATA[" + text + "\n    ]]>"


def _scenario_xml(steps: list[Step], plan: _MediaPlan) -> str:
    body: list[str] = [
        '  <send retrans="500">' + _cdata(_INVITE) + "</send>",
        '  <recv response="100" optional="true"/>',
        '  <recv response="180" optional="true"/>',
        '  <recv response="183" optional="true"/>',
        '  <recv response="200" rtd="true" rrs="true"/>',
        "  <send>" + _cdata(_ACK) + "</send>",
        # The remote may hang up at any point (during a Play or Pause): answer its BYE and
        # end the call normally; CallResult.hangup_by tells the test it happened. sipp only
        # looks for optional="global" recvs *before* the current position, hence here; the
        # mandatory recv after it is never reached and only satisfies sipp's rule that
        # optional recvs need a mandatory one.
        '  <nop next="steps"/>',
        '  <recv request="BYE" optional="global" next="remote_bye"/>',
        '  <recv request="BYE" next="remote_bye"/>',
        '  <label id="remote_bye"/>',
        '  <send next="done">' + _cdata(_BYE_OK) + "</send>",
        '  <label id="steps"/>',
    ]
    for index, step in enumerate(steps):
        if isinstance(step, (Play, Dtmf)):
            pcap = escape(plan.pcaps[index], {'"': "&quot;"})
            ms = round(step.duration_s * 1000) + 20
            body.append(f'  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>')
            body.append(f'  <pause milliseconds="{ms}"/>')
        elif isinstance(step, Pause):
            body.append(f'  <pause milliseconds="{round(step.seconds * 1000)}"/>')
        elif isinstance(step, Hangup):
            body.append("  <send>" + _cdata(_BYE) + "</send>")
            # 481: the remote already forgot the call (it hung up at the same moment).
            body.append('  <recv response="481" optional="true" next="done"/>')
            body.append('  <recv response="200" next="done"/>')
        elif isinstance(step, WaitForBye):
            ms = round(step.timeout_s * 1000)
            body.append(f'  <recv request="BYE" timeout="{ms}"/>')
            body.append("  <send>" + _cdata(_BYE_OK) + "</send>")
            body.append('  <nop next="done"/>')
    body.append('  <label id="done"/>')
    return (
        '<?xml version="1.0" encoding="ISO-8859-1" ?>\n'
        '<scenario name="voicebot test caller">\n' + "\n".join(body) + "\n</scenario>\n"
    )


# ---- results: capture and sipp trace -----------------------------------------------------


def _collect(
    call_id: str,
    returncode: int,
    plan: _MediaPlan,
    media_port: int,
    capture_file: Path,
    message_file: Path,
    error_file: Path,
    stdout_file: Path,
) -> CallResult:
    messages = _read_text(message_file)
    log_parts = [messages]
    errors = _read_text(error_file)
    if errors.strip():
        log_parts.append("--- sipp errors ---\n" + _tail(errors, 40))
    stdout = _read_text(stdout_file)
    if stdout.strip():
        log_parts.append("--- sipp output ---\n" + _tail(_strip_ansi(stdout), 40))
    sipp_log = "\n".join(log_parts)

    received: list[ReceivedRtp] = []
    sent: list[ReceivedRtp] = []
    if capture_file.exists():
        try:
            # A capture cut short (dumpcap killed mid-write) still gives what came before.
            datagrams = read_pcap(capture_file, truncated_ok=True)
        except ValueError as exc:
            raise SipCallError(f"cannot read the capture: {exc}") from None
        seen: set[tuple[int, int, int, int]] = set()
        for datagram in datagrams:
            sport, dport = datagram.src[1], datagram.dst[1]
            try:
                pkt = RtpPacket.parse(datagram.payload)
            except ValueError:
                continue  # RTCP or garbage
            if 72 <= pkt.payload_type <= 76:
                continue  # RTCP on the RTP port (rtcp-mux style)
            key = (sport, pkt.ssrc, pkt.sequence, pkt.timestamp)
            if key in seen:
                continue  # the same packet captured twice (e.g. on "any")
            seen.add(key)
            if dport == media_port:
                received.append(ReceivedRtp(datagram.time, pkt))
            elif sport == media_port:
                sent.append(ReceivedRtp(datagram.time, pkt))
    received.sort(key=lambda r: r.arrival_time)
    sent.sort(key=lambda r: r.arrival_time)

    first_sent_by_seq: dict[int, float] = {}
    for s in sent:
        if s.packet.ssrc == plan.ssrc:
            first_sent_by_seq.setdefault(s.packet.sequence, s.arrival_time)
    play_times: list[float | None] = []
    dtmf_times: list[float | None] = []
    for index in sorted(plan.first_seq):
        when = first_sent_by_seq.get(plan.first_seq[index])
        if plan.pcaps[index].endswith("-play.pcap"):
            play_times.append(when)
        else:
            dtmf_times.append(when)

    audio, start = lay_out_audio(received, ULAW)
    trace = _parse_trace(messages)
    return CallResult(
        call_id=trace.call_id or call_id,
        sipp_returncode=returncode,
        sipp_log=sipp_log,
        received_audio=audio,
        received_packets=received,
        received_start_time=start,
        sent_start_time=play_times,
        dtmf_sent_time=dtmf_times,
        sent_packets=sent,
        answered_time=trace.answered,
        hangup_time=trace.hangup_time,
        hangup_by=trace.hangup_by,
        sip_flow=trace.flow,
        rejected=trace.rejected,
    )


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def _strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)


_TRACE_HEADER = re.compile(
    r"^-+ (\d{4}-\d{2}-\d{2})\s+(\d{2}:\d{2}:\d{2})(?:[.:](\d+))?", re.MULTILINE
)


@dataclass
class _Trace:
    answered: float | None = None
    hangup_time: float | None = None
    hangup_by: str | None = None
    call_id: str | None = None
    # Final (>= 300) response to our INVITE, e.g. "404 Not Found".
    rejected: str | None = None
    flow: list[str] = field(default_factory=list)


def _parse_trace(messages: str) -> _Trace:
    """Timestamps, who hung up, and the message flow from sipp's -trace_msg file."""
    trace = _Trace()
    answered = hangup_time = None
    hangup_by = call_id = None
    headers = list(_TRACE_HEADER.finditer(messages))
    for i, match in enumerate(headers):
        end = headers[i + 1].start() if i + 1 < len(headers) else len(messages)
        lines = [ln.strip() for ln in messages[match.end() : end].splitlines() if ln.strip()]
        if not lines:
            continue
        frac = match.group(3) or "0"
        clock = time.strptime(f"{match.group(1)} {match.group(2)}", "%Y-%m-%d %H:%M:%S")
        stamp = time.mktime(clock) + int(frac) / (10 ** len(frac))
        received = "message received" in lines[0]  # "UDP message received [n] bytes :"
        start_line = lines[1] if len(lines) > 1 else ""
        headers_lower = [ln.lower() for ln in lines]
        if call_id is None:
            for ln, low in zip(lines, headers_lower, strict=True):
                if low.startswith("call-id:"):
                    call_id = ln.split(":", 1)[1].strip()
                    break
        arrow = "<-" if received else "->"
        trace.flow.append(f"{time.strftime('%H:%M:%S', clock)}.{frac[:3]} {arrow} {start_line}")
        cseq_invite = any(re.match(r"cseq:\s*\d+\s+invite", low) for low in headers_lower)
        if received and answered is None and start_line.startswith("SIP/2.0 200") and cseq_invite:
            answered = stamp
        if hangup_by is None and start_line.startswith("BYE "):
            hangup_by = "remote" if received else "caller"
            hangup_time = stamp
        if received and cseq_invite and re.match(r"SIP/2\.0 [3-6]\d\d", start_line):
            trace.rejected = trace.rejected or start_line[8:]
    trace.answered, trace.hangup_time = answered, hangup_time
    trace.hangup_by, trace.call_id = hangup_by, call_id
    return trace
