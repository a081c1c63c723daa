"""What the test caller does, step by step, and the sipp XML scenario that does it.

Pure: the steps are values and ``scenario_xml`` only builds text; writing the scenario and the
steps' RTP pcaps is the runner's job (``media`` builds the pcaps' packets).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

import numpy as np
from numpy.typing import NDArray

from ...media.codecs import ULAW
from ...media.dtmf import DEFAULT_EVENT_PAYLOAD_TYPE, DTMF_DIGITS

SAMPLE_RATE = ULAW.sample_rate
FRAME_SAMPLES = ULAW.samples_per_frame()  # 20 ms of PCMU per RTP packet
PT_PCMU = ULAW.payload_type
PT_TELEPHONE_EVENT = DEFAULT_EVENT_PAYLOAD_TYPE
# sipp keeps a played pcap's pause this much longer than its audio, so packets never overlap.
PLAY_SLACK_MS = 20

Pcm = NDArray[np.int16]


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


def validate_steps(steps: Sequence[Step]) -> None:
    """Raise unless every step is a known one and only the last one ends the call."""
    for i, step in enumerate(steps):
        if not isinstance(step, (Play, Pause, Dtmf, Hangup, WaitForBye)):
            raise TypeError(f"step {i}: unknown step {step!r}")
        if isinstance(step, (Hangup, WaitForBye)) and i != len(steps) - 1:
            raise ValueError(f"step {i}: {type(step).__name__} must be the last step")


def complete_steps(steps: Sequence[Step]) -> list[Step]:
    """The validated steps, with a Hangup appended when they do not end the call."""
    complete = list(steps)
    validate_steps(complete)
    if not complete or not isinstance(complete[-1], (Hangup, WaitForBye)):
        complete.append(Hangup())
    return complete


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


def scenario_xml(steps: Sequence[Step], pcaps: Mapping[int, str]) -> str:
    """The sipp scenario running ``steps``; ``pcaps`` names, per Play/Dtmf step index, the
    pcap (relative to the scenario's directory) that sipp plays for it."""
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
            pcap = escape(pcaps[index], {'"': "&quot;"})
            ms = round(step.duration_s * 1000) + PLAY_SLACK_MS
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
