"""Replay mechanics with small engines: choosing the caller's stream, keys, bad packets,
network trouble, outputs, the command line. The real models replay real calls in
test_replay_fixtures.py."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.support.doubles import ListAsr, ToneTts
from voicebot.call import SpeechServices
from voicebot.call.recording import BOT_MAC, CALLER_MAC
from voicebot.capture.impair import Impairments
from voicebot.capture.pcap import UdpDatagram, rtp_stream_from_pcm, write_pcap
from voicebot.capture.wav import read_wav
from voicebot.cli import main
from voicebot.config import Config, VadConfig
from voicebot.dialog.parser import parse_script
from voicebot.errors import CaptureError
from voicebot.media.codecs import ALAW, SLIN8, SLIN16, ULAW
from voicebot.media.dtmf import dtmf_packets
from voicebot.media.rtp import RtpPacket
from voicebot.runtime import Runtime
from voicebot.tools.replay import (
    ReplayResult,
    find_caller_stream,
    load_caller_stream,
    replay_call,
)

ROOT = Path(__file__).resolve().parents[3]
HOURS, RATE = read_wav(ROOT / "tests" / "fixtures" / "audio" / "hours.wav")
PHONE = ("10.0.0.5", 4000)
PBX = ("10.0.0.1", 10000)
OTHER = ("10.0.0.9", 6000)
SCRIPT = parse_script(
    """
start: menu
defaults:
  no_input_timeout: 3s
  max_retries: 1
  on_no_input: {say: "Still there?"}
  on_no_match: {say: "Sorry?"}
  on_max_retries: {goto: bye}
states:
  menu:
    say: "Say hours or press 1."
    expect:
      hours: {phrases: [hours], dtmf: "1", goto: hours}
  hours:
    say: "Nine to five. Say goodbye."
    expect:
      bye: {phrases: [goodbye], dtmf: "9", goto: bye}
  bye:
    say: "Bye."
    hangup: true
""",
    "replay-test.yaml",
)
VAD = VadConfig()


def speech(
    at: float, *, ssrc: int = 0x1234, src: tuple[str, int] = PHONE, seq: int = 0
) -> list[UdpDatagram]:
    """The caller saying "hours" at ``at`` seconds, preceded and followed by silence."""
    pcm = np.concatenate([np.zeros(RATE // 2, np.int16), HOURS, np.zeros(RATE // 2, np.int16)])
    return rtp_stream_from_pcm(
        pcm, codec=ULAW, src=src, dst=PBX, ssrc=ssrc, start_time=at, first_sequence=seq,
        first_timestamp=seq * 160,
    )  # fmt: skip


def keys(
    digits: str, at: float, *, payload_type: int = 101, ssrc: int = 0x1234
) -> list[UdpDatagram]:
    out = []
    for n, digit in enumerate(digits):
        start = at + n * 0.3
        for offset, packet in dtmf_packets(
            digit, ssrc=ssrc, first_sequence=1000 + 10 * n, timestamp=80000 + 4000 * n,
            payload_type=payload_type,
        ):  # fmt: skip
            out.append(UdpDatagram(start + offset, PHONE, PBX, packet.serialize()))
    return out


def answer_start(at: float = 0.0) -> list[UdpDatagram]:
    """The far side's first packet: the call's media begins here."""
    packet = RtpPacket(0, 1, 1, 0x9999, ULAW.encode(np.zeros(160, np.int16)))
    return [UdpDatagram(at, PBX, PHONE, packet.serialize())]


def runtime() -> Runtime:
    services = SpeechServices(ListAsr(["hours", "goodbye"]), ToneTts(seconds_per_char=0.004))
    return Runtime(Config(vad=VAD), services)


async def run(datagrams: list[UdpDatagram], **kwargs: object) -> ReplayResult:
    """Replayed twice as fast: these engines answer at once, and nothing here is about timing."""
    stream = find_caller_stream(datagrams)
    options: dict[str, object] = {"speed": 2.0, "tail_s": 0.3, **kwargs}
    return await replay_call(stream, SCRIPT, runtime(), **options)  # type: ignore[arg-type]


# ---- choosing the caller's stream --------------------------------------------------------


def test_our_recordings_are_found_by_their_mark() -> None:
    caller = speech(1.0)
    for d in caller:
        d.link_src = CALLER_MAC
    bot = rtp_stream_from_pcm(
        np.zeros(8000 * 5, np.int16), codec=ULAW, src=PBX, dst=PHONE, ssrc=5, start_time=0.2
    )
    for d in bot:
        d.link_src = BOT_MAC  # more packets than the caller: not chosen for that
    stream = find_caller_stream([*bot, *caller])
    assert stream.chosen_by == "the caller's side of a voicebot recording"
    assert stream.datagrams == caller
    assert stream.start_time == 0.2  # the bot's greeting began the call
    assert stream.codec is ULAW


def test_other_captures_use_the_flow_with_most_phone_audio() -> None:
    # The answer in L16 has more packets, but only PCMU/PCMA count as a phone's audio.
    louder = rtp_stream_from_pcm(
        np.zeros(8000 * 5, np.int16), codec=SLIN8, src=PBX, dst=PHONE, ssrc=5
    )
    caller = speech(1.0)
    stream = find_caller_stream([*louder, *caller])
    assert stream.source == PHONE
    assert "most PCMU/PCMA packets (10.0.0.5:4000)" in stream.chosen_by


def test_ssrc_and_source_pick_a_stream_and_name_what_is_there() -> None:
    a, b = speech(0.0, ssrc=0xA), speech(0.0, ssrc=0xB, src=OTHER)
    assert find_caller_stream([*a, *b], ssrc=0xB).source == OTHER
    assert find_caller_stream([*a, *b], source=OTHER).datagrams == b
    with pytest.raises(CaptureError, match=r"no RTP packet with SSRC 0x0000000c \(seen: SSRC"):
        find_caller_stream([*a, *b], ssrc=0xC)
    with pytest.raises(CaptureError, match=r"no packets from 10.9.9.9:1 \(seen: .*10.0.0.5:4000"):
        find_caller_stream([*a, *b], source=("10.9.9.9", 1))


def test_captures_without_phone_audio_or_in_an_unknown_codec_are_refused() -> None:
    with pytest.raises(CaptureError, match="no PCMU/PCMA RTP stream found; pick one with --ssrc"):
        find_caller_stream([UdpDatagram(0, PHONE, PBX, b"INVITE sip:100@pbx SIP/2.0")])
    g722 = [UdpDatagram(0, PHONE, PBX, RtpPacket(9, 1, 1, 7, bytes(160)).serialize())]
    with pytest.raises(CaptureError, match="RTP payload type 9, which voicebot cannot decode"):
        find_caller_stream(g722, ssrc=7)
    # A caller who only pressed keys: the call's format is the one the bot answered in.
    keys_only = [*keys("1", 1.0), *answer_start()]
    keys_only[-1].payload = RtpPacket(11, 1, 1, 5, bytes(320)).serialize()  # L16 answer
    assert find_caller_stream(keys_only, source=PHONE).codec is SLIN8


def test_the_key_payload_type_comes_from_the_captures_sdp() -> None:
    sdp = b"INVITE ...\r\n\r\nv=0\r\nm=audio 4000 RTP/AVP 8 96\r\na=rtpmap:96 telephone-event/8000"
    alaw = rtp_stream_from_pcm(HOURS, codec=ALAW, src=PHONE, dst=PBX, ssrc=3)
    stream = find_caller_stream([UdpDatagram(0, PHONE, ("10.0.0.1", 5060), sdp), *alaw])
    assert stream.event_payload_type == 96 and stream.codec is ALAW
    assert find_caller_stream(alaw).event_payload_type == 101
    assert find_caller_stream(alaw, event_payload_type=100).event_payload_type == 100


def test_an_sdp_announcing_a_number_no_payload_type_can_be_is_not_believed() -> None:
    # A crafted capture: thousands of digits once ended the replay with Python's own ValueError
    # (int() refuses more than 4,300), and a static payload type would take the audio's place.
    alaw = rtp_stream_from_pcm(HOURS, codec=ALAW, src=PHONE, dst=PBX, ssrc=3)
    for number in ("9" * 5000, "8", "128", "1000"):
        sdp = f"m=audio 4000 RTP/AVP 8 {number}\r\na=rtpmap:{number} telephone-event/8000"
        crafted = UdpDatagram(0, PHONE, ("10.0.0.1", 5060), sdp.encode())
        stream = find_caller_stream([crafted, *alaw])
        assert stream.event_payload_type == 101 and stream.codec is ALAW, number[:10]


def test_truncated_and_broken_files(tmp_path: Path) -> None:
    path = tmp_path / "cut.pcap"
    write_pcap(path, speech(0.0))
    data = path.read_bytes()
    path.write_bytes(data[:-50])
    stream, warning = load_caller_stream(path)
    assert warning is not None and "truncated packet data" in warning
    assert len(stream.datagrams) == len(speech(0.0)) - 1
    (tmp_path / "junk.pcap").write_bytes(b"not a capture at all")
    with pytest.raises(CaptureError, match=r"junk\.pcap: not a pcap file: bad magic"):
        load_caller_stream(tmp_path / "junk.pcap")
    with pytest.raises(CaptureError, match=r"missing\.pcap: no such file"):
        load_caller_stream(tmp_path / "missing.pcap")
    with pytest.raises(CaptureError, match=rf"^{tmp_path}: cannot read: Is a directory$"):
        load_caller_stream(tmp_path)


# ---- replaying ---------------------------------------------------------------------------


async def test_speech_reaches_the_dialog_and_the_outputs_are_written(tmp_path: Path) -> None:
    result = await run([*answer_start(), *speech(0.5), *speech(2.4, seq=200)])
    assert result.end == "bot-hangup"
    assert result.states == ["menu", "hours", "bye"]
    assert result.bot_lines == ["Say hours or press 1.", "Nine to five. Say goodbye.", "Bye."]
    assert result.caller_lines == ["hours", "goodbye"]
    paths = result.write(tmp_path / "out")
    bot, rate = read_wav(paths["bot"])
    assert rate == 8000 and np.abs(bot).max() > 4000  # the tones the bot spoke
    lines = [json.loads(line) for line in paths["transcript"].read_text().splitlines()]
    assert [line["who"] for line in lines] == ["bot", "caller", "bot", "caller", "bot"]
    assert all(isinstance(line["t"], float) and line["text"] for line in lines)
    assert lines[2]["latency_ms"]["total_ms"] is not None  # the answer to a turn
    summary = json.loads(paths["summary"].read_text())
    assert summary["states"] == ["menu", "hours", "bye"] and summary["end"] == "bot-hangup"
    caller, _ = read_wav(paths["caller"])
    assert caller.size > 2 * HOURS.size


async def test_the_outputs_are_private_and_a_planted_link_is_not_followed(
    tmp_path: Path,
) -> None:
    result = await run([*answer_start(), *speech(0.5), *speech(2.4, seq=200)])
    out = tmp_path / "out"
    out.mkdir(mode=0o700)
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    (out / "caller.wav").symlink_to(target)
    paths = result.write(out)
    assert target.read_text() == "keep me"
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    for path in paths.values():
        assert not path.is_symlink() and stat.S_IMODE(path.stat().st_mode) == 0o600, path
    fresh = result.write(tmp_path / "new" / "replay")
    assert stat.S_IMODE(fresh["bot"].parent.stat().st_mode) == 0o700


async def test_keys_in_the_capture_are_pressed() -> None:
    stream = find_caller_stream(
        [*answer_start(), *speech(0.0)[:5], *keys("19", 0.5, payload_type=96)],
        event_payload_type=96,
    )
    result = await replay_call(stream, SCRIPT, runtime(), tail_s=0.3)
    assert result.keys == ["1", "9"]
    assert result.states == ["menu", "hours", "bye"]
    assert result.caller_lines == ["#1", "#9"]
    assert result.rtp.dtmf == 0  # keys reach the bot as key events, as from Asterisk's ARI


async def test_malformed_packets_are_dropped_counted_and_the_call_goes_on() -> None:
    caller = speech(0.5)
    valid = RtpPacket.parse(caller[3].payload)
    bad = [
        UdpDatagram(0.52, PHONE, PBX, b"\x80\x00\x01"),  # truncated header
        UdpDatagram(0.54, PHONE, PBX, b"\x40" + caller[4].payload[1:]),  # RTP version 1
        UdpDatagram(
            0.56,
            PHONE,
            PBX,
            RtpPacket(8, valid.sequence, valid.timestamp, valid.ssrc, valid.payload).serialize(),
        ),  # PCMA inside a PCMU call
    ]
    result = await run([*answer_start(), *caller, *bad, *speech(2.4, seq=200)])
    assert result.rtp.malformed_dropped == 2
    assert result.rtp.wrong_payload_type_dropped == 1
    assert result.states == ["menu", "hours", "bye"]


async def test_an_undecodable_wideband_payload_is_counted_not_fatal() -> None:
    pcm = np.concatenate([np.zeros(RATE, np.int16), HOURS, np.zeros(RATE, np.int16)])
    wide = rtp_stream_from_pcm(
        np.repeat(pcm, 2), codec=SLIN16, src=PHONE, dst=PBX, ssrc=4, payload_type=118
    )
    odd = RtpPacket.parse(wide[10].payload)
    wide[10].payload = RtpPacket(118, odd.sequence, odd.timestamp, 4, odd.payload[:-1]).serialize()
    stream = find_caller_stream([*answer_start(), *wide], ssrc=4)
    assert stream.codec is SLIN16
    result = await replay_call(stream, SCRIPT, runtime(), speed=2, tail_s=0.3)
    assert result.rtp.malformed_dropped == 1
    assert result.caller_lines == ["hours"]


@pytest.mark.parametrize(
    ("trouble", "seen"),
    [
        (Impairments(loss_pct=20, seed=1), lambda r: r.rtp.lost > 0),
        (Impairments(jitter_ms=60, seed=1), lambda r: r.impairments.delayed > 100),
        (Impairments(reorder_pct=20, seed=1), lambda r: r.impairments.reordered > 10),
        (Impairments(duplicate_pct=20, seed=1), lambda r: r.rtp.duplicates > 10),
        (Impairments(ssrc_change_at_s=1.2, seed=1), lambda r: r.impairments.ssrc_changed > 10),
        (Impairments(truncate_pct=10, seed=1), lambda r: r.rtp.malformed_dropped > 0),
    ],
    ids=["loss", "jitter", "reorder", "duplicate", "ssrc-change", "truncate"],
)
async def test_each_impairment_happens_and_the_call_survives(
    trouble: Impairments, seen: object
) -> None:
    result = await run([*answer_start(), *speech(0.5), *speech(2.4, seq=200)], impairments=trouble)
    assert callable(seen) and seen(result), vars(result.rtp)
    assert result.states == ["menu", "hours", "bye"]


async def test_keys_survive_losing_some_of_their_packets() -> None:
    # A phone repeats each key's packets (RFC 4733); losing some must not lose the key.
    datagrams = [*answer_start(), *speech(0.0)[:3], *keys("19", 0.5)]
    stream = find_caller_stream(datagrams)
    result = await replay_call(
        stream, SCRIPT, runtime(), tail_s=0.3,
        impairments=Impairments(loss_pct=40, seed=5),
    )  # fmt: skip
    assert result.impairments.lost > 0
    assert result.keys == ["1", "9"]


async def test_speed_and_a_silent_caller() -> None:
    silent = rtp_stream_from_pcm(
        np.zeros(RATE * 4, np.int16), codec=ULAW, src=PHONE, dst=PBX, ssrc=1
    )
    stream = find_caller_stream(silent)
    result = await replay_call(stream, SCRIPT, runtime(), speed=4, tail_s=0.3)
    assert result.duration_s < stream.duration_s  # 4 s of capture, played 4 times faster
    assert result.end == "capture-ended" and result.caller_lines == []
    with pytest.raises(CaptureError, match="--speed: 0 must be more than 0"):
        await replay_call(stream, SCRIPT, runtime(), speed=0)


def test_command_line_errors_name_the_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capture = tmp_path / "call.pcap"
    write_pcap(capture, speech(0.0))
    assert main(["replay", str(capture), "--script", "demo", "--loss", "150"]) == 2
    assert "voicebot replay: --loss: 150 is not a percentage (0-100)" in capsys.readouterr().err
    assert main(["replay", str(tmp_path / "nope.pcap"), "--script", "demo"]) == 1
    assert "nope.pcap: no such file" in capsys.readouterr().err
    assert main(["replay", str(capture), "--script", "no-such-script"]) == 2
    assert "no script named 'no-such-script' in prompts (have: bank" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["replay", str(capture), "--script", "demo", "--ssrc", "xyz"])
    assert "expected a hex SSRC" in capsys.readouterr().err


def test_a_capture_the_replay_cannot_use_ends_it_with_one_line_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    crafted = tmp_path / "crafted.pcap"
    sdp = "a=rtpmap:" + "9" * 5000 + " telephone-event/8000"
    g722 = RtpPacket(9, 1, 1, 7, bytes(160)).serialize()
    write_pcap(
        crafted,
        [UdpDatagram(0, PHONE, ("10.0.0.1", 5060), sdp.encode()), UdpDatagram(0, PHONE, PBX, g722)],
    )
    wrong_link = tmp_path / "wrong-link.pcap"
    data = bytearray(
        (ROOT / "tests" / "fixtures" / "captures" / "bank-keys-balance.pcap").read_bytes()
    )
    data[20:24] = (147).to_bytes(4, "little")  # a user-defined link type
    wrong_link.write_bytes(bytes(data))
    for capture, options, problem in [
        (crafted, ["--ssrc", "7"], "the caller's audio is RTP payload type 9"),
        (wrong_link, [], "unsupported pcap link type 147"),
        (tmp_path, [], "cannot read: Is a directory"),
    ]:
        assert main(["replay", str(capture), "--script", "demo", *options]) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"voicebot replay: {capture}: {problem}"), err
        assert err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.slow
def test_command_line_replays_and_writes_its_outputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = tmp_path / "hello.yaml"
    script.write_text('start: hi\nstates:\n  hi:\n    say: "Hello there."\n    hangup: true\n')
    capture = tmp_path / "call.pcap"
    write_pcap(capture, speech(0.0))
    out = tmp_path / "out"
    assert main(["replay", str(capture), "--script", str(script), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "bot: Hello there. (hi)" in printed and "end: bot-hangup; states: hi" in printed
    assert {p.name for p in out.iterdir()} == {
        "bot.wav", "caller.wav", "transcript.jsonl", "summary.json",
    }  # fmt: skip
    assert json.loads((out / "transcript.jsonl").read_text())["text"] == "Hello there."


def test_a_pcapng_made_by_wiresharks_editcap_gives_the_same_stream(tmp_path: Path) -> None:
    # Wireshark and tshark write pcapng by default; the replay must not care.
    recording = ROOT / "tests" / "fixtures" / "captures" / "demo-hours-goodbye.pcap"
    converted = tmp_path / "call.pcapng"
    subprocess.run(
        ["editcap", "-F", "pcapng", str(recording), str(converted)], check=True, timeout=60
    )
    assert converted.read_bytes()[:4] == b"\x0a\x0d\x0d\x0a"
    classic, _ = load_caller_stream(recording)
    ng, _ = load_caller_stream(converted)
    assert ng.chosen_by == classic.chosen_by == "the caller's side of a voicebot recording"
    assert [(d.time, d.payload) for d in ng.datagrams] == [
        (pytest.approx(d.time, abs=1e-6), d.payload) for d in classic.datagrams
    ]
    assert ng.start_time == pytest.approx(classic.start_time, abs=1e-6)
