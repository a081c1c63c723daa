"""Seeded, reproducible network impairments for replayed captures. Pure: no I/O, no clocks.

Applied to the caller side of a captured call before it is replayed, to check that the bot
copes with what real networks do to RTP: loss, jitter, reordering, duplication, mangled
datagrams, and a sender that restarts its stream mid-call.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace

from ..media.codecs import MS_PER_SECOND
from ..media.rtp import SEQUENCE_MODULUS, TIMESTAMP_MODULUS, RtpPacket
from .pcap import UdpDatagram

# A held-back datagram arrives this long after the one it was swapped with.
REORDER_GAP_S = 0.001
DUPLICATE_MAX_DELAY_S = 0.005
PERCENT = 100.0


def _check_percentage(option: str, value: float) -> None:
    if not 0 <= value <= PERCENT:
        raise ValueError(f"{option}: {value:g} is not a percentage (0-100)")


@dataclass(frozen=True)
class Impairments:
    """What to do to the datagrams; see ``impair`` for the exact semantics of each."""

    loss_pct: float = 0.0
    jitter_ms: float = 0.0
    reorder_pct: float = 0.0
    duplicate_pct: float = 0.0
    ssrc_change_at_s: float | None = None
    truncate_pct: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        # Messages name the options as the CLI spells them: that is where the values come from.
        _check_percentage("--loss", self.loss_pct)
        _check_percentage("--reorder", self.reorder_pct)
        _check_percentage("--duplicate", self.duplicate_pct)
        _check_percentage("--truncate", self.truncate_pct)
        if not self.jitter_ms >= 0:
            raise ValueError(f"--jitter: {self.jitter_ms:g} ms must be >= 0")
        if math.isinf(self.jitter_ms):
            raise ValueError(f"--jitter: {self.jitter_ms:g} ms must be finite")
        if self.ssrc_change_at_s is not None and not self.ssrc_change_at_s >= 0:
            raise ValueError(f"--ssrc-change-at: {self.ssrc_change_at_s:g} s must be >= 0")

    @property
    def active(self) -> bool:
        return bool(
            self.loss_pct
            or self.jitter_ms
            or self.reorder_pct
            or self.duplicate_pct
            or self.truncate_pct
            or self.ssrc_change_at_s is not None
        )

    def describe(self) -> str:
        """One line for logs and reports, e.g. ``"loss 5%, jitter 40 ms, seed 1"``."""
        if not self.active:
            return "none"
        parts = []
        if self.loss_pct:
            parts.append(f"loss {self.loss_pct:g}%")
        if self.jitter_ms:
            parts.append(f"jitter {self.jitter_ms:g} ms")
        if self.reorder_pct:
            parts.append(f"reorder {self.reorder_pct:g}%")
        if self.duplicate_pct:
            parts.append(f"duplicate {self.duplicate_pct:g}%")
        if self.truncate_pct:
            parts.append(f"truncate {self.truncate_pct:g}%")
        if self.ssrc_change_at_s is not None:
            parts.append(f"ssrc change at {self.ssrc_change_at_s:g} s")
        parts.append(f"seed {self.seed}")
        return ", ".join(parts)


@dataclass
class ImpairmentStats:
    """How many datagrams each impairment touched."""

    lost: int = 0
    delayed: int = 0
    reordered: int = 0
    duplicated: int = 0
    truncated: int = 0
    ssrc_changed: int = 0


def impair(
    datagrams: Sequence[UdpDatagram], impairments: Impairments
) -> tuple[list[UdpDatagram], ImpairmentStats]:
    """Apply ``impairments`` to ``datagrams``; the result is sorted by time (stably).

    The input is sorted by time (stably) first and never mutated; the output holds new
    ``UdpDatagram`` objects. One ``random.Random(seed)`` drives fixed-order steps, so the
    same seed and input always give the same output. Each step draws only when it is
    enabled, and the restart's SSRC and offsets are drawn before anything else, so they
    depend on the seed alone. With nothing enabled the output equals the sorted input.

    Steps, in order:

    1. loss: each datagram is dropped with probability ``loss_pct / 100``.
    2. ssrc change: every surviving datagram sent at or after the earliest input time plus
       ``ssrc_change_at_s`` that parses as RTP gets a new SSRC (the old one XOR a nonzero
       seeded mask, so it always differs and distinct streams stay distinct) and its
       sequence number and timestamp shifted by fixed seeded offsets, like a sender restart
       or Asterisk re-anchoring media; sequence numbers stay continuous within the new
       stream. Unparsable datagrams are left alone; padding is dropped on re-serializing.
    3. truncate: each datagram, with probability ``truncate_pct / 100``, has its payload
       cut to a random length in ``[0, len - 1]`` (empty payloads cannot be cut), leaving a
       malformed RTP header or a short payload.
    4. reorder: each datagram, with probability ``reorder_pct / 100``, is held back until
       1 ms after the next one, swapping the two. The datagram it swaps with cannot itself
       be held, so each count is a real swap (passing more than one datagram only where
       they are under 1 ms apart); the last datagram has nothing to swap with.
    5. duplicate: each datagram, with probability ``duplicate_pct / 100``, is sent twice,
       the copy a uniform 0-5 ms later.
    6. jitter: every datagram, copies included, is delayed by a uniform
       ``[0, jitter_ms]`` ms, so jitter larger than the packet interval reorders naturally.
    """
    rng = random.Random(impairments.seed)
    stats = ImpairmentStats()
    items = sorted(datagrams, key=lambda datagram: datagram.time)
    start = items[0].time if items else 0.0

    restart: tuple[float, int, int, int] | None = None
    if impairments.ssrc_change_at_s is not None:
        restart = (
            start + impairments.ssrc_change_at_s,
            rng.randrange(1, TIMESTAMP_MODULUS),
            rng.randrange(1, SEQUENCE_MODULUS),
            rng.randrange(1, TIMESTAMP_MODULUS),
        )

    if impairments.loss_pct:
        kept = [d for d in items if rng.random() * PERCENT >= impairments.loss_pct]
        stats.lost = len(items) - len(kept)
        items = kept
    # From here on, work on copies so the caller's datagrams are never touched.
    items = [replace(datagram) for datagram in items]

    if restart is not None:
        change_at, mask, sequence_offset, timestamp_offset = restart
        for datagram in items:
            if datagram.time < change_at:
                continue
            try:
                packet = RtpPacket.parse(datagram.payload)
            except ValueError:
                continue
            moved = replace(
                packet,
                ssrc=packet.ssrc ^ mask,
                sequence=(packet.sequence + sequence_offset) % SEQUENCE_MODULUS,
                timestamp=(packet.timestamp + timestamp_offset) % TIMESTAMP_MODULUS,
            )
            datagram.payload = moved.serialize()
            stats.ssrc_changed += 1

    if impairments.truncate_pct:
        for datagram in items:
            if rng.random() * PERCENT < impairments.truncate_pct and datagram.payload:
                datagram.payload = datagram.payload[: rng.randrange(len(datagram.payload))]
                stats.truncated += 1

    if impairments.reorder_pct:
        index = 0
        while index < len(items) - 1:
            if rng.random() * PERCENT < impairments.reorder_pct:
                items[index].time = items[index + 1].time + REORDER_GAP_S
                stats.reordered += 1
                index += 2
            else:
                index += 1

    if impairments.duplicate_pct:
        doubled = []
        for datagram in items:
            doubled.append(datagram)
            if rng.random() * PERCENT < impairments.duplicate_pct:
                delay = rng.uniform(0.0, DUPLICATE_MAX_DELAY_S)
                doubled.append(replace(datagram, time=datagram.time + delay))
                stats.duplicated += 1
        items = doubled

    if impairments.jitter_ms:
        for datagram in items:
            delay = rng.uniform(0.0, impairments.jitter_ms) / MS_PER_SECOND
            if delay > 0:
                datagram.time += delay
                stats.delayed += 1

    items.sort(key=lambda datagram: datagram.time)
    return items, stats
