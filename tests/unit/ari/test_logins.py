"""The failed-login limit of the per-call ARI WebSockets, on a fake clock: when an address
must wait, what is logged when, per address (IPv6 by its /64), memory bounded."""

from __future__ import annotations

from typing import Any

import pytest

from voicebot.ari.logins import FailedLogins, FailedLoginSummary, client_key


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


# One step: (time, what, address, expected). What: "fail" (expected: whether it is the first
# refusal to log), "ok", "unchecked", "wait" (expected: retry_after), "summaries" (expected:
# (address, refused, unchecked, span) of each), "tracked" (expected: how many addresses).
Step = tuple[float, str, str, Any]
A, B, C, D = "192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"

LIMITER_CASES: dict[str, list[Step]] = {
    "five failures and the address waits out the window": [
        (0, "fail", A, True), (1, "fail", A, False), (2, "fail", A, False),
        (3, "fail", A, False), (3.5, "wait", A, None), (4, "fail", A, False),
        (4, "wait", A, 56.0), (59.5, "wait", A, 0.5), (60, "wait", A, None),
        (60, "fail", A, False), (60, "wait", A, None),  # a new window: one failure in it
    ],
    "other addresses are not held up": [
        *[(t, "fail", A, t == 0) for t in range(5)],
        (5, "wait", A, 55.0), (5, "wait", B, None), (5, "ok", B, None),
        (6, "fail", B, True), (6, "wait", B, None),
    ],
    "a right login clears the address's count": [
        *[(t, "fail", A, t == 0) for t in range(4)],
        (4, "ok", A, None),
        *[(t, "fail", A, False) for t in range(5, 9)],
        (9, "wait", A, None), (10, "fail", A, False), (10, "wait", A, 55.0),
    ],
    "failures spread over more than a window are never held up": [
        *[(t, "fail", A, t == 0) for t in (0, 15, 30, 45, 61, 76, 91, 106, 122)],
        (122, "wait", A, None),
    ],
    "at most one summary per address and interval": [
        (0, "fail", A, True), (1, "fail", A, False), (2, "fail", A, False),
        (30, "summaries", "", []),
        (40, "fail", B, True), (41, "fail", B, False),
        (60, "summaries", "", [(A, 2, 0, 60.0)]),
        (61, "fail", A, False), (62, "summaries", "", []),
        (100, "summaries", "", [(B, 1, 0, 60.0)]),
        (120, "summaries", "", [(A, 1, 0, 60.0)]),
    ],
    "refusals while waiting are counted, not checked": [
        *[(t, "fail", A, t == 0) for t in range(5)],
        *[(5 + i / 100, "unchecked", A, None) for i in range(995)],
        (60, "summaries", "", [(A, 999, 995, 60.0)]),
    ],
    "a quiet address is forgotten once all is logged": [
        (0, "fail", A, True), (1, "fail", A, False), (2, "tracked", "", 1),
        (60, "summaries", "", [(A, 1, 0, 60.0)]), (60, "tracked", "", 1),
        (61, "summaries", "", []), (61, "tracked", "", 0),
        (62, "fail", A, True),  # logged again, as a new address
    ],
    "the least recently seen address is dropped past the cap": [
        (0, "fail", A, True), (1, "fail", B, True), (2, "fail", C, True),
        (3, "fail", A, False), (4, "fail", D, True), (4, "tracked", "", 3),
        (5, "fail", B, True),  # B was dropped (A was seen again): new again
        (6, "fail", A, False),
    ],
}  # fmt: skip


@pytest.mark.parametrize("steps", LIMITER_CASES.values(), ids=LIMITER_CASES.keys())
def test_the_failed_login_limiter(steps: list[Step]) -> None:
    clock = Clock()
    logins = FailedLogins(max_failures=5, window_s=60, summary_s=60, max_addresses=3, clock=clock)
    for at, what, address, expected in steps:
        clock.now = at
        where = f"{what} {address} at {at}"
        if what == "fail":
            assert logins.failed(address) is expected, where
        elif what == "ok":
            logins.succeeded(address)
        elif what == "unchecked":
            assert logins.retry_after(address) is not None, where
            logins.refused_unchecked(address)
        elif what == "wait":
            assert logins.retry_after(address) == expected, where
        elif what == "summaries":
            got = [(s.address, s.refused, s.unchecked, s.span_s) for s in logins.summaries()]
            assert got == expected, where
        else:
            assert len(logins) == expected, where


def test_when_the_next_summary_is_due() -> None:
    clock = Clock()
    logins = FailedLogins(summary_s=60, clock=clock)
    assert logins.next_summary_in() is None
    logins.failed(A)  # logged at once: nothing waits
    assert logins.next_summary_in() is None
    clock.now = 10
    logins.failed(A)
    assert logins.next_summary_in() == 50
    clock.now = 75
    assert logins.next_summary_in() == 0
    assert [str(s) for s in logins.summaries()] == [
        f"ARI WebSocket: 1 failed logins from {A} in the last 75 s"
    ]
    assert logins.next_summary_in() is None
    assert str(FailedLoginSummary(A, 12, 7, 59.6)) == (
        f"ARI WebSocket: 12 failed logins from {A} in the last 60 s (7 of them refused unchecked)"
    )


@pytest.mark.parametrize(
    ("remote", "key"),
    [
        ("203.0.113.9", "203.0.113.9"),
        ("2001:db8::5", "2001:db8::/64"),
        ("2001:db8:0:0:ffff::1", "2001:db8::/64"),  # the same /64: one key
        ("2001:db8:0:1::1", "2001:db8:0:1::/64"),
        ("::ffff:203.0.113.9", "203.0.113.9"),
        (None, "(unknown address)"),
        ("not-an-address", "not-an-address"),
    ],
)
def test_failed_logins_are_counted_per_address_or_ipv6_64(remote: str | None, key: str) -> None:
    assert client_key(remote) == key
