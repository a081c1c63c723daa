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

Modules: ``scenario`` (the steps and the sipp XML), ``media`` (the audio sent: WAV in, RTP
pcaps out), ``runner`` (addresses, ports, processes), ``result`` (what came back) and
``trace`` (sipp's SIP message log).
"""

from .media import read_wav_8k
from .result import CallResult, ReceivedRtp, SipCallError
from .runner import place_call
from .scenario import Dtmf, Hangup, Pause, Play, Step, WaitForBye

__all__ = [
    "CallResult",
    "Dtmf",
    "Hangup",
    "Pause",
    "Play",
    "ReceivedRtp",
    "SipCallError",
    "Step",
    "WaitForBye",
    "place_call",
    "read_wav_8k",
]
