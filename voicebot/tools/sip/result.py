"""What a test call left behind, read back: the audio the caller heard (decoded from the
capture), when each step left the caller, and sipp's account of the SIP dialogue."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from ...capture.pcap import read_pcap
from ...capture.timeline import lay_out_audio
from ...errors import VoicebotError
from ...media.codecs import ULAW
from ...media.levels import is_voiced
from ...media.rtp import RtpPacket
from .media import MediaPlan
from .scenario import PT_PCMU, SAMPLE_RATE, Pcm
from .trace import parse_trace

# RTCP packet types 200-204 read as RTP payload types 72-76 (the marker bit is set).
RTCP_AS_RTP_PAYLOAD_TYPES = range(72, 77)
LOG_TAIL_LINES = 40


class SipCallError(VoicebotError):
    """The test call failed (sipp error, timeout, capture failure). ``result`` may hold what
    was recorded before the failure (``None`` if nothing ran)."""

    def __init__(self, message: str, result: CallResult | None = None) -> None:
        super().__init__(message)
        self.result = result


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


@dataclass(frozen=True)
class CallFiles:
    """The files one call keeps in its work directory, for the result and for post-mortems."""

    scenario: Path
    capture: Path
    messages: Path
    errors: Path
    stdout: Path

    @classmethod
    def in_directory(cls, workdir: Path) -> CallFiles:
        return cls(
            scenario=workdir / "scenario.xml",
            capture=workdir / "capture.pcap",
            messages=workdir / "sipp-messages.log",
            errors=workdir / "sipp-errors.log",
            stdout=workdir / "sipp-stdout.log",
        )

    def remove_stale(self) -> None:
        """Delete what an earlier call in the same directory left, so it is not read back."""
        for stale in (self.capture, self.messages, self.errors, self.stdout):
            stale.unlink(missing_ok=True)


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)


def tail(text: str, lines: int) -> str:
    return "\n".join(text.splitlines()[-lines:])


def split_capture(capture: Path, media_port: int) -> tuple[list[ReceivedRtp], list[ReceivedRtp]]:
    """The RTP packets received at and sent from ``media_port``, each by time of capture."""
    received: list[ReceivedRtp] = []
    sent: list[ReceivedRtp] = []
    if capture.exists():
        try:
            # A capture cut short (dumpcap killed mid-write) still gives what came before.
            datagrams = read_pcap(capture, truncated_ok=True)
        except ValueError as exc:
            raise SipCallError(f"cannot read the capture: {exc}") from None
        seen: set[tuple[int, int, int, int]] = set()
        for datagram in datagrams:
            sport, dport = datagram.src[1], datagram.dst[1]
            try:
                pkt = RtpPacket.parse(datagram.payload)
            except ValueError:
                continue  # RTCP or garbage
            if pkt.payload_type in RTCP_AS_RTP_PAYLOAD_TYPES:
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
    return received, sent


def step_send_times(
    plan: MediaPlan, sent: list[ReceivedRtp]
) -> tuple[list[float | None], list[float | None]]:
    """When each Play step and each Dtmf step, in order, put its first packet on the wire."""
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
    return play_times, dtmf_times


def collect_result(
    call_id: str, returncode: int, plan: MediaPlan, media_port: int, files: CallFiles
) -> CallResult:
    """Read the capture and sipp's logs of a finished call."""
    messages = read_text(files.messages)
    log_parts = [messages]
    errors = read_text(files.errors)
    if errors.strip():
        log_parts.append("--- sipp errors ---\n" + tail(errors, LOG_TAIL_LINES))
    stdout = read_text(files.stdout)
    if stdout.strip():
        log_parts.append("--- sipp output ---\n" + tail(strip_ansi(stdout), LOG_TAIL_LINES))
    sipp_log = "\n".join(log_parts)

    received, sent = split_capture(files.capture, media_port)
    play_times, dtmf_times = step_send_times(plan, sent)
    audio, start = lay_out_audio(received, ULAW)
    trace = parse_trace(messages)
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
