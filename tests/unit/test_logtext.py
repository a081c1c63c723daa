"""Callers' words in log lines: their shape at INFO, the words at DEBUG or with log.transcripts."""

from __future__ import annotations

import logging

import pytest

from voicebot.logtext import caller_text, caller_text_level, is_key, shape


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4217", "<4 digits>"),
        ("4 2 1 7", "<4 digits>"),
        ("4, 2, 1, 7.", "<4 digits>"),
        ("+1 (555) 010-0123", "<11 digits>"),
        ("7", "<1 digit>"),
        ("#4", "<a key>"),
        ("#*", "<a key>"),
        ("check my balance", "<3 words, 16 chars>"),
        ("four two one seven", "<4 words, 18 chars>"),
        ("my account is 4217", "<4 words, 18 chars>"),
        ("yes", "<1 word, 3 chars>"),
        ("Öffnungszeiten", "<1 word, 14 chars>"),
        ("", "<nothing>"),
        ("   ", "<nothing>"),
    ],
)
def test_the_shape_tells_kind_and_size_and_never_a_digit_or_word(text: str, expected: str) -> None:
    assert shape(text) == expected
    assert text.strip() not in expected.strip("<>") or not text.strip()


def test_keys_are_recognized_as_the_turn_core_writes_them() -> None:
    assert is_key("#4") and is_key("#0") and is_key("##") and is_key("#D")
    assert not is_key("#") and not is_key("4") and not is_key("#42") and not is_key("hash 4")


def test_at_info_only_the_shape_is_shown_unless_log_transcripts() -> None:
    logger = logging.getLogger("tests.logtext.info")
    logger.setLevel(logging.INFO)
    assert caller_text("4217", logger) == "<4 digits>"
    assert caller_text("4217", logger, transcripts=True) == "'4217'"


def test_a_logger_at_debug_shows_the_words() -> None:
    logger = logging.getLogger("tests.logtext.debug")
    logger.setLevel(logging.DEBUG)
    assert caller_text("check my balance", logger) == "'check my balance'"


def test_lines_that_only_carry_caller_text_are_debug_unless_log_transcripts() -> None:
    assert caller_text_level() == logging.DEBUG
    assert caller_text_level(transcripts=True) == logging.INFO
