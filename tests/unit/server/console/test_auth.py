"""Console access decisions: the token starts a session, a session expires, a POST needs the
session's CSRF token; all without a clock or a server."""

from __future__ import annotations

import pytest

from voicebot.server.console.auth import (
    IDLE_TIMEOUT_S,
    MAX_AGE_S,
    MAX_SESSIONS,
    Access,
    Sessions,
    token_matches,
)

TOKEN = "console-test-token"


@pytest.mark.parametrize(
    "given, token, matches",
    [(TOKEN, TOKEN, True), (f" {TOKEN}\n", TOKEN, True), ("wrong", TOKEN, False),
     ("", TOKEN, False), (TOKEN[:-1], TOKEN, False), ("", "", False), ("x", "", False)],
)  # fmt: skip
def test_token_matches(given: str, token: str, matches: bool) -> None:
    assert token_matches(given, token) is matches


def test_no_console_without_a_token() -> None:
    with pytest.raises(ValueError, match=r"http\.token"):
        Sessions("")


def test_the_token_starts_a_session_a_wrong_one_none() -> None:
    sessions = Sessions(TOKEN)
    assert sessions.login("guess", now=0.0) is None
    session = sessions.login(TOKEN, now=0.0)
    assert session is not None and session.id != session.csrf
    assert sessions.check(cookie=session.id, bearer=None, now=1.0) == (Access.ALLOWED, session)


@pytest.mark.parametrize(
    "cookie, bearer, access",
    [(None, None, Access.NO_CREDENTIALS), ("", None, Access.NO_CREDENTIALS),
     ("forged-session-id", None, Access.SESSION_EXPIRED), (None, TOKEN, Access.ALLOWED),
     (None, "wrong", Access.WRONG_TOKEN), ("forged-session-id", TOKEN, Access.ALLOWED)],
)  # fmt: skip
def test_who_may_read(cookie: str | None, bearer: str | None, access: Access) -> None:
    assert Sessions(TOKEN).check(cookie=cookie, bearer=bearer, now=0.0)[0] is access


@pytest.mark.parametrize(
    "uses, at, access",
    [([], IDLE_TIMEOUT_S - 1, Access.ALLOWED), ([], IDLE_TIMEOUT_S + 1, Access.SESSION_EXPIRED),
     # Used now and then, it lives on past the idle timeout, but not past its maximum age.
     ([IDLE_TIMEOUT_S * k * 0.9 for k in range(1, 15)], IDLE_TIMEOUT_S * 13, Access.ALLOWED),
     ([IDLE_TIMEOUT_S * k * 0.9 for k in range(1, 20)], MAX_AGE_S + 1, Access.SESSION_EXPIRED)],
)  # fmt: skip
def test_sessions_expire(uses: list[float], at: float, access: Access) -> None:
    sessions = Sessions(TOKEN)
    session = sessions.login(TOKEN, now=0.0)
    assert session is not None
    for when in uses:
        if when < at:
            sessions.check(cookie=session.id, bearer=None, now=when)
    assert sessions.check(cookie=session.id, bearer=None, now=at)[0] is access


def test_an_expired_session_stays_gone() -> None:
    sessions = Sessions(TOKEN)
    session = sessions.login(TOKEN, now=0.0)
    assert session is not None
    assert (
        sessions.check(cookie=session.id, bearer=None, now=MAX_AGE_S + 1)[0] is not Access.ALLOWED
    )
    assert len(sessions) == 0
    assert sessions.check(cookie=session.id, bearer=None, now=1.0)[0] is Access.SESSION_EXPIRED


def test_logout_ends_the_session() -> None:
    sessions = Sessions(TOKEN)
    session = sessions.login(TOKEN, now=0.0)
    assert session is not None
    sessions.logout(session.id)
    assert sessions.check(cookie=session.id, bearer=None, now=1.0)[0] is Access.SESSION_EXPIRED


def test_logins_beyond_the_limit_push_out_the_least_recently_used() -> None:
    sessions = Sessions(TOKEN)
    first = sessions.login(TOKEN, now=0.0)
    assert first is not None
    for k in range(MAX_SESSIONS):
        sessions.login(TOKEN, now=1.0 + k)
    assert len(sessions) == MAX_SESSIONS
    assert sessions.check(cookie=first.id, bearer=None, now=500.0)[0] is Access.SESSION_EXPIRED


def test_a_post_from_a_session_needs_its_csrf_token() -> None:
    sessions = Sessions(TOKEN)
    one, other = sessions.login(TOKEN, now=0.0), sessions.login(TOKEN, now=0.0)
    assert one is not None and other is not None
    assert Sessions.csrf_ok(one, one.csrf)
    assert not Sessions.csrf_ok(one, None)
    assert not Sessions.csrf_ok(one, "")
    assert not Sessions.csrf_ok(one, other.csrf)
    # The bearer token (no session): a browser never sends it by itself, so no CSRF token.
    assert Sessions.csrf_ok(None, None)
