"""Call recording through the controller: the fake ARI, a real UDP caller, files on disk."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from tests.support.controller import Harness, allison, harness
from tests.support.doubles import ToneTts
from tests.support.replaying import keys_in
from voicebot.call.recording import BOT_MAC, CALLER_MAC
from voicebot.capture.pcap import read_pcap
from voicebot.config import RecordConfig
from voicebot.media.dtmf import DEFAULT_EVENT_PAYLOAD_TYPE
from voicebot.media.peer import RtpPeer
from voicebot.media.rtp import RtpPacket

# Short prompts keep each call quick: the demo greeting lasts about a quarter of a second.
FAST_TTS_S_PER_CHAR = 0.002
SCRIPTS = {
    "plain": "start: hi\nstates:\n  hi:\n    say: Hi.\n    hangup: true\n",
    "quiet": "record: false\nstart: hi\nstates:\n  hi:\n    say: Hi.\n    hangup: true\n",
    "loud": "record: true\nstart: hi\nstates:\n  hi:\n    say: Hi.\n    hangup: true\n",
    "keys": (
        "start: menu\nstates:\n  menu:\n    say: Press five.\n"
        "    expect:\n      five: {dtmf: '5', goto: bye}\n"
        "  bye:\n    say: Bye.\n    hangup: true\n"
    ),
}


def write_scripts(directory: Path) -> Path:
    directory.mkdir()
    for name, text in SCRIPTS.items():
        (directory / f"{name}.yaml").write_text(text)
    return directory


def recording(directory: Path) -> tuple[Path, Path]:
    """The one recording (pcap, transcript) in ``directory``."""
    files = sorted(directory.iterdir())
    assert [p.suffix for p in files] == [".jsonl", ".pcap"], files
    transcript, pcap = files
    assert transcript.stem == pcap.stem
    return pcap, transcript


def names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(row) for row in path.read_text(encoding="utf-8").splitlines()]


async def ask_for_hours(h: Harness, peer: RtpPeer) -> int:
    """After the greeting the caller says "hours" until the bot answers; the number of
    packets the greeting took."""
    await peer.wait_quiet()
    greeting = len(peer.received)
    await peer.send_speech(allison("hours"))
    await h.wait_until(lambda: "Monday" in " ".join(h.tts.spoken))
    return greeting


def summary_of(h: Harness, caller: str) -> dict[str, Any]:
    return next(c for c in h.controller.recent if c["call_id"] == caller)


async def ended(h: Harness, caller: str) -> dict[str, Any]:
    await h.wait_until(lambda: any(c["call_id"] == caller for c in h.controller.recent))
    return summary_of(h, caller)


async def test_calls_are_not_recorded_by_default(tmp_path: Path) -> None:
    directory = tmp_path / "recordings"
    tts = ToneTts(FAST_TTS_S_PER_CHAR)
    async with harness(["hours"], tts=tts, record=RecordConfig(dir=str(directory))) as h:
        async with h.call() as (caller, peer):
            await ask_for_hours(h, peer)
            await h.fake.caller_hangup(caller)
            summary = await ended(h, caller)
    assert summary["recording"] is None
    assert not directory.exists() or list(directory.iterdir()) == []


async def test_a_recorded_call_holds_both_sides_and_its_transcript(tmp_path: Path) -> None:
    directory = tmp_path / "recordings"
    config = RecordConfig(enabled=True, dir=str(directory))
    async with harness(["hours"], tts=ToneTts(FAST_TTS_S_PER_CHAR), record=config) as h:
        async with h.call() as (caller, peer):
            greeting = await ask_for_hours(h, peer)
            await peer.wait_quiet(since=greeting)
            await h.fake.caller_hangup(caller)
            summary = await ended(h, caller)

    assert summary["end_reason"] == "caller hangup"
    pcap, transcript = recording(directory)
    assert summary["recording"] == str(pcap)
    assert caller in pcap.stem

    datagrams = read_pcap(pcap)
    from_caller = [d for d in datagrams if d.link_src == CALLER_MAC]
    from_bot = [d for d in datagrams if d.link_src == BOT_MAC]
    assert len(from_caller) + len(from_bot) == len(datagrams)
    stats = summary["rtp"]
    assert stats["foreign_dropped"] == 0
    assert len(from_caller) == stats["received"] > 25  # all of "hours"
    assert len(from_bot) == stats["sent"] > greeting  # the greeting and the answer

    bot = ("127.0.0.1", summary["rtp_port"])
    assert {(d.src, d.dst) for d in from_caller} == {(peer.address, bot)}
    assert {(d.src, d.dst) for d in from_bot} == {(bot, peer.address)}
    assert {RtpPacket.parse(d.payload).ssrc for d in from_caller} == {peer.ssrc}
    sent_by_bot = [RtpPacket.parse(d.payload) for d in from_bot]
    assert [p.payload for p in sent_by_bot[:greeting]] == [
        a.packet.payload for a in peer.received[:greeting]
    ]

    lines = jsonl(transcript)
    assert lines == summary["transcript"]
    assert [(line["who"], line["text"]) for line in lines][1] == ("caller", "hours")
    answer = lines[-1]
    assert answer["who"] == "bot" and "Monday" in answer["text"]
    assert answer["latency_ms"]["turn"] == 1  # the answer is written with where its time went


async def test_a_key_during_a_recorded_call_is_in_the_pcap_as_telephone_events(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "recordings"
    scripts = write_scripts(tmp_path / "scripts")
    async with harness(
        [],
        tts=ToneTts(FAST_TTS_S_PER_CHAR),
        record=RecordConfig(enabled=True, dir=str(directory)),
        scripts_dir=scripts,
        default="keys",
    ) as h:
        async with h.call() as (caller, peer):
            await peer.wait_quiet()
            greeting = len(peer.received)
            await h.fake.send_dtmf_event(caller, "5", duration_ms=160)
            summary = await ended(h, caller)

    assert summary["end_reason"] == "bot-hangup"  # the key led to "Bye." and the hangup
    pcap, _ = recording(directory)
    datagrams = read_pcap(pcap)
    events = [
        n
        for n, d in enumerate(datagrams)
        if RtpPacket.parse(d.payload).payload_type == DEFAULT_EVENT_PAYLOAD_TYPE
    ]
    assert events and all(datagrams[n].link_src == CALLER_MAC for n in events)
    # Written when the key arrived: after the whole greeting, before the goodbye.
    assert sum(1 for d in datagrams[: events[0]] if d.link_src == BOT_MAC) == greeting
    assert any(d.link_src == BOT_MAC for d in datagrams[events[-1] :])
    assert keys_in(datagrams) == ["5"]
    assert summary["rtp"]["dtmf"] == 0  # they never came in as RTP: the pcap has them anyway


async def test_with_record_keys_off_a_key_is_recorded_as_pressed_but_not_which(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "recordings"
    scripts = write_scripts(tmp_path / "scripts")
    async with harness(
        [],
        tts=ToneTts(FAST_TTS_S_PER_CHAR),
        record=RecordConfig(enabled=True, dir=str(directory), keys=False),
        scripts_dir=scripts,
        default="keys",
    ) as h:
        async with h.call() as (caller, peer):
            await peer.wait_quiet()
            await h.fake.send_dtmf_event(caller, "5", duration_ms=160)
            summary = await ended(h, caller)

    assert summary["end_reason"] == "bot-hangup"  # the key still did what it does
    pcap, transcript = recording(directory)
    datagrams = read_pcap(pcap)
    assert datagrams and keys_in(datagrams) == []
    assert all(
        RtpPacket.parse(d.payload).payload_type != DEFAULT_EVENT_PAYLOAD_TYPE for d in datagrams
    )
    lines = jsonl(transcript)
    assert lines == summary["transcript"]  # /calls shows what the file holds
    assert [(line["who"], line["text"]) for line in lines] == [
        ("bot", "Press five."), ("caller", "#"), ("bot", "Bye."),
    ]  # fmt: skip
    assert lines[1]["intent"] == "five"  # what the key meant is kept
    assert "#5" not in transcript.read_text(encoding="utf-8")


async def test_with_record_keys_off_calls_hides_keys_even_when_not_recording(
    tmp_path: Path,
) -> None:
    scripts = write_scripts(tmp_path / "scripts")
    config = RecordConfig(dir=str(tmp_path / "recordings"), keys=False)
    async with harness([], record=config, scripts_dir=scripts, default="keys") as h:
        async with h.call() as (caller, peer):
            await peer.wait_quiet()
            await h.fake.send_dtmf_event(caller, "5")
            summary = await ended(h, caller)
    assert summary["recording"] is None
    assert [line["text"] for line in summary["transcript"] if line["who"] == "caller"] == ["#"]


async def test_a_script_setting_overrides_the_configuration(tmp_path: Path) -> None:
    scripts = write_scripts(tmp_path / "scripts")

    enabled = tmp_path / "enabled"
    config = RecordConfig(enabled=True, dir=str(enabled))
    async with harness([], record=config, scripts_dir=scripts, default="plain") as h:
        quiet = await h.fake.add_caller(args=["quiet"])
        assert (await ended(h, quiet))["recording"] is None
        assert not enabled.exists() or list(enabled.iterdir()) == []
        plain = await h.fake.add_caller(args=["plain"])
        assert (await ended(h, plain))["recording"] is not None
    assert plain in recording(enabled)[0].stem

    disabled = tmp_path / "disabled"
    config = RecordConfig(enabled=False, dir=str(disabled))
    async with harness([], record=config, scripts_dir=scripts, default="plain") as h:
        plain = await h.fake.add_caller(args=["plain"])
        assert (await ended(h, plain))["recording"] is None
        assert not disabled.exists()
        loud = await h.fake.add_caller(args=["loud"])
        summary = await ended(h, loud)
    pcap, transcript = recording(disabled)
    assert summary["recording"] == str(pcap) and loud in pcap.stem
    assert len(read_pcap(pcap)) == summary["rtp"]["sent"] > 0
    assert [(line["who"], line["text"]) for line in jsonl(transcript)] == [("bot", "Hi.")]


async def test_shutdown_while_the_bot_speaks_leaves_complete_files(tmp_path: Path) -> None:
    directory = tmp_path / "recordings"
    config = RecordConfig(enabled=True, dir=str(directory))
    tts = ToneTts(seconds_per_char=0.05)  # the demo greeting lasts several seconds
    async with harness([], tts=tts, record=config) as h:
        async with h.call() as (caller, peer):
            await peer.wait_for_packets(10)  # mid-greeting
            await h.controller.close()
            summary = summary_of(h, caller)
            assert h.controller.calls == {}

    assert summary["end_reason"] == "bot shutting down"
    pcap, transcript = recording(directory)
    datagrams = read_pcap(pcap)  # strict: closed properly, nothing cut off
    from_bot = [d for d in datagrams if d.link_src == BOT_MAC]
    assert len(from_bot) == summary["rtp"]["sent"] >= 10
    text = transcript.read_text(encoding="utf-8")
    assert text.endswith("\n")
    last = json.loads(text.splitlines()[-1])
    assert last["who"] == "bot" and last["text"].startswith("Hello, this is the voicebot demo")


@pytest.mark.parametrize("where", ["file", "below a file"])
async def test_an_unwritable_record_dir_leaves_the_call_working_and_unrecorded(
    tmp_path: Path, where: str, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("in the way")
    directory = blocker if where == "file" else blocker / "recordings"
    config = RecordConfig(enabled=True, dir=str(directory))
    caplog.set_level(logging.ERROR, logger="voicebot.server.controller")
    async with harness(["hours"], tts=ToneTts(FAST_TTS_S_PER_CHAR), record=config) as h:
        async with h.call() as (caller, peer):
            greeting = await ask_for_hours(h, peer)
            await peer.wait_for_packets(greeting + 5)  # the answer reaches the caller
            await h.fake.caller_hangup(caller)
            summary = await ended(h, caller)

    assert summary["recording"] is None
    assert summary["end_reason"] == "caller hangup"
    assert [line["who"] for line in summary["transcript"]] == ["bot", "caller", "bot"]
    assert f"call {caller}: not recorded" in caplog.text
    assert blocker.read_text() == "in the way"
    assert names(tmp_path) == ["not-a-dir"]
