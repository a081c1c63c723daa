"""English digits, numbers and yes/no, for callers that do not know a script's language.

The tables and parsers live in ``lang/en.py`` (each language has its module there); code that
knows the script's language asks ``lang.language_for(script.language)`` instead.
"""

from __future__ import annotations

from .lang.en import parse_digits, parse_number, parse_yes_no, speak_digits

__all__ = ["parse_digits", "parse_number", "parse_yes_no", "speak_digits"]
