"""Callers' words in log lines: shown, or only their shape.

Callers of a bank or a clinic say and key account numbers, PINs and card numbers, and the
bot reads them back. A log line that carries such text (what the caller said or keyed, a slot
value, a prompt the bot rendered, a caller's number) passes it through ``caller_text``: the
text itself when ``log.transcripts`` is true or the logger is at DEBUG, else only its shape
(``<4 digits>``, ``<3 words, 14 chars>``), which still tells a reader whether the recognizer
heard anything and how much.
"""

from __future__ import annotations

import logging
import re

# A key as the turn core writes it into the transcript: "#" and the digit ("#4", "#*").
_KEY = re.compile(r"#[0-9A-D*#]")
# Digits however a recognizer or a caller groups them: "4217", "4 2 1 7", "4, 2, 1, 7.",
# "555-0100", "+1 (555) 0100".
_DIGITS = re.compile(r"[\d\s,.;:()+*#/-]*\d[\d\s,.;:()+*#/-]*")


def _counted(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def is_key(text: str) -> bool:
    """Whether a transcript's ``text`` is a key the caller pressed ("#4")."""
    return _KEY.fullmatch(text.strip()) is not None


def shape(text: str) -> str:
    """What a log line may say of text it must not show: its kind and size."""
    stripped = text.strip()
    if not stripped:
        return "<nothing>"
    if is_key(stripped):
        return "<a key>"
    if _DIGITS.fullmatch(stripped):
        return f"<{_counted(sum(c.isdigit() for c in stripped), 'digit')}>"
    return f"<{_counted(len(stripped.split()), 'word')}, {_counted(len(stripped), 'char')}>"


def shows_caller_text(logger: logging.Logger, *, transcripts: bool = False) -> bool:
    """Whether ``logger``'s lines may show what callers said: ``log.transcripts`` is true, or
    the logger writes DEBUG (whoever turns DEBUG on asked for everything)."""
    return transcripts or logger.isEnabledFor(logging.DEBUG)


def caller_text(text: str, logger: logging.Logger, *, transcripts: bool = False) -> str:
    """``text`` for a line of ``logger``: quoted when it may be shown, else its ``shape``.

    Code that is not told ``log.transcripts`` (the speech engines, shared by every call)
    leaves it false: their lines show the words at DEBUG only."""
    return repr(text) if shows_caller_text(logger, transcripts=transcripts) else shape(text)


def caller_text_level(*, transcripts: bool = False) -> int:
    """The level of a line that exists only to show caller text (a prompt that reads back
    a slot): INFO with ``log.transcripts``, else DEBUG."""
    return logging.INFO if transcripts else logging.DEBUG
