"""Who may use the console: the token, then a session cookie, and a CSRF token per session.

Like Jupyter: ``voicebot run`` prints a login URL with ``http.token`` once; opening it (or
posting the token in the login form) starts a session: an HttpOnly, SameSite=Strict cookie
holding a random session id, and a redirect to a URL without the token, so the token stays out
of the browser's history and the server's logs. Scripts may send ``Authorization: Bearer
<token>`` instead of a cookie. Every state-changing request is a POST that carries the
session's CSRF token (header ``X-CSRF-Token`` or form field ``csrf``).

The decisions are pure (:class:`Sessions` takes the time as an argument); ``console.app``
applies them to aiohttp requests.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from enum import Enum

COOKIE_NAME = "voicebot_console"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf"
# A session unused for this long is gone: a console left open on a shared screen overnight
# should not stay logged in. A page polls or streams while it is open, which keeps it alive.
IDLE_TIMEOUT_S = 12 * 3600
# However it is used, a session ends after this long.
MAX_AGE_S = 7 * 24 * 3600
# Sessions at once; the oldest goes first (every login makes one, and logins are not
# limited otherwise).
MAX_SESSIONS = 100


@dataclass
class Session:
    id: str
    csrf: str
    created: float
    last_seen: float


class Access(Enum):
    ALLOWED = "allowed"
    NO_CREDENTIALS = "no credentials"
    WRONG_TOKEN = "wrong token"
    SESSION_EXPIRED = "session expired or unknown"


def token_matches(given: str, token: str) -> bool:
    """Constant time, so the answer's timing does not tell how much of a guess was right."""
    return bool(token) and hmac.compare_digest(given.strip().encode(), token.encode())


class Sessions:
    """The console's logged-in browsers, in memory: a restart logs everyone out (the login
    URL is printed again)."""

    def __init__(self, token: str) -> None:
        if not token:
            raise ValueError("the console needs http.token")
        self._token = token
        self._sessions: dict[str, Session] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def login(self, given_token: str, now: float) -> Session | None:
        """A new session for the right token, None for a wrong one."""
        if not token_matches(given_token, self._token):
            return None
        self._expire(now)
        while len(self._sessions) >= MAX_SESSIONS:
            oldest = min(self._sessions.values(), key=lambda s: s.last_seen)
            del self._sessions[oldest.id]
        session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), now, now)
        self._sessions[session.id] = session
        return session

    def logout(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)

    def check(
        self, *, cookie: str | None, bearer: str | None, now: float
    ) -> tuple[Access, Session | None]:
        """Whether a request may read the console: a live session cookie or the token as a
        bearer. A request with a bearer token has no session (and needs no CSRF token: a
        browser never adds an Authorization header by itself)."""
        if bearer is not None:
            allowed = token_matches(bearer, self._token)
            return (Access.ALLOWED if allowed else Access.WRONG_TOKEN), None
        if not cookie:
            return Access.NO_CREDENTIALS, None
        session = self._sessions.get(cookie)
        if session is None or self._expired(session, now):
            self._sessions.pop(cookie, None)
            return Access.SESSION_EXPIRED, None
        session.last_seen = now
        return Access.ALLOWED, session

    @staticmethod
    def csrf_ok(session: Session | None, given: str | None) -> bool:
        """A POST from a session must carry its CSRF token; one with the bearer token (no
        session) needs none."""
        if session is None:
            return True
        return given is not None and hmac.compare_digest(given.encode(), session.csrf.encode())

    def _expired(self, session: Session, now: float) -> bool:
        return now - session.last_seen > IDLE_TIMEOUT_S or now - session.created > MAX_AGE_S

    def _expire(self, now: float) -> None:
        for session in [s for s in self._sessions.values() if self._expired(s, now)]:
            del self._sessions[session.id]
