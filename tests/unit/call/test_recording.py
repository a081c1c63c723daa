"""Call recording without a network: CallRecorder's pcap and JSONL, pruning, start, config."""

from __future__ import annotations

import errno
import io
import itertools
import json
import logging
import os
import re
import stat
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.replaying import keys_in
from voicebot.call import TranscriptLine, recording
from voicebot.call.recording import (
    BOT_MAC,
    CALLER_MAC,
    CallRecorder,
    prune_recordings,
    recording_stem,
)
from voicebot.capture.pcap import PcapWriter, UdpDatagram, read_pcap
from voicebot.config import RecordConfig, load_config
from voicebot.errors import ConfigError
from voicebot.media.dtmf import DEFAULT_EVENT_PAYLOAD_TYPE, dtmf_packets
from voicebot.media.rtp import RtpPacket

CALLER = ("10.0.0.1", 4000)  # Asterisk's side of the externalMedia stream
BOT = ("10.0.0.2", 40002)
DAY_S = 86400


def rtp(sequence: int, payload: bytes = b"\xff" * 160, payload_type: int = 0) -> bytes:
    return RtpPacket(payload_type, sequence, sequence * 160, 0x1234, payload).serialize()


def recorder(directory: Path, stem: str = "20260101T000000Z-call") -> CallRecorder:
    return CallRecorder(directory, stem, CALLER, BOT)


class Clock:
    """Stands in for the ``time`` module inside voicebot.call.recording."""

    def __init__(self) -> None:
        self.mono = 1000.0
        self.wall = 1_780_000_000.0
        self.module = types.SimpleNamespace(
            monotonic=lambda: self.mono,
            time=lambda: self.wall,
            strftime=time.strftime,
            gmtime=time.gmtime,
        )

    def advance(self, seconds: float) -> None:
        self.mono += seconds
        self.wall += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(recording, "time", fake.module)
    return fake


def make_recording(directory: Path, stem: str, mtime: float) -> None:
    for suffix in (".pcap", ".jsonl"):
        path = directory / f"{stem}{suffix}"
        path.write_text("x")
        os.utime(path, (mtime, mtime))


def stems(directory: Path) -> set[str]:
    return {p.stem for p in directory.iterdir() if p.suffix in (".pcap", ".jsonl")}


# -- CallRecorder ------------------------------------------------------------------------------


def test_both_directions_are_in_the_pcap_in_order_marked_by_link_source(tmp_path: Path) -> None:
    rec = recorder(tmp_path)
    sent = [("in", rtp(1)), ("out", rtp(7, b"\x7f" * 160)), ("in", rtp(2)), ("out", rtp(8))]
    for direction, data in sent:
        if direction == "in":
            rec.inbound(data, CALLER)
        else:
            rec.outbound(data, CALLER)
    rec.close()

    datagrams = read_pcap(rec.pcap_path)
    assert [d.payload for d in datagrams] == [data for _, data in sent]
    for datagram, (direction, _) in zip(datagrams, sent, strict=True):
        if direction == "in":
            assert (datagram.link_src, datagram.src, datagram.dst) == (CALLER_MAC, CALLER, BOT)
        else:
            assert (datagram.link_src, datagram.src, datagram.dst) == (BOT_MAC, BOT, CALLER)
    times = [d.time for d in datagrams]
    assert times == sorted(times) and abs(times[-1] - time.time()) < 60


def test_a_key_becomes_telephone_events_on_the_callers_side_detected_once(tmp_path: Path) -> None:
    rec = recorder(tmp_path)
    rec.inbound(rtp(1), CALLER)
    rec.key("7", 120)
    rec.inbound(rtp(2), CALLER)
    rec.close()

    datagrams = read_pcap(rec.pcap_path)
    events = [d for d in datagrams if RtpPacket.parse(d.payload).payload_type == 101]
    assert len(events) > 1  # progress updates and repeated end packets, as a phone sends
    assert all((d.link_src, d.src, d.dst) == (CALLER_MAC, CALLER, BOT) for d in events)
    assert datagrams[0].payload == rtp(1) and datagrams[-1].payload == rtp(2)
    assert keys_in(datagrams) == ["7"]


def test_keys_pressed_apart_are_separate_presses_with_consecutive_sequences(
    tmp_path: Path, clock: Clock
) -> None:
    rec = recorder(tmp_path)
    rec.key("1", 80)
    clock.advance(0.5)
    rec.key("1", 0)  # ARI may report no duration: still one (short) press
    clock.advance(0.5)
    rec.key("#", 100)
    rec.close()

    datagrams = read_pcap(rec.pcap_path)
    assert keys_in(datagrams) == ["1", "1", "#"]
    sequences = [RtpPacket.parse(d.payload).sequence for d in datagrams]
    assert all((b - a) % 65536 == 1 for a, b in itertools.pairwise(sequences))


def test_transcript_lines_round_trip_as_jsonl(tmp_path: Path) -> None:
    rec = recorder(tmp_path)
    lines: list[dict[str, Any]] = [
        {"who": "bot", "text": "Hello, how can I help?", "t": 0.0, "state": "main"},
        {"who": "caller", "text": "Öffnungszeiten, 네", "t": 2.5, "intent": "hours"},
        {"who": "bot", "text": "We are open.", "t": 3.1, "latency_ms": {"total": 480.5}},
    ]
    for line in lines:
        rec.transcript(TranscriptLine(**line))
    rec.close()
    text = rec.transcript_path.read_text(encoding="utf-8")
    assert text.endswith("\n") and "네" in text  # UTF-8, not \u escapes
    assert [json.loads(row) for row in text.splitlines()] == lines


def test_close_is_idempotent_and_later_writes_are_ignored(tmp_path: Path) -> None:
    rec = recorder(tmp_path)
    rec.inbound(rtp(1), CALLER)
    rec.transcript(TranscriptLine(who="bot", text="hi", t=0.0))
    assert not rec.closed
    rec.close()
    assert rec.closed
    sizes = (rec.pcap_path.stat().st_size, rec.transcript_path.stat().st_size)

    rec.close()
    rec.inbound(rtp(2), CALLER)
    rec.outbound(rtp(3), CALLER)
    rec.key("5", 100)
    rec.transcript(TranscriptLine(who="caller", text="late", t=9.0))
    rec.close()
    assert (rec.pcap_path.stat().st_size, rec.transcript_path.stat().st_size) == sizes
    assert [d.payload for d in read_pcap(rec.pcap_path)] == [rtp(1)]


def test_writes_reach_the_disk_once_the_flush_interval_has_passed(
    tmp_path: Path, clock: Clock
) -> None:
    rec = recorder(tmp_path)
    rec.transcript(TranscriptLine(who="bot", text="hi", t=0.0))
    rec.inbound(rtp(1), CALLER)
    # Buffered: nothing of it is on disk yet.
    assert read_pcap(rec.pcap_path, truncated_ok=True) == []
    assert rec.transcript_path.read_text() == ""

    clock.advance(recording.FLUSH_INTERVAL_S)
    rec.outbound(rtp(2), CALLER)
    # Both files flushed, while the call is still being recorded: a strict read succeeds.
    assert [d.payload for d in read_pcap(rec.pcap_path)] == [rtp(1), rtp(2)]
    assert json.loads(rec.transcript_path.read_text()) == {"who": "bot", "text": "hi", "t": 0.0}

    clock.advance(recording.FLUSH_INTERVAL_S / 2)
    rec.inbound(rtp(3), CALLER)
    assert len(read_pcap(rec.pcap_path)) == 2  # not yet: less than an interval since the last
    clock.advance(recording.FLUSH_INTERVAL_S / 2)
    rec.transcript(TranscriptLine(who="caller", text="hours", t=1.5))
    assert len(read_pcap(rec.pcap_path)) == 3  # a transcript line flushes the pcap too
    assert len(rec.transcript_path.read_text().splitlines()) == 2
    assert not rec.closed
    rec.close()


def test_an_oserror_on_a_packet_write_stops_the_recording_without_raising(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    rec = recorder(tmp_path)
    rec.inbound(rtp(1), CALLER)
    rec.transcript(TranscriptLine(who="bot", text="hi", t=0.0))

    def full(self: PcapWriter, datagram: UdpDatagram) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(PcapWriter, "write", full)
    rec.outbound(rtp(2), CALLER)  # must not raise
    assert rec.closed
    assert "stopped" in caplog.text and "No space left on device" in caplog.text

    monkeypatch.undo()
    rec.inbound(rtp(3), CALLER)
    rec.key("1", 100)
    rec.transcript(TranscriptLine(who="caller", text="ignored", t=1.0))
    rec.close()
    # Both files were closed (flushed) when the recording stopped: what came before is intact.
    assert [d.payload for d in read_pcap(rec.pcap_path)] == [rtp(1)]
    assert rec.transcript_path.read_text().splitlines() == [
        json.dumps({"who": "bot", "text": "hi", "t": 0.0})
    ]


class FullDisk(io.TextIOWrapper):
    """A transcript file on a full disk: a flush with something to write fails (ENOSPC)."""

    pending = False

    def write(self, text: str) -> int:
        self.pending = True
        return super().write(text)

    def flush(self) -> None:
        if self.pending:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        super().flush()


def test_a_full_disk_stops_the_recording_at_the_first_flush_without_raising(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(recording, "FLUSH_INTERVAL_S", 0.0)
    opened = os.fdopen

    def fdopen(fd: int, mode: str = "r", **options: Any) -> Any:
        if "b" in mode:
            return opened(fd, mode, **options)
        return FullDisk(opened(fd, mode + "b"), **options)

    monkeypatch.setattr(recording.os, "fdopen", fdopen)
    rec = recorder(tmp_path)
    rec.inbound(rtp(1), CALLER)
    assert not rec.closed  # the pcap itself is fine
    rec.transcript(TranscriptLine(who="bot", text="hi", t=0.0))
    assert rec.closed
    rec.outbound(rtp(2), CALLER)
    rec.close()
    assert [d.payload for d in read_pcap(rec.pcap_path)] == [rtp(1)]
    assert "No space left on device" in caplog.text


def test_an_undecodable_key_is_skipped_and_the_recording_goes_on(tmp_path: Path) -> None:
    rec = recorder(tmp_path)
    rec.key("X", 100)
    rec.inbound(rtp(1), CALLER)
    assert not rec.closed
    rec.close()
    assert [d.payload for d in read_pcap(rec.pcap_path)] == [rtp(1)]


# -- pruning ---------------------------------------------------------------------------------


def test_prune_keeps_the_newest_pairs_and_deletes_both_files_of_the_others(
    tmp_path: Path,
) -> None:
    now = time.time()
    names = [f"2026010{n}T000000Z-call{n}" for n in range(1, 6)]
    for age, stem in enumerate(reversed(names)):  # call5 newest
        make_recording(tmp_path, stem, now - 60 * (age + 1))

    deleted = prune_recordings(tmp_path, keep=2, max_age_s=DAY_S, now=now)
    assert sorted(deleted) == names[:3]
    assert stems(tmp_path) == set(names[3:])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"{stem}{suffix}" for stem in names[3:] for suffix in (".jsonl", ".pcap")
    )


def test_prune_never_deletes_the_recordings_of_calls_in_progress(tmp_path: Path) -> None:
    now = time.time()
    names = [f"2026010{n}T000000Z-call{n}" for n in range(1, 5)]
    for age, stem in enumerate(reversed(names)):  # call4 newest
        make_recording(tmp_path, stem, now - 60 * (age + 1) - (DAY_S * 9 if age == 3 else 0))
    # call1 (the oldest, and past max age) is still being recorded; it takes one of the places.
    deleted = prune_recordings(tmp_path, keep=2, max_age_s=DAY_S, now=now, in_progress={names[0]})
    assert sorted(deleted) == names[1:3]
    assert stems(tmp_path) == {names[0], names[3]}


def test_a_key_held_longer_than_one_event_can_tell_is_still_recorded(tmp_path: Path) -> None:
    rec = recorder(tmp_path)
    rec.key("5", 20_000)  # 20 s: more than the 16-bit duration field holds
    rec.close()
    assert keys_in(read_pcap(rec.pcap_path)) == ["5"]


def test_prune_deletes_recordings_older_than_max_age_whatever_the_count(tmp_path: Path) -> None:
    now = time.time()
    make_recording(tmp_path, "20260101T000000Z-old", now - 3 * DAY_S)
    make_recording(tmp_path, "20260102T000000Z-older", now - 10 * DAY_S)
    make_recording(tmp_path, "20260103T000000Z-fresh", now - DAY_S / 2)

    deleted = prune_recordings(tmp_path, keep=100, max_age_s=2 * DAY_S, now=now)
    assert sorted(deleted) == ["20260101T000000Z-old", "20260102T000000Z-older"]
    assert stems(tmp_path) == {"20260103T000000Z-fresh"}


def test_prune_judges_a_pair_by_its_newer_file_and_handles_lone_files(tmp_path: Path) -> None:
    now = time.time()
    make_recording(tmp_path, "20260101T000000Z-a", now - 3 * DAY_S)
    os.utime(tmp_path / "20260101T000000Z-a.jsonl", (now, now))  # transcript written recently
    lone = tmp_path / "20260102T000000Z-b.pcap"  # its transcript is gone
    lone.write_text("x")
    os.utime(lone, (now - 3 * DAY_S, now - 3 * DAY_S))

    assert prune_recordings(tmp_path, keep=10, max_age_s=DAY_S, now=now) == ["20260102T000000Z-b"]
    assert stems(tmp_path) == {"20260101T000000Z-a"}
    assert len(list(tmp_path.iterdir())) == 2


def test_prune_never_touches_files_not_named_like_recordings(tmp_path: Path) -> None:
    now = time.time()
    ancient = now - 365 * DAY_S
    foreign = [
        "notes.txt",
        "capture.pcap",  # someone's own capture
        "calls.jsonl",
        "20260101T000000Z-x.wav",
        "2026-01-01-call.pcap",
        "20260101T000000Z-.pcap",  # no call id
    ]
    for name in foreign:
        (tmp_path / name).write_text("keep me")
        os.utime(tmp_path / name, (ancient, ancient))
    (tmp_path / "subdir").mkdir()
    make_recording(tmp_path, "20260101T000000Z-mine", ancient)

    assert prune_recordings(tmp_path, keep=0, max_age_s=DAY_S, now=now) == ["20260101T000000Z-mine"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*foreign, "subdir"])
    assert all((tmp_path / name).read_text() == "keep me" for name in foreign)


def test_start_prunes_so_that_at_most_max_files_remain_with_the_new_one(tmp_path: Path) -> None:
    now = time.time()
    old = [f"2026010{n}T000000Z-old{n}" for n in range(1, 6)]
    for n, stem in enumerate(old):
        make_recording(tmp_path, stem, now - 600 + n)  # old5 newest
    (tmp_path / "README.txt").write_text("mine")
    config = RecordConfig(enabled=True, dir=str(tmp_path), max_files=3, max_days=1.0)

    rec = CallRecorder.start(config, "1764137700.42", CALLER, BOT)
    try:
        assert rec.pcap_path.parent == tmp_path
        assert rec.pcap_path.name.endswith("-1764137700.42.pcap")
        assert rec.transcript_path == rec.pcap_path.with_suffix(".jsonl")
        assert stems(tmp_path) == {rec.pcap_path.stem, old[3], old[4]}
        assert (tmp_path / "README.txt").read_text() == "mine"
    finally:
        rec.close()

    single = RecordConfig(enabled=True, dir=str(tmp_path), max_files=1, max_days=1.0)
    newest = CallRecorder.start(single, "next", CALLER, BOT)
    newest.close()
    assert stems(tmp_path) == {newest.pcap_path.stem}


# -- privacy: who may read a recording, and keys left out -------------------------------------


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(params=[0o022, 0o000], ids=["umask-022", "umask-000"])
def permissive_umask(request: pytest.FixtureRequest) -> Iterator[int]:
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


def test_a_new_record_dir_and_its_files_are_the_owners_alone_whatever_the_umask(
    tmp_path: Path, permissive_umask: int
) -> None:
    directory = tmp_path / "deep" / "recordings"
    rec = CallRecorder.start(RecordConfig(dir=str(directory)), "c1", CALLER, BOT)
    rec.transcript(TranscriptLine(who="caller", text="4217", t=1.0))
    rec.close()
    assert mode_of(directory) == 0o700
    assert mode_of(rec.pcap_path) == mode_of(rec.transcript_path) == 0o600


def test_files_in_an_existing_open_directory_are_private_and_the_directory_is_warned_about(
    tmp_path: Path, permissive_umask: int, caplog: pytest.LogCaptureFixture
) -> None:
    directory = tmp_path / "shared"
    directory.mkdir()
    directory.chmod(0o755)
    caplog.set_level(logging.WARNING, logger="voicebot.call.recording")
    for call_id in ("c1", "c2"):
        rec = CallRecorder.start(RecordConfig(dir=str(directory)), call_id, CALLER, BOT)
        rec.close()
        assert mode_of(rec.pcap_path) == mode_of(rec.transcript_path) == 0o600
    assert mode_of(directory) == 0o755  # someone chose it: left as it is, but said
    warnings = [r.getMessage() for r in caplog.records if "open to group or others" in r.message]
    assert len(warnings) == 1 and str(directory) in warnings[0] and "0755" in warnings[0]


def test_a_private_existing_directory_is_not_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = tmp_path / "mine"
    directory.mkdir(mode=0o700)
    CallRecorder.start(RecordConfig(dir=str(directory)), "c1", CALLER, BOT).close()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_file_left_with_an_open_mode_is_made_private_when_reused(
    tmp_path: Path, permissive_umask: int
) -> None:
    stem = "20260101T000000Z-again"
    for suffix in (".pcap", ".jsonl"):
        (tmp_path / f"{stem}{suffix}").write_text("old")
        (tmp_path / f"{stem}{suffix}").chmod(0o644)
    rec = recorder(tmp_path, stem)
    rec.close()
    assert mode_of(rec.pcap_path) == mode_of(rec.transcript_path) == 0o600
    assert read_pcap(rec.pcap_path) == [] and rec.transcript_path.read_text() == ""


def telephone_events(digit: str) -> list[bytes]:
    """The packets a phone sends for ``digit``, as Asterisk could forward them as RTP."""
    packets = dtmf_packets(digit, ssrc=0x99, first_sequence=10, timestamp=800)
    return [packet.serialize() for _, packet in packets]


def test_without_keys_no_telephone_event_reaches_the_pcap_and_the_audio_does(
    tmp_path: Path,
) -> None:
    config = RecordConfig(dir=str(tmp_path), keys=False)
    rec = CallRecorder.start(config, "c1", CALLER, BOT)
    rec.inbound(rtp(1), CALLER)
    rec.key("4", 120)  # as an ARI event
    for packet in telephone_events("2"):  # as RTP from Asterisk
        rec.inbound(packet, CALLER)
    rec.inbound(rtp(2), CALLER)
    rec.outbound(rtp(3), CALLER)
    rec.close()

    datagrams = read_pcap(rec.pcap_path)
    assert [d.payload for d in datagrams] == [rtp(1), rtp(2), rtp(3)]
    types_seen = {RtpPacket.parse(d.payload).payload_type for d in datagrams}
    assert DEFAULT_EVENT_PAYLOAD_TYPE not in types_seen
    assert keys_in(datagrams) == []


def test_with_keys_telephone_events_from_asterisk_are_recorded_as_they_came(
    tmp_path: Path,
) -> None:
    rec = CallRecorder.start(RecordConfig(dir=str(tmp_path)), "c1", CALLER, BOT)
    for packet in telephone_events("2"):
        rec.inbound(packet, CALLER)
    rec.close()
    assert keys_in(read_pcap(rec.pcap_path)) == ["2"]


def test_start_creates_a_missing_directory(tmp_path: Path) -> None:
    directory = tmp_path / "deep" / "recordings"
    rec = CallRecorder.start(RecordConfig(dir=str(directory)), "c1", CALLER, BOT)
    rec.close()
    assert sorted(p.suffix for p in directory.iterdir()) == [".jsonl", ".pcap"]


@pytest.mark.parametrize(
    ("call_id", "suffix"),
    [
        ("1764137700.42", "1764137700.42"),
        ("a/b c:d", "a_b_c_d"),
        ("../../etc/passwd", ".._.._etc_passwd"),
        ("", "call"),
        ("anruf-ü", "anruf-_"),
    ],
)
def test_recording_stem_is_a_safe_sortable_file_name(call_id: str, suffix: str) -> None:
    stem = recording_stem(call_id, 1_764_137_700.9)
    assert stem == f"20251126T061500Z-{suffix}"
    assert "/" not in stem and "\\" not in stem


@pytest.mark.parametrize("call_id", ["a/b c:d", "../x", "", "ü"])
def test_recordings_of_odd_call_ids_are_recognized_by_the_pruning(
    tmp_path: Path, call_id: str
) -> None:
    stem = recording_stem(call_id, time.time())
    make_recording(tmp_path, stem, time.time())
    assert prune_recordings(tmp_path, keep=0, max_age_s=DAY_S, now=time.time()) == [stem]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("caller", "bot"),
    [(("::1", 4000), BOT), (CALLER, ("fe80::1", 40002)), (("2001:db8::5", 4000), BOT)],
)
def test_start_rejects_ipv6_media_with_a_clear_error_before_touching_the_disk(
    tmp_path: Path, caller: tuple[str, int], bot: tuple[str, int]
) -> None:
    directory = tmp_path / "rec"
    with pytest.raises(ValueError, match=r"only IPv4 media can be recorded, .*::"):
        CallRecorder.start(RecordConfig(dir=str(directory)), "c1", caller, bot)
    assert not directory.exists()


# -- configuration ---------------------------------------------------------------------------


def test_record_config_defaults_off_and_reads_the_environment() -> None:
    assert load_config(environ={}).record == RecordConfig(enabled=False)
    config = load_config(
        environ={
            "VOICEBOT_RECORD_ENABLED": "true",
            "VOICEBOT_RECORD_DIR": "/var/rec",
            "VOICEBOT_RECORD_MAX_FILES": "1",
            "VOICEBOT_RECORD_MAX_DAYS": "0.5",
        }
    )
    assert config.record == RecordConfig(enabled=True, dir="/var/rec", max_files=1, max_days=0.5)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"VOICEBOT_RECORD_MAX_FILES": "0"}, "record.max_files: 0 must be at least 1"),
        ({"VOICEBOT_RECORD_MAX_FILES": "-3"}, "record.max_files: -3 must be at least 1"),
        ({"VOICEBOT_RECORD_MAX_DAYS": "0"}, "record.max_days: 0 must be more than 0"),
        ({"VOICEBOT_RECORD_MAX_DAYS": "-1.5"}, "record.max_days: -1.5 must be more than 0"),
        ({"VOICEBOT_RECORD_MAX_DAYS": "nan"}, "record.max_days: nan must be more than 0"),
        ({"VOICEBOT_RECORD_MAX_FILES": "many"}, "record.max_files: expected an integer"),
    ],
)
def test_config_rejects_bad_record_bounds_naming_the_key(
    environ: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(environ=environ)


def test_config_rejects_bad_record_bounds_from_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[record]\nmax_files = 0\n")
    with pytest.raises(ConfigError, match=re.escape("record.max_files: 0")):
        load_config(path, environ={})


def test_a_link_planted_where_a_recording_goes_is_replaced_not_followed(tmp_path: Path) -> None:
    stem = "20260101T000000Z-planted"
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    for suffix in (".pcap", ".jsonl"):
        (tmp_path / f"{stem}{suffix}").symlink_to(target)
    rec = recorder(tmp_path, stem)
    rec.inbound(rtp(1), CALLER)
    rec.transcript(TranscriptLine(who="caller", text="4217", t=1.0))
    rec.close()
    assert target.read_text() == "keep me"
    for path in (rec.pcap_path, rec.transcript_path):
        assert not path.is_symlink() and path.is_file() and mode_of(path) == 0o600
    assert [d.payload for d in read_pcap(rec.pcap_path)] == [rtp(1)]


def test_a_lone_surrogate_in_a_line_is_written_escaped_and_the_recording_goes_on(
    tmp_path: Path,
) -> None:
    rec = recorder(tmp_path)
    rec.transcript(TranscriptLine(who="bot", text="Order \ud800 is ready.", t=0.5))
    rec.transcript(TranscriptLine(who="bot", text="Bye.", t=1.0))
    assert not rec.closed
    rec.close()
    lines = [json.loads(line) for line in rec.transcript_path.read_text().splitlines()]
    assert [line["text"] for line in lines] == ["Order \ud800 is ready.", "Bye."]
