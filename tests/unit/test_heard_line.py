"""The real-call tests' loose check of what the caller heard (tests/e2e/helpers.heard_line)."""

from __future__ import annotations

import pytest

from tests.e2e.helpers import heard_line

ACCOUNT = "Please say or type your four digit account number."  # bank.yaml


@pytest.mark.parametrize(
    ("heard", "line", "expected"),
    [
        ("please say or type your 4 digit account number", ACCOUNT, True),
        # Seen on another CPU: two words misheard, the line is still plainly this one.
        ("Please say or type your 4-bitch of the count number", ACCOUNT, True),
        ("please say or type your", ACCOUNT, False),  # cut after half of it
        ("you said 4 2 1 7 is that right", ACCOUNT, False),  # another line
        ("", ACCOUNT, False),
        ("number account type say please", ACCOUNT, False),  # not in order
        ("anything", "", False),
    ],
)
def test_heard_line(heard: str, line: str, expected: bool) -> None:
    assert heard_line(heard, line) is expected
