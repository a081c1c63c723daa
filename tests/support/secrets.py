"""Checks that the ARI password shows nowhere: not in exceptions, not in the bot's log."""

from __future__ import annotations

import base64
import logging
from urllib.parse import quote, quote_plus

from yarl import URL

from voicebot.config import AriConfig

PASSWORD = "Zq7 ari+pass/w@rd:K3"


def secret_forms(config: AriConfig) -> list[str]:
    """The password as typed, URL-encoded (as aiohttp's URLs and as urllib write it), and
    inside a Basic Authorization header."""
    in_query = URL("http://ari/").with_query(k=config.password).raw_query_string[2:]
    basic = base64.b64encode(f"{config.user}:{config.password}".encode()).decode()
    password = config.password
    return [password, in_query, quote(password, safe=""), quote_plus(password), basic]


def exception_texts(exc: BaseException) -> list[str]:
    """str() and repr() of ``exc`` and of every exception a traceback of it would show."""
    texts: list[str] = []
    current: BaseException | None = exc
    while current is not None:
        texts += [str(current), repr(current), *(str(a) for a in current.args)]
        shown_context = None if current.__suppress_context__ else current.__context__
        current = current.__cause__ or shown_context
    return texts


# The stand-in Asterisk's own server-side logs (its access log shows the URL it was asked
# for): those are Asterisk's, not the bot's.
SERVER_LOGGERS = ("aiohttp.access", "aiohttp.server", "aiohttp.web")


def log_texts(records: list[logging.LogRecord]) -> list[str]:
    formatter = logging.Formatter("%(name)s %(message)s")
    return [formatter.format(r) for r in records if not r.name.startswith(SERVER_LOGGERS)]


def assert_no_secret(config: AriConfig, texts: list[str]) -> None:
    for form in secret_forms(config):
        leaks = [text for text in texts if form in text]
        assert not leaks, f"{form!r} in {leaks}"
