"""Replay the caller's side of a capture into the bot: the real pipeline and dialog, no Asterisk.

The caller's packets go, with their original timing (or ``speed`` times faster) and any
``Impairments``, over UDP into a real ``RtpEndpoint`` of a real ``CallSession``, exactly as
Asterisk's externalMedia would send them. Keys (RFC 4733 telephone-events) become key presses
at the moment their first packet would arrive, as Asterisk turns them into ARI events.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..call import TranscriptLine
from ..call.recording import CALLER_MAC, make_private_directory, open_private_file
from ..capture.impair import Impairments, ImpairmentStats, impair
from ..capture.pcap import UdpDatagram, read_capture
from ..capture.timeline import lay_out_audio
from ..capture.wav import write_wav
from ..config import Config
from ..dialog.library import script_file, script_settings
from ..dialog.model import Script, StateSettings
from ..dialog.parser import load_script
from ..errors import CaptureError, VoicebotError
from ..media.codecs import ALAW, SLIN8, SLIN16, ULAW, Codec
from ..media.dtmf import DEFAULT_EVENT_PAYLOAD_TYPE, DtmfDetector
from ..media.endpoint import EndpointStats, PortAllocator, RtpEndpoint
from ..media.g711 import PcmArray
from ..media.peer import RtpPeer
from ..media.rtp import RtpPacket
from ..runtime import Runtime

# Payload types a capture's audio may use: PCMU and PCMA as any phone sends them, slin16 as
# Asterisk sends it on externalMedia and L16 as the bot answers it (our own recordings).
AUDIO_CODECS: dict[int, Codec] = {c.payload_type: c for c in (ULAW, ALAW, SLIN16, SLIN8)}
# Other captures are searched for the usual telephone audio only.
PHONE_AUDIO_PAYLOAD_TYPES = frozenset({ULAW.payload_type, ALAW.payload_type})
# telephone-event always has a dynamic payload type (RFC 4733): a static one would take the
# audio's place. Three digits at most: a capture's SDP is the sender's text, not a number
# Python should be asked to convert whole (thousands of digits raise).
DYNAMIC_PAYLOAD_TYPES = range(96, 128)
_SDP_TELEPHONE_EVENT = re.compile(rb"a=rtpmap:(\d{1,3}) telephone-event/", re.IGNORECASE)
# The capture is over and the bot listens: after this long with nothing happening, it is done.
DEFAULT_TAIL_S = 1.0
# However the capture ends, the replay ends this long after its last packet.
MAX_OVERRUN_S = 120.0
REPLAY_PORTS = (45000, 45999)

Address = tuple[str, int]
_Flow = tuple[Address, Address]


def _parse(datagram: UdpDatagram) -> RtpPacket | None:
    try:
        return RtpPacket.parse(datagram.payload)
    except ValueError:
        return None


def _where(address: Address) -> str:
    return f"{address[0]}:{address[1]}"


@dataclass(frozen=True)
class CallerStream:
    """The caller's side of a capture: every datagram of its flow, malformed ones included."""

    datagrams: list[UdpDatagram]
    codec: Codec
    event_payload_type: int
    source: Address
    chosen_by: str
    # When the call's media began (either direction): the bot greets at once, and the caller's
    # first words came this long after that.
    start_time: float

    @property
    def duration_s(self) -> float:
        return self.datagrams[-1].time - self.start_time if self.datagrams else 0.0


def _flows_summary(parsed: Sequence[tuple[UdpDatagram, RtpPacket | None]]) -> str:
    counts: Counter[tuple[int, Address, int]] = Counter(
        (p.ssrc, d.src, p.payload_type) for d, p in parsed if p is not None
    )
    if not counts:
        return "no RTP at all"
    top = counts.most_common(6)
    return ", ".join(
        f"SSRC 0x{ssrc:08x} from {_where(src)} PT {pt} ({n} packets)" for (ssrc, src, pt), n in top
    )


def find_caller_stream(
    datagrams: Sequence[UdpDatagram],
    *,
    ssrc: int | None = None,
    source: Address | None = None,
    event_payload_type: int | None = None,
    name: str = "capture",
) -> CallerStream:
    """Pick the caller's RTP flow: ``ssrc`` or ``source`` when given, else the caller's side
    of our own recordings, else the flow with the most PCMU/PCMA packets. Raises
    ``CaptureError`` naming what the capture holds when nothing fits."""
    parsed = [(d, _parse(d)) for d in sorted(datagrams, key=lambda d: d.time)]
    flows: dict[_Flow, list[tuple[UdpDatagram, RtpPacket | None]]] = {}
    for d, p in parsed:
        flows.setdefault((d.src, d.dst), []).append((d, p))

    def best(candidates: Mapping[_Flow, int]) -> _Flow | None:
        scored = [(n, flow) for flow, n in candidates.items() if n]
        return max(scored)[1] if scored else None

    if ssrc is not None:
        flow = best(
            {f: sum(p is not None and p.ssrc == ssrc for _, p in ps) for f, ps in flows.items()}
        )
        chosen_by = f"--ssrc 0x{ssrc:08x}"
        if flow is None:
            raise CaptureError(
                f"{name}: no RTP packet with SSRC 0x{ssrc:08x} (seen: {_flows_summary(parsed)})"
            )
        stream = flows[flow]
    elif source is not None:
        flow = best({f: len(ps) for f, ps in flows.items() if f[0] == source})
        chosen_by = f"--from {_where(source)}"
        if flow is None:
            raise CaptureError(
                f"{name}: no packets from {_where(source)} (seen: {_flows_summary(parsed)})"
            )
        stream = flows[flow]
    elif any(d.link_src == CALLER_MAC for d, _ in parsed):
        chosen_by = "the caller's side of a voicebot recording"
        # Keys recorded from ARI events have their own SSRC but the same addresses and mark.
        stream = [(d, p) for d, p in parsed if d.link_src == CALLER_MAC]
        flow = (stream[0][0].src, stream[0][0].dst)
    else:
        flow = best(
            {
                f: sum(p is not None and p.payload_type in PHONE_AUDIO_PAYLOAD_TYPES for _, p in ps)
                for f, ps in flows.items()
            }
        )
        if flow is None:
            raise CaptureError(
                f"{name}: no PCMU/PCMA RTP stream found; pick one with --ssrc or --from "
                f"(seen: {_flows_summary(parsed)})"
            )
        stream = flows[flow]
        chosen_by = f"the flow with the most PCMU/PCMA packets ({_where(flow[0])})"

    events = event_payload_type if event_payload_type is not None else _sdp_event_type(datagrams)
    answer = flows.get((flow[1], flow[0]), [])
    # A caller who only pressed keys sent no audio: the answer's format is the call's then.
    for side in (stream, answer):
        audio_types = Counter(
            p.payload_type for _, p in side if p is not None and p.payload_type != events
        )
        if audio_types:
            break
    audio_type = audio_types.most_common(1)[0][0] if audio_types else ULAW.payload_type
    codec = AUDIO_CODECS.get(audio_type)
    if codec is None:
        known = ", ".join(f"{c.name} {pt}" for pt, c in AUDIO_CODECS.items())
        raise CaptureError(
            f"{name}: the caller's audio is RTP payload type {audio_type}, which voicebot "
            f"cannot decode (known: {known})"
        )
    media = [d.time for d, p in [*stream, *answer] if p is not None]
    return CallerStream(
        datagrams=[d for d, _ in stream],
        codec=codec,
        event_payload_type=events,
        source=stream[0][0].src,
        chosen_by=chosen_by,
        start_time=min(media, default=stream[0][0].time),
    )


def _sdp_event_type(datagrams: Sequence[UdpDatagram]) -> int:
    """The telephone-event payload type the capture's own SDP announces, else 101."""
    for datagram in datagrams:
        match = _SDP_TELEPHONE_EVENT.search(datagram.payload)
        if match and int(match.group(1)) in DYNAMIC_PAYLOAD_TYPES:
            return int(match.group(1))
    return DEFAULT_EVENT_PAYLOAD_TYPE


def load_caller_stream(
    path: Path,
    *,
    ssrc: int | None = None,
    source: Address | None = None,
    event_payload_type: int | None = None,
) -> tuple[CallerStream, str | None]:
    """Read ``path`` (pcap or pcapng) and pick the caller's stream; also a warning when the
    file was cut short (a capture whose writer was killed replays up to the cut)."""
    datagrams, cut = read_capture(path)
    warning = f"{cut}; replaying the {len(datagrams)} datagrams before the cut" if cut else None
    stream = find_caller_stream(
        datagrams,
        ssrc=ssrc,
        source=source,
        event_payload_type=event_payload_type,
        name=str(path),
    )
    return stream, warning


@dataclass
class ReplayResult:
    """What the bot did with a replayed call."""

    end: str  # "bot-hangup" | "transfer" | "capture-ended" | "timeout" | "error: ..."
    final_state: str | None
    transcript: list[TranscriptLine]
    turns: list[dict[str, Any]]
    rtp: EndpointStats
    impairments: ImpairmentStats
    keys: list[str]
    bad_key_packets: int
    bot_audio: PcmArray
    bot_rate: int
    caller_audio: PcmArray
    caller_rate: int
    duration_s: float
    transfer: str | None = None
    chosen_by: str = ""
    warnings: list[str] = field(default_factory=list)

    @property
    def bot_lines(self) -> list[str]:
        return [line.text for line in self.transcript if line.who == "bot"]

    @property
    def caller_lines(self) -> list[str]:
        return [line.text for line in self.transcript if line.who == "caller"]

    @property
    def states(self) -> list[str]:
        """The dialog's path: the states the bot spoke in, in order, and the last one."""
        path: list[str] = []
        for state in [line.state for line in self.transcript if line.who == "bot"]:
            if state is not None and (not path or path[-1] != state):
                path.append(state)
        if self.final_state is not None and (not path or path[-1] != self.final_state):
            path.append(self.final_state)
        return path

    def summary(self) -> dict[str, Any]:
        totals = sorted(t["total_ms"] for t in self.turns if t.get("total_ms") is not None)
        return {
            "end": self.end,
            "transfer": self.transfer,
            "final_state": self.final_state,
            "states": self.states,
            "chosen_by": self.chosen_by,
            "keys": self.keys,
            "bad_key_packets": self.bad_key_packets,
            "duration_s": round(self.duration_s, 3),
            "turns": self.turns,
            "latency_ms_median": float(np.median(totals)) if totals else None,
            "latency_ms_max": totals[-1] if totals else None,
            "rtp": vars(self.rtp),
            "impairments": vars(self.impairments),
            "warnings": self.warnings,
        }

    def write(self, directory: Path) -> dict[str, Path]:
        """bot.wav, caller.wav (what the bot received), transcript.jsonl, summary.json: the
        caller's voice and words, so private as recordings are (0600 files; a new directory
        0700), and a link planted at one of the names is replaced, never followed."""
        make_private_directory(directory)
        paths = {
            "bot": directory / "bot.wav",
            "caller": directory / "caller.wav",
            "transcript": directory / "transcript.jsonl",
            "summary": directory / "summary.json",
        }
        with os.fdopen(open_private_file(paths["bot"]), "wb") as file:
            write_wav(file, self.bot_audio, self.bot_rate)
        with os.fdopen(open_private_file(paths["caller"]), "wb") as file:
            write_wav(file, self.caller_audio, self.caller_rate)
        lines = [json.dumps(line.as_dict(), ensure_ascii=False) for line in self.transcript]
        texts = {
            "transcript": "".join(f"{line}\n" for line in lines),
            "summary": json.dumps(self.summary(), indent=2) + "\n",
        }
        for name, text in texts.items():
            with os.fdopen(open_private_file(paths[name]), "w", encoding="utf-8",
                           errors="backslashreplace") as file:  # fmt: skip
                file.write(text)
        return paths


async def replay_call(
    stream: CallerStream,
    script: Script,
    runtime: Runtime,
    *,
    impairments: Impairments | None = None,
    speed: float = 1.0,
    variables: Mapping[str, str] | None = None,
    tail_s: float = DEFAULT_TAIL_S,
    ports: tuple[int, int] = REPLAY_PORTS,
) -> ReplayResult:
    """Run ``script`` on the real pipeline with the caller's side of a capture as input.

    Ends when the dialog ends (hangup, transfer), or once the capture is over and the bot
    has listened for ``tail_s`` with nothing to do.
    """
    if speed <= 0:
        raise CaptureError(f"--speed: {speed:g} must be more than 0")
    if not stream.datagrams:
        raise CaptureError("the caller's stream is empty")
    impairments = impairments or Impairments()
    datagrams, impairment_stats = impair(stream.datagrams, impairments)
    host = "127.0.0.1"
    allocator = PortAllocator(host, *ports)
    endpoint = await RtpEndpoint.open(
        allocator,
        host,
        event_payload_types={stream.event_payload_type},
        audio_payload_type=stream.codec.payload_type,
    )
    peer = await RtpPeer.open(host)
    endpoint.set_remote(*peer.address)
    peer.bot = (host, endpoint.local_port)
    session = runtime.new_session(
        call_id="replay",
        endpoint=endpoint,
        codec=stream.codec,
        script=script,
        variables={"caller_id": "", "called": "", **(variables or {})},
    )
    detector = DtmfDetector()
    keys: list[str] = []
    bad_keys = 0
    sent_audio: list[tuple[float, RtpPacket]] = []
    started = time.monotonic()

    async def send_capture() -> None:
        nonlocal bad_keys
        assert peer.transport is not None and peer.bot is not None
        first = stream.start_time
        for datagram in datagrams:
            due = started + (datagram.time - first) / speed
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            packet = _parse(datagram)
            if packet is not None and packet.payload_type == stream.event_payload_type:
                # Asterisk turns telephone-events into ARI key events; none reach externalMedia.
                try:
                    digit = detector.push(packet)
                except ValueError:
                    bad_keys += 1
                    continue
                if digit is not None:
                    keys.append(digit)
                    session.key_pressed(digit)
                continue
            if packet is not None:
                sent_audio.append((time.monotonic(), packet))
            peer.transport.sendto(datagram.payload, peer.bot)

    conversation = asyncio.create_task(session.run(), name="replay-call")
    sender = asyncio.create_task(send_capture(), name="replay-sender")
    end = "capture-ended"
    transfer: str | None = None
    try:
        await asyncio.wait({conversation, sender}, return_when=asyncio.FIRST_COMPLETED)
        if sender.done() and not conversation.done():
            sender.result()
            deadline = time.monotonic() + MAX_OVERRUN_S
            idle_since: float | None = None
            while not conversation.done():
                now = time.monotonic()
                if now > deadline:
                    end = "timeout"
                    break
                if session.awaiting_caller():
                    idle_since = idle_since or now
                    if now - idle_since >= tail_s:
                        break
                else:
                    idle_since = None
                await asyncio.wait({conversation}, timeout=0.05)
        if conversation.done():
            try:
                call_end = conversation.result()
            except VoicebotError as exc:
                end = f"error: {exc}"
            else:
                end = call_end.reason
                if call_end.transfer is not None:
                    t = call_end.transfer
                    transfer = t.target
    finally:
        for task in (sender, conversation):
            task.cancel()
        await asyncio.gather(sender, conversation, return_exceptions=True)
        await endpoint.aclose()
        peer.close()
    received = [(a.at, a.packet) for a in peer.received]
    bot_audio, _ = lay_out_audio(received, session.reply_codec)
    caller_audio, _ = lay_out_audio(sent_audio, stream.codec)
    state = session.engine.state
    return ReplayResult(
        end=end,
        final_state=state.current if state is not None else None,
        transcript=list(session.transcript),
        turns=[turn.as_dict() for turn in session.stats.turns],
        rtp=endpoint.stats,
        impairments=impairment_stats,
        keys=keys,
        bad_key_packets=bad_keys,
        bot_audio=bot_audio,
        bot_rate=session.reply_codec.sample_rate,
        caller_audio=caller_audio,
        caller_rate=stream.codec.sample_rate,
        duration_s=time.monotonic() - started,
        transfer=transfer,
        chosen_by=stream.chosen_by,
    )


def resolve_script(
    name_or_path: str, scripts_dir: Path, base: StateSettings | None = None
) -> Script:
    """A script by file path, or by name from ``scripts_dir``; ``base`` as for ``load_script``."""
    return load_script(script_file(name_or_path, scripts_dir), base)


async def replay_command(
    config: Config,
    *,
    capture: Path,
    script: str,
    out: Path | None,
    impairments: Impairments,
    speed: float,
    ssrc: int | None,
    source: Address | None,
    event_payload_type: int | None,
    variables: Mapping[str, str],
    tail_s: float,
) -> int:
    """``voicebot replay``: replay, print what happened, write the outputs; 0 unless the call
    failed."""
    loaded = resolve_script(script, Path(config.dialog.scripts_dir), script_settings(config.dialog))
    stream, warning = load_caller_stream(
        capture, ssrc=ssrc, source=source, event_payload_type=event_payload_type
    )
    print(
        f"{capture}: caller stream = {stream.chosen_by}: {len(stream.datagrams)} packets, "
        f"{stream.codec.name}, {stream.duration_s:.1f} s; impairments: {impairments.describe()}"
    )
    if warning:
        print(f"warning: {warning}")
    # As `voicebot run` builds its calls: fixed prompts cached, the [webhooks] policy applied.
    async with await Runtime.open(config, {"replay": loaded}, "replay") as runtime:
        result = await replay_call(
            stream,
            loaded,
            runtime,
            impairments=impairments,
            speed=speed,
            variables=variables,
            tail_s=tail_s,
            ports=(config.media.port_min, config.media.port_max),
        )
    if warning:
        result.warnings.append(warning)
    for line in result.transcript:
        latency = ""
        if line.latency_ms is not None:
            latency = f"  [{line.latency_ms['total_ms']} ms]"
        where = f" ({line.state}{' → ' + line.intent if line.intent else ''})" if line.state else ""
        print(f"{line.t:7.2f}s {line.who:>6}: {line.text}{where}{latency}")
    summary = result.summary()
    rtp = result.rtp
    print(
        f"end: {result.end}{' to ' + result.transfer if result.transfer else ''}; "
        f"states: {' → '.join(result.states)}; keys: {''.join(result.keys) or '-'}"
    )
    print(
        f"latency (caller's voice end → first RTP): median {summary['latency_ms_median']} ms, "
        f"max {summary['latency_ms_max']} ms over {len(result.turns)} turns"
    )
    print(
        f"rtp: {rtp.received} received, {rtp.accepted} accepted, {rtp.lost} lost, "
        f"{rtp.late} late, {rtp.duplicates} duplicates, {rtp.malformed_dropped} malformed, "
        f"{rtp.wrong_payload_type_dropped} wrong payload type; bad key packets "
        f"{result.bad_key_packets}"
    )
    directory = out or Path(".state/replays") / capture.stem
    paths = result.write(directory)
    print(f"wrote {', '.join(str(p) for p in paths.values())}")
    return 1 if result.end.startswith("error") else 0
