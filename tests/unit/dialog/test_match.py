"""Matching what the caller said to an intent's phrases."""

from __future__ import annotations

import pytest

from voicebot.dialog.match import best_match, phrase_score


def test_match_tolerates_case_punctuation_fillers_and_asr_slips() -> None:
    assert phrase_score("telephone number", "Caliphone number.") >= 0.8
    assert phrase_score("hours", "Um, the HOURS please!") == 1.0
    assert phrase_score("hours", "our") < 0.8
    intents = [("short", ["account"]), ("long", ["check my account"])]
    match = best_match("I want to check my account", intents)
    assert match is not None and match.intent == "long"
    assert best_match("pizza", intents) is None


@pytest.mark.parametrize(("heard", "phrase"), [("Yeah.", "yes"), ("Yep!", "yes"), ("Nope", "no")])
def test_colloquial_yes_and_no_match_the_plain_words(heard: str, phrase: str) -> None:
    assert phrase_score(phrase, heard) == 1.0


@pytest.mark.parametrize(
    ("heard", "phrase"),
    [
        ("can I come by on Sunday morning", "bye"),  # took as goodbye, it hung up
        ("it's not at my door", "no"),
        ("ага, да", "нет"),
    ],
)
def test_a_short_word_one_letter_off_is_another_word(heard: str, phrase: str) -> None:
    assert phrase_score(phrase, heard) < 0.8


def test_a_longer_word_one_letter_off_is_still_forgiven() -> None:
    assert phrase_score("hours", "hour") >= 0.8
    assert phrase_score("баланс", "баланса") >= 0.8


def test_phrases_in_other_scripts_match() -> None:
    assert phrase_score("네", "네.") == 1.0
    assert phrase_score("до свидания", "До свидания!") == 1.0
    assert phrase_score("grüß gott", "Grüß Gott") == 1.0
