"""Put inbound RTP back into sequence order. Pure: the caller decides when to flush."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from .rtp import SEQUENCE_MODULUS, RtpPacket, seq_distance

DEFAULT_DEPTH = 3
# Sequence numbers remembered after delivery, to tell a duplicate from a late packet.
DELIVERED_HISTORY = 128
# A jump this large (20 s of 20 ms frames) is a sender restart, not loss or reordering.
RESYNC_THRESHOLD = 1000


@dataclass
class ReorderStats:
    duplicates: int = 0
    late: int = 0
    reordered: int = 0
    lost: int = 0
    resyncs: int = 0


class ReorderBuffer:
    """Holds packets that arrive ahead of a gap until the gap fills or ``depth`` newer wait.

    ``push`` returns what became deliverable, in order. A gap that never fills is skipped
    (counted as lost) once ``depth`` newer packets are held, so latency is bounded by depth.
    """

    def __init__(self, depth: int = DEFAULT_DEPTH) -> None:
        if depth < 0:
            raise ValueError(f"reorder depth must be >= 0, got {depth}")
        self.depth = depth
        self.stats = ReorderStats()
        self._ssrc: int | None = None
        self._next_seq = 0
        self._held: dict[int, RtpPacket] = {}
        self._delivered: deque[int] = deque(maxlen=DELIVERED_HISTORY)
        self._delivered_set: set[int] = set()

    @property
    def held(self) -> int:
        return len(self._held)

    def push(self, packet: RtpPacket) -> list[RtpPacket]:
        if self._ssrc != packet.ssrc:
            # A new SSRC is a new stream (first packet, or Asterisk re-anchored the media).
            out = self.flush() if self._ssrc is not None else []
            self._restart(packet)
            return [*out, *self._deliver_from(packet)]

        distance = seq_distance(self._next_seq, packet.sequence)
        if abs(distance) > RESYNC_THRESHOLD:
            self.stats.resyncs += 1
            out = self.flush()
            self._restart(packet)
            return [*out, *self._deliver_from(packet)]
        if distance < 0:
            if packet.sequence in self._delivered_set:
                self.stats.duplicates += 1
            else:
                self.stats.late += 1
            return []
        if distance == 0:
            if self._held:
                self.stats.reordered += 1  # a newer packet overtook this one
            return self._deliver_from(packet)
        if packet.sequence in self._held:
            self.stats.duplicates += 1
            return []
        self._held[packet.sequence] = packet
        if len(self._held) <= self.depth:
            return []
        # Waited long enough: give up on the gap and resume at the oldest held packet.
        oldest = min(self._held, key=lambda seq: seq_distance(self._next_seq, seq))
        self.stats.lost += seq_distance(self._next_seq, oldest)
        return self._deliver_from(self._held.pop(oldest))

    def flush(self) -> list[RtpPacket]:
        """Release everything held, in order, skipping gaps (counted as lost)."""
        out: list[RtpPacket] = []
        while self._held:
            oldest = min(self._held, key=lambda seq: seq_distance(self._next_seq, seq))
            self.stats.lost += seq_distance(self._next_seq, oldest)
            out.extend(self._deliver_from(self._held.pop(oldest)))
        return out

    def _restart(self, packet: RtpPacket) -> None:
        self._ssrc = packet.ssrc
        self._next_seq = packet.sequence
        self._held.clear()
        self._delivered.clear()
        self._delivered_set.clear()

    def _deliver_from(self, packet: RtpPacket) -> list[RtpPacket]:
        """Deliver ``packet`` (which is next in sequence) and any held packets following it."""
        out = [packet]
        self._mark_delivered(packet.sequence)
        while self._next_seq in self._held:
            following = self._held.pop(self._next_seq)
            out.append(following)
            self._mark_delivered(following.sequence)
        return out

    def _mark_delivered(self, sequence: int) -> None:
        if len(self._delivered) == self._delivered.maxlen:
            self._delivered_set.discard(self._delivered[0])
        self._delivered.append(sequence)
        self._delivered_set.add(sequence)
        self._next_seq = (sequence + 1) % SEQUENCE_MODULUS
