"""Recording a call: its RTP, both directions, as pcap, and its transcript as JSONL.

The pcap is a plain Ethernet/IPv4/UDP capture that Wireshark and tshark read. The direction
of each packet is marked by its Ethernet source address (``CALLER_MAC`` for what Asterisk sent
us, ``BOT_MAC`` for what we sent), so ``voicebot replay`` finds the caller's side of our own
recordings by itself. Keys the caller pressed reach us as ARI events, not as RTP; they are
written to the caller's side as RFC 4733 telephone-event packets at the moment they arrived,
so a recording replays with its keys. With ``record.keys = false`` they are left out: no
telephone-event packets in the pcap (the controller writes the transcript line of a key as "#",
a key pressed but not which).

Recordings hold callers' voices and what they keyed: the directory is created 0700 and each
file 0600, whatever the process umask.

Writes go to buffered files from the event loop: a few hundred bytes per packet land in the
page cache in microseconds. Files are flushed every second and closed at hangup.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import random
import re
import stat
import time
from collections.abc import Collection
from pathlib import Path
from typing import IO

from ..capture.pcap import PcapWriter, UdpDatagram
from ..config import RecordConfig
from ..media.dtmf import (
    DEFAULT_EVENT_PAYLOAD_TYPE,
    EVENT_CLOCK_RATE,
    MAX_DURATION,
    dtmf_packets,
)
from ..media.endpoint import RtpEndpoint
from ..media.rtp import RTP_HEADER_SIZE, RTP_VERSION, SEQUENCE_MODULUS, TIMESTAMP_MODULUS
from .session import CallObserver, TranscriptLine

log = logging.getLogger(__name__)

# Locally administered addresses spelling "vb": the caller's side (Asterisk) and ours.
CALLER_MAC = bytes.fromhex("027662000001")
BOT_MAC = bytes.fromhex("027662000002")
FLUSH_INTERVAL_S = 1.0
SECONDS_PER_DAY = 86400
MAX_EVENT_DURATION_MS = MAX_DURATION * 1000 // EVENT_CLOCK_RATE
# 2026-11-26T06:15:00Z-1764137700.42.pcap: sortable by time, and the call's Asterisk id.
_NAME = re.compile(r"^\d{8}T\d{6}Z-[A-Za-z0-9._-]+$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
PCAP_SUFFIX = ".pcap"
TRANSCRIPT_SUFFIX = ".jsonl"
PRIVATE_DIRECTORY_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
_OTHERS_MAY_ENTER = 0o077
# Directories already warned about as open to others (one warning per directory and run, not
# one per call).
_warned_open_directories: set[Path] = set()

Address = tuple[str, int]


def recording_stem(call_id: str, started: float) -> str:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(started))
    return f"{stamp}-{_UNSAFE.sub('_', call_id) or 'call'}"


def make_private_directory(directory: Path) -> None:
    """Create ``directory`` (and its parents) for the owner alone. One that exists is left as
    it is (someone chose its mode; each recording in it is private anyway), with a warning
    if others may list it."""
    try:
        directory.mkdir(mode=PRIVATE_DIRECTORY_MODE, parents=True)
    except FileExistsError:
        _warn_if_open(directory)
        return
    # The umask can only take bits away from mkdir's mode; chmod makes it exactly 0700.
    directory.chmod(PRIVATE_DIRECTORY_MODE)


def _warn_if_open(directory: Path) -> None:
    if not directory.is_dir() or directory in _warned_open_directories:
        return
    mode = stat.S_IMODE(directory.stat().st_mode)
    if mode & _OTHERS_MAY_ENTER:
        _warned_open_directories.add(directory)
        log.warning("recordings: %s is open to group or others (mode %04o); `chmod 700` it: "
                    "the names of its files tell when calls came", directory, mode)  # fmt: skip


def open_private_file(path: Path) -> int:
    """A descriptor of a new regular file at ``path``, for the owner alone whatever the umask.
    Whatever was at ``path`` is replaced, never opened: a link planted there (in a directory
    others may write) is removed, not followed, and its target left as it was."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, PRIVATE_FILE_MODE)
    except FileExistsError:
        path.unlink()
        fd = os.open(path, flags, PRIVATE_FILE_MODE)
    try:
        # The umask can only take bits away: make it exactly 0600.
        os.fchmod(fd, PRIVATE_FILE_MODE)
    except OSError:
        os.close(fd)
        raise
    return fd


def _is_telephone_event(data: bytes) -> bool:
    """An RTP packet of the telephone-event payload type Asterisk uses (the endpoint's too)."""
    return (
        len(data) >= RTP_HEADER_SIZE
        and data[0] >> 6 == RTP_VERSION
        and data[1] & 0x7F == DEFAULT_EVENT_PAYLOAD_TYPE
    )


def prune_recordings(
    directory: Path,
    *,
    keep: int,
    max_age_s: float,
    now: float,
    in_progress: Collection[str] = (),
) -> list[str]:
    """Delete recordings older than ``max_age_s`` and the oldest beyond ``keep``; the stems
    deleted. Only files named like our recordings are touched, never those ``in_progress``
    (calls still being recorded: they count towards ``keep``)."""
    stems: dict[str, float] = {}
    for path in directory.iterdir():
        if path.stem in in_progress:
            continue
        if path.suffix in (PCAP_SUFFIX, TRANSCRIPT_SUFFIX) and _NAME.match(path.stem):
            try:
                mtime = path.stat().st_mtime
            except FileNotFoundError:
                continue
            stems[path.stem] = max(stems.get(path.stem, 0.0), mtime)
    newest_first = sorted(stems, key=lambda stem: (stems[stem], stem), reverse=True)
    room = max(keep - len(in_progress), 0)
    doomed = [s for n, s in enumerate(newest_first) if n >= room or now - stems[s] > max_age_s]
    for stem in doomed:
        for suffix in (PCAP_SUFFIX, TRANSCRIPT_SUFFIX):
            (directory / f"{stem}{suffix}").unlink(missing_ok=True)
    return doomed


class CallRecorder(CallObserver):
    """One call's recording: an ``RtpTap`` for the call's endpoint (its RTP both ways) and an
    observer of its session (the caller's keys and the transcript); ``attach`` wires both."""

    def __init__(
        self, directory: Path, stem: str, caller: Address, bot: Address, *, keys: bool = True
    ) -> None:
        self.pcap_path = directory / f"{stem}{PCAP_SUFFIX}"
        self.transcript_path = directory / f"{stem}{TRANSCRIPT_SUFFIX}"
        self.caller = caller
        self.bot = bot
        # record.keys: false leaves the caller's keys out of the pcap.
        self.keys = keys
        pcap = os.fdopen(open_private_file(self.pcap_path), "wb")
        self._pcap: PcapWriter | None = PcapWriter(self.pcap_path, pcap)
        self._transcript: IO[str] | None = None
        try:
            # backslashreplace: a lone surrogate in a rendered text (from a webhook's JSON)
            # is written as its escape, not a UnicodeEncodeError that would end the call.
            self._transcript = os.fdopen(
                open_private_file(self.transcript_path),
                "w",
                encoding="utf-8",
                errors="backslashreplace",
            )
        except OSError:
            self._pcap.close()
            raise
        self._flushed_at = time.monotonic()
        self._started = time.time()
        self._key_ssrc = random.randrange(1, TIMESTAMP_MODULUS)
        self._key_sequence = random.randrange(SEQUENCE_MODULUS)

    @classmethod
    def start(
        cls,
        config: RecordConfig,
        call_id: str,
        caller: Address,
        bot: Address,
        in_progress: Collection[str] = (),
    ) -> CallRecorder:
        """Make room (``max_files``, ``max_days``; never deleting the recordings of calls
        ``in_progress``, by stem) and open the call's files. Raises ``OSError`` when the
        directory cannot be written, ``ValueError`` for IPv6 media."""
        for host, _ in (caller, bot):
            if not isinstance(ipaddress.ip_address(host), ipaddress.IPv4Address):
                raise ValueError(f"only IPv4 media can be recorded, this call uses {host}")
        directory = Path(config.dir)
        make_private_directory(directory)
        now = time.time()
        pruned = prune_recordings(
            directory,
            keep=config.max_files - 1,
            max_age_s=config.max_days * SECONDS_PER_DAY,
            now=now,
            in_progress=in_progress,
        )
        if pruned:
            log.info("recordings: deleted the %d oldest (%s)", len(pruned), ", ".join(pruned))
        return cls(directory, recording_stem(call_id, now), caller, bot, keys=config.keys)

    def attach(self, endpoint: RtpEndpoint) -> CallRecorder:
        """Record ``endpoint``'s RTP from now on; the recorder is then given to the call's
        session as one of its observers (``Runtime.new_session(observers=...)``)."""
        endpoint.tap = self
        return self

    @property
    def closed(self) -> bool:
        return self._pcap is None

    @property
    def stem(self) -> str:
        return self.pcap_path.stem

    # -- RtpTap -----------------------------------------------------------------------------

    def inbound(self, data: bytes, source: Address) -> None:
        if not self.keys and _is_telephone_event(data):
            return  # a key Asterisk sent as RTP: as private as one it sent as an event
        self._write(UdpDatagram(time.time(), source, self.bot, data, link_src=CALLER_MAC))

    def outbound(self, data: bytes, destination: Address) -> None:
        self._write(UdpDatagram(time.time(), self.bot, destination, data, link_src=BOT_MAC))

    # -- what is not RTP --------------------------------------------------------------------

    def key(self, digit: str, duration_ms: int) -> None:
        """A key the caller pressed (an ARI event), as the telephone-event packets a phone
        sends for it, written at the moment it arrived; nothing with ``record.keys = false``."""
        if not self.keys:
            return
        now = time.time()
        timestamp = round((now - self._started) * EVENT_CLOCK_RATE) % TIMESTAMP_MODULUS
        try:
            packets = dtmf_packets(
                digit,
                ssrc=self._key_ssrc,
                first_sequence=self._key_sequence,
                timestamp=timestamp,
                payload_type=DEFAULT_EVENT_PAYLOAD_TYPE,
                # One event's duration field holds at most ~8 s; a longer press is still a key.
                duration_ms=min(max(duration_ms, 20), MAX_EVENT_DURATION_MS),
            )
        except ValueError as exc:
            log.warning("recording %s: key not recorded: %s", self.pcap_path.name, exc)
            return
        self._key_sequence = (self._key_sequence + len(packets)) % SEQUENCE_MODULUS
        for n, (_, packet) in enumerate(packets):
            # All at arrival: the key went down before the event reached us, and the audio
            # of that time is already written.
            when = now + n * 1e-6
            self._write(
                UdpDatagram(when, self.caller, self.bot, packet.serialize(), link_src=CALLER_MAC)
            )

    def transcript(self, line: TranscriptLine) -> None:
        """One transcript line (who, text, t, state, intent, latency_ms); with ``record.keys =
        false`` a key the caller pressed is written as "#"."""
        if self._transcript is None:
            return
        record = (line if self.keys else line.without_key()).as_dict()
        try:
            self._transcript.write(json.dumps(record, ensure_ascii=False) + "\n")
        except OSError as exc:
            self._fail(exc)
            return
        self._maybe_flush()

    def close(self) -> None:
        """Flush and close both files (at hangup, transfer or shutdown); idempotent."""
        pcap, self._pcap = self._pcap, None
        transcript, self._transcript = self._transcript, None
        for file in (pcap, transcript):
            if file is not None:
                try:
                    file.close()
                except OSError as exc:
                    log.error("recording %s: could not close: %s", self.pcap_path.name, exc)

    # -- internals --------------------------------------------------------------------------

    def _write(self, datagram: UdpDatagram) -> None:
        if self._pcap is None:
            return
        try:
            self._pcap.write(datagram)
        except OSError as exc:
            self._fail(exc)
            return
        self._maybe_flush()

    def _maybe_flush(self) -> None:
        now = time.monotonic()
        if now - self._flushed_at < FLUSH_INTERVAL_S:
            return
        self._flushed_at = now
        try:
            if self._pcap is not None:
                self._pcap.flush()
            if self._transcript is not None:
                self._transcript.flush()
        except OSError as exc:
            self._fail(exc)

    def _fail(self, exc: OSError) -> None:
        # A full disk must not end the call: the caller is served, the recording stops.
        log.error("recording %s stopped: %s", self.pcap_path.name, exc)
        self.close()
