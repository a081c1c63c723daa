"""The caller's language: one module per language, one :class:`Language` object each.

``language_for(script.language)`` gives the tables a script's dialog uses: its digits,
numbers, yes/no, filler words, end-of-turn words. English (``en``) and Russian (``ru``) have
modules; any other code gets :data:`NEUTRAL` (numerals only, no words: see ``base``).

Adding a language: write ``lang/<code>.py`` with the functions and tables a
:class:`Language` holds (``en.py`` and ``ru.py`` show them), build its ``Language`` object at
the bottom, and add it to :data:`LANGUAGES` here; then give it table-driven tests in
``tests/unit/dialog/lang/test_<code>.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from .base import NEUTRAL, Language
from .en import ENGLISH
from .ru import RUSSIAN

# By primary language subtag ("en" of "en-US").
LANGUAGES: Mapping[str, Language] = MappingProxyType({"en": ENGLISH, "ru": RUSSIAN})


def language_for(code: str) -> Language:
    """The tables for a language code: "en", "en-US", "ru", "ru_RU", "RU" by their primary
    subtag; :data:`NEUTRAL` for a language without a module."""
    primary = code.strip().replace("_", "-").split("-")[0].lower()
    return LANGUAGES.get(primary, NEUTRAL)


__all__ = ["ENGLISH", "LANGUAGES", "NEUTRAL", "RUSSIAN", "Language", "language_for"]
