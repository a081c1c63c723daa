"""Reading a finished test call back: the capture's RTP both ways, the audio the caller
heard, when each step left, and sipp's logs."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from voicebot.capture.pcap import UdpDatagram, rtp_stream_from_pcm, write_pcap
from voicebot.media.codecs import ULAW
from voicebot.media.rtp import RtpPacket
from voicebot.tools.sip.media import MediaPlan, plan_media
from voicebot.tools.sip.result import (
    CallFiles,
    CallResult,
    ReceivedRtp,
    SipCallError,
    collect_result,
    split_capture,
    strip_ansi,
    tail,
)
from voicebot.tools.sip.scenario import Dtmf, Hangup, Pause, Play, Step

MEDIA = ("127.0.0.1", 24000)
REMOTE = ("127.0.0.1", 10042)
SILENCE = np.zeros(1600, dtype=np.int16)  # 10 frames
TONE = (8000 * np.sin(np.arange(1600) * 2 * np.pi * 440 / 8000)).astype(np.int16)
BOT_STARTS = 100.5
TRACE = (
    "----------------------------------------------- 2024-05-01\t12:00:00.100000\n"
    "UDP message sent (512 bytes):\n\nINVITE sip:100@127.0.0.1:5060 SIP/2.0\n"
    "Call-ID: voicebot-traced-1@127.0.0.1\nCSeq: 1 INVITE\n\n"
    "----------------------------------------------- 2024-05-01\t12:00:00.400000\n"
    "UDP message received [300] bytes :\n\nSIP/2.0 200 OK\nCSeq: 1 INVITE\n\n"
    "----------------------------------------------- 2024-05-01\t12:00:03.000000\n"
    "UDP message sent (300 bytes):\n\nBYE sip:100@127.0.0.1:5060 SIP/2.0\nCSeq: 2 BYE\n\n"
)


def restamped(datagrams: list[UdpDatagram], start: float) -> list[UdpDatagram]:
    """The packets of a step's pcap as sipp sends them: the same offsets from ``start``."""
    base = datagrams[0].time
    return [UdpDatagram(start + d.time - base, d.src, d.dst, d.payload) for d in datagrams]


def call_plan() -> MediaPlan:
    steps: list[Step] = [Play(TONE), Pause(0.5), Dtmf("1"), Play(TONE), Hangup()]
    return plan_media(steps, *MEDIA, REMOTE[0], rng=random.Random(5))


def bot_audio() -> list[UdpDatagram]:
    return rtp_stream_from_pcm(
        np.concatenate([SILENCE, TONE]),
        codec=ULAW,
        src=REMOTE,
        dst=MEDIA,
        ssrc=99,
        start_time=BOT_STARTS,
    )


def capture(plan: MediaPlan) -> list[UdpDatagram]:
    """A capture on "any": the bot's audio, each packet seen twice, RTCP, noise on the port,
    unrelated traffic, and the caller's first Play and its Dtmf (the call ended before the
    second Play)."""
    received = bot_audio()
    rtcp = bytes.fromhex("80c80006") + bytes(24)
    sent = restamped(plan.datagrams[0], 100.0) + restamped(plan.datagrams[2], 101.0)
    others = [
        UdpDatagram(100.55, REMOTE, MEDIA, rtcp),
        UdpDatagram(100.56, REMOTE, MEDIA, b"\x00\x01"),
        UdpDatagram(100.57, ("127.0.0.1", 5000), ("127.0.0.1", 6000), received[0].payload),
    ]
    everything = received + received[:5] + sent + others
    return sorted(everything, key=lambda d: -d.time)  # the reader must sort


def write_call(tmp_path: Path, plan: MediaPlan) -> CallFiles:
    files = CallFiles.in_directory(tmp_path)
    write_pcap(files.capture, capture(plan))
    files.messages.write_text(TRACE, encoding="utf-8")
    files.errors.write_text("".join(f"error {n}\n" for n in range(50)), encoding="utf-8")
    files.stdout.write_text("\x1b[2J\x1b[1;1HCall rate 1 cps\n", encoding="utf-8")
    return files


def test_split_capture_keeps_each_rtp_packet_once_by_direction(tmp_path: Path) -> None:
    plan = call_plan()
    write_pcap(tmp_path / "c.pcap", capture(plan))
    received, sent = split_capture(tmp_path / "c.pcap", MEDIA[1])
    bot = [RtpPacket.parse(d.payload) for d in bot_audio()]
    assert [r.packet for r in received] == bot
    assert [r.arrival_time for r in received] == pytest.approx(
        [BOT_STARTS + n * 0.02 for n in range(20)]
    )
    assert len(sent) == len(plan.datagrams[0]) + len(plan.datagrams[2])
    assert {s.packet.ssrc for s in sent} == {plan.ssrc}
    assert [s.arrival_time for s in sent] == sorted(s.arrival_time for s in sent)


def test_collect_result(tmp_path: Path) -> None:
    plan = call_plan()
    result = collect_result("voicebot-given-1@x", 0, plan, MEDIA[1], write_call(tmp_path, plan))
    assert result.call_id == "voicebot-traced-1@127.0.0.1"  # sipp's own, from its trace
    assert result.sipp_returncode == 0
    assert result.received_start_time == pytest.approx(BOT_STARTS)
    assert result.received_duration_s == pytest.approx(0.4)
    assert np.array_equal(
        result.received_audio, ULAW.decode(ULAW.encode(np.concatenate([SILENCE, TONE])))
    )
    assert result.sent_start_time == [pytest.approx(100.0), None]
    assert result.dtmf_sent_time == [pytest.approx(101.0)]
    assert result.answered_time is not None and result.hangup_by == "caller"
    assert result.sip_flow[0] == "12:00:00.100 -> INVITE sip:100@127.0.0.1:5060 SIP/2.0"
    assert result.rejected is None and result.workdir is None

    log = result.sipp_log
    assert log.startswith(TRACE)
    errors = log.split("--- sipp errors ---\n")[1].split("\n--- sipp output ---")[0]
    assert errors.splitlines() == [f"error {n}" for n in range(10, 50)]  # the last 40 lines
    assert log.endswith("--- sipp output ---\nCall rate 1 cps")


def test_when_the_bot_started_talking(tmp_path: Path) -> None:
    plan = call_plan()
    result = collect_result("id", 0, plan, MEDIA[1], write_call(tmp_path, plan))
    voiced_from = BOT_STARTS + 10 * 0.02  # after the ten silent frames
    assert result.first_voiced_after(0) == pytest.approx(voiced_from)
    assert result.first_voiced_after(voiced_from + 0.03) == pytest.approx(voiced_from + 0.04)
    assert result.first_voiced_after(BOT_STARTS + 1) is None
    assert result.time_of_sample(800) == pytest.approx(BOT_STARTS + 0.1)


def test_telephone_events_are_not_voice() -> None:
    event = RtpPacket(101, 1, 0, 7, b"\x01\x80\x03\x20" * 40)
    tone = RtpPacket(0, 2, 160, 7, ULAW.encode(TONE[:160]))
    result = CallResult(
        call_id="x",
        sipp_returncode=0,
        sipp_log="",
        received_audio=np.zeros(0, dtype=np.int16),
        received_packets=[ReceivedRtp(1.0, event), ReceivedRtp(2.0, tone)],
        received_start_time=None,
        sent_start_time=[],
        dtmf_sent_time=[],
    )
    assert result.first_voiced_after(0) == 2.0
    assert result.time_of_sample(10) is None


def test_nothing_captured(tmp_path: Path) -> None:
    files = CallFiles.in_directory(tmp_path)
    result = collect_result("voicebot-given-1@x", 255, call_plan(), MEDIA[1], files)
    assert result.call_id == "voicebot-given-1@x"
    assert result.received_audio.size == 0 and result.received_start_time is None
    assert result.received_packets == [] and result.sent_packets == []
    assert result.sent_start_time == [None, None] and result.dtmf_sent_time == [None]
    assert result.sipp_log == "" and result.sip_flow == [] and result.hangup_by is None


def test_a_capture_cut_short_gives_what_came_before(tmp_path: Path) -> None:
    files = CallFiles.in_directory(tmp_path)
    write_pcap(files.capture, bot_audio())
    files.capture.write_bytes(files.capture.read_bytes()[:-5])
    result = collect_result("id", 0, MediaPlan(), MEDIA[1], files)
    assert len(result.received_packets) == 19


def test_an_unreadable_capture_fails_the_call(tmp_path: Path) -> None:
    files = CallFiles.in_directory(tmp_path)
    files.capture.write_bytes(b"GIF89a" + bytes(30))
    with pytest.raises(SipCallError, match=r"cannot read the capture: .*bad magic") as error:
        collect_result("id", 0, MediaPlan(), MEDIA[1], files)
    assert error.value.result is None


def test_call_files_and_stale_ones(tmp_path: Path) -> None:
    files = CallFiles.in_directory(tmp_path)
    assert [p.name for p in (files.scenario, files.capture, files.messages)] == [
        "scenario.xml",
        "capture.pcap",
        "sipp-messages.log",
    ]
    assert (files.errors.name, files.stdout.name) == ("sipp-errors.log", "sipp-stdout.log")
    for path in (files.scenario, files.capture, files.messages, files.errors):
        path.write_text("old")
    files.remove_stale()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scenario.xml"]


def test_text_helpers() -> None:
    assert tail("a\nb\nc\n", 2) == "b\nc"
    assert tail("", 3) == ""
    assert strip_ansi("\x1b[?25l\x1b[1;32mgreen\x1b[0m text") == "green text"


def test_received_rtp_reads_like_its_packet() -> None:
    packet = RtpPacket(0, 17, 3200, 9, b"\xff" * 160, marker=True)
    received = ReceivedRtp(12.5, packet)
    assert (received.seq, received.ts, received.marker, received.payload) == (
        17,
        3200,
        True,
        b"\xff" * 160,
    )
    arrival, same = received
    assert (arrival, same) == (12.5, packet)
