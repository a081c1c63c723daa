"""Failed logins on the per-call ARI WebSockets: a limit per address, and what to log.

Pure policy (the clock is injected): ``accept.AriAcceptor`` asks it before checking credentials
and logs what it hands out. Asterisk knows the password and gets it right the first time, so
repeated failures are a misconfiguration (logged once, then in summary) or someone guessing
(slowed to a few guesses a minute).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv6Address, IPv6Network, ip_address

# Asterisk knows the password and gets it right the first time; five wrong ones in a minute is
# a misconfiguration (logged) or someone guessing (slowed to five guesses a minute).
MAX_FAILED_LOGINS = 5
FAILED_LOGIN_WINDOW_S = 60.0
FAILED_LOGIN_SUMMARY_S = 60.0
# Each tracked address costs a few hundred bytes; past this many the least recently seen is
# forgotten (and may guess again).
MAX_TRACKED_ADDRESSES = 4096


def client_key(remote: str | None) -> str:
    """What failed logins are counted by: the remote IPv4 address, or the /64 an IPv6 address
    is in (one host usually holds a whole /64)."""
    try:
        address = ip_address(remote or "")
    except ValueError:
        return remote or "(unknown address)"
    if isinstance(address, IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(IPv6Network((int(address) >> 64 << 64, 64)))
    return str(address)


@dataclass
class _Tracked:
    window_start: float  # of the current window of failures
    last_seen: float
    reported_at: float  # when the last log line about this address was written
    failures: int = 0  # wrong credentials in the current window
    unreported: int = 0  # refusals since that line
    unchecked: int = 0  # of those, refused (429) without looking at the credentials


@dataclass(frozen=True)
class FailedLoginSummary:
    """One log line's worth: the refusals of an address since the last line about it."""

    address: str
    refused: int
    unchecked: int
    span_s: float

    def __str__(self) -> str:
        unchecked = f" ({self.unchecked} of them refused unchecked)" if self.unchecked else ""
        return (
            f"ARI WebSocket: {self.refused} failed logins from {self.address} in the last "
            f"{self.span_s:.0f} s{unchecked}"
        )


class FailedLogins:
    """Failed logins per address (:func:`client_key`): a limit, and what to log. No I/O.

    After ``max_failures`` wrong credentials within ``window_s`` of the first, an address is
    refused unchecked until that window ends; a right login clears its count. The first
    refusal of an address is for the caller to log (:meth:`failed` answers True); later ones
    are only counted, and :meth:`summaries` hands them out at most once per ``summary_s`` per
    address. At most ``max_addresses`` are tracked: the least recently seen is dropped first.
    """

    def __init__(
        self,
        *,
        max_failures: int = MAX_FAILED_LOGINS,
        window_s: float = FAILED_LOGIN_WINDOW_S,
        summary_s: float = FAILED_LOGIN_SUMMARY_S,
        max_addresses: int = MAX_TRACKED_ADDRESSES,
        clock: Callable[[], float],
    ) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.summary_s = summary_s
        self.max_addresses = max_addresses
        self.clock = clock
        self._tracked: OrderedDict[str, _Tracked] = OrderedDict()  # least recently seen first

    def __len__(self) -> int:
        return len(self._tracked)

    def retry_after(self, address: str) -> float | None:
        """Seconds until ``address`` may log in again; None when it may try now."""
        tracked = self._tracked.get(address)
        if tracked is None or tracked.failures < self.max_failures:
            return None
        left = tracked.window_start + self.window_s - self.clock()
        return left if left > 0 else None

    def failed(self, address: str) -> bool:
        """Count wrong credentials from ``address``; True when it is the first refusal of it
        to log (it was not tracked)."""
        now = self.clock()
        tracked, new = self._seen(address, now)
        if tracked.failures == 0 or now - tracked.window_start >= self.window_s:
            tracked.window_start, tracked.failures = now, 0  # a window starts at a failure
        tracked.failures += 1
        if not new:
            tracked.unreported += 1
        return new

    def refused_unchecked(self, address: str) -> None:
        """Count an attempt refused while ``address`` must wait (:meth:`retry_after`)."""
        tracked, _ = self._seen(address, self.clock())
        tracked.unreported += 1
        tracked.unchecked += 1

    def succeeded(self, address: str) -> None:
        """Right credentials from ``address``: its wrong ones no longer count."""
        tracked = self._tracked.get(address)
        if tracked is not None:
            tracked.failures = 0

    def summaries(self, *, all_pending: bool = False) -> list[FailedLoginSummary]:
        """The refusals not logged yet of each address last logged ``summary_s`` ago or more
        (``all_pending``: of every address, at shutdown); forgets addresses quiet for a whole
        window with nothing left to log."""
        now = self.clock()
        due = []
        for address, tracked in list(self._tracked.items()):
            if tracked.unreported and (all_pending or now - tracked.reported_at >= self.summary_s):
                due.append(FailedLoginSummary(address, tracked.unreported, tracked.unchecked,
                                              now - tracked.reported_at))  # fmt: skip
                tracked.reported_at, tracked.unreported, tracked.unchecked = now, 0, 0
            elif not tracked.unreported and now - tracked.last_seen >= self.window_s:
                del self._tracked[address]
        return due

    def next_summary_in(self) -> float | None:
        """Seconds until :meth:`summaries` has something to hand out; None when nothing is
        waiting to be logged."""
        waiting = [t.reported_at for t in self._tracked.values() if t.unreported]
        if not waiting:
            return None
        return max(0.0, min(waiting) + self.summary_s - self.clock())

    def _seen(self, address: str, now: float) -> tuple[_Tracked, bool]:
        tracked = self._tracked.get(address)
        if tracked is not None:
            tracked.last_seen = now
            self._tracked.move_to_end(address)
            return tracked, False
        while len(self._tracked) >= self.max_addresses:
            self._tracked.popitem(last=False)
        tracked = self._tracked[address] = _Tracked(window_start=now, last_seen=now,
                                                    reported_at=now)  # fmt: skip
        return tracked, True
