"""dialog.meaning: which intent the caller's words mean, decided on hand-made vectors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from voicebot.dialog.lang import ENGLISH, LANGUAGES, NEUTRAL, RUSSIAN, Language
from voicebot.dialog.meaning import (
    CARRIED_WORDS,
    MARGIN,
    MIN_WORDS,
    NON_ANSWERS,
    THRESHOLD,
    MeaningMatch,
    PhraseVectors,
    asks_yes_or_no,
    menu_forms,
    phrase_forms,
    says_no,
    understand,
)


def unit(*values: float) -> np.ndarray:
    vector = np.array(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def at(cosine: float) -> np.ndarray:
    """A unit vector whose cosine with (1, 0, 0) is ``cosine`` (the rest on the third axis)."""
    return np.array([cosine, 0.0, math.sqrt(1 - cosine**2)], dtype=np.float32)


# Three intents on three axes; "hours" has two phrases.
MENU = PhraseVectors.build(
    [("hours", ["hours", "when are you open"]), ("address", ["address"]), ("bye", ["bye"])],
    np.stack([unit(1, 0, 0), unit(1, 0.2, 0), unit(0, 1, 0), unit(0, 0, 1)]),
)


@pytest.mark.parametrize(
    ("words", "intent", "phrase", "why"),
    [
        # On the hours axis: its closer phrase is the one named.
        (unit(1, 0.1, 0), "hours", "when are you open", "'hours' by meaning score 1.00"),
        (unit(1, 0, 0), "hours", "hours", "'hours' by meaning score 1.00 margin 1.00"),
        # Between hours and address (0.78 and 0.77): no intent.
        (unit(0.8, 1, 0), None, None, "best 'address' score 0.78 is within 0.10 of 'hours'"),
        # Away from every phrase.
        (unit(-1, -1, -1), None, None, "under the threshold 0.40"),
    ],
)
def test_the_closest_intent_is_taken_only_when_clear(
    words: np.ndarray, intent: str | None, phrase: str | None, why: str
) -> None:
    decision = understand(words, MENU, threshold=0.4, margin=0.1)
    assert (decision.match.intent if decision.match else None) == intent
    assert (decision.match.phrase if decision.match else None) == phrase
    assert why in decision.reason
    assert decision.best is not None  # the closest intent, taken or not


@pytest.mark.parametrize(
    ("cosine", "threshold", "taken"),
    [(0.55, 0.5, True), (0.5, 0.5, True), (0.45, 0.5, False), (0.0, 0.5, False)],
)
def test_the_threshold_is_on_the_best_cosine(cosine: float, threshold: float, taken: bool) -> None:
    menu = PhraseVectors.build(
        [("a", ["x"]), ("b", ["y"])], np.stack([unit(1, 0, 0), unit(0, 1, 0)])
    )
    decision = understand(at(cosine), menu, threshold=threshold, margin=0.0)
    assert (decision.match is not None) is taken
    assert decision.best is not None and decision.best.score == pytest.approx(cosine, abs=1e-4)


@pytest.mark.parametrize(
    ("second", "margin", "taken"),
    [(0.0, 0.1, True), (0.65, 0.1, True), (0.75, 0.1, False), (0.7, 0.1, True)],
)
def test_the_margin_is_over_the_next_intents_best(
    second: float, margin: float, taken: bool
) -> None:
    # The words at 0.8 from intent a; intent b's phrase at ``second`` from them.
    words = unit(1, 0, 0)
    b = np.array([second, math.sqrt(1 - second**2), 0], dtype=np.float32)
    menu = PhraseVectors.build([("a", ["x"]), ("b", ["y"])], np.stack([at(0.8), b]))
    decision = understand(words, menu, threshold=0.5, margin=margin)
    assert (decision.match is not None) is taken, decision.reason
    assert decision.best is not None
    assert decision.best.margin == pytest.approx(0.8 - second, abs=1e-4)


def test_an_intent_alone_in_its_menu_is_measured_against_nothing() -> None:
    menu = PhraseVectors.build([("only", ["x"])], np.stack([unit(1, 0, 0)]))
    decision = understand(at(0.6), menu, threshold=0.5, margin=0.1)
    assert decision.match == MeaningMatch("only", "x", 0.6, 0.6)
    assert "margin 0.60" in decision.reason
    # An opposite second intent counts as 0, not as a negative score.
    menu = PhraseVectors.build(
        [("a", ["x"]), ("b", ["y"])], np.stack([unit(1, 0, 0), unit(-1, 0, 0)])
    )
    assert understand(at(0.6), menu, 0.5, 0.1).match == MeaningMatch("a", "x", 0.6, 0.6)


@pytest.mark.parametrize(
    ("non_answer", "taken"),
    [(unit(0, 0, 1), True), (at(0.7), True), (at(0.9), False), (unit(1, 0, 0), False)],
)
def test_words_as_close_to_a_non_answer_are_no_answer(non_answer: np.ndarray, taken: bool) -> None:
    # The words (1, 0, 0) are at 0.8 from intent a; a non-answer as close or closer wins.
    menu = PhraseVectors.build([("a", ["x"]), ("b", ["y"])], np.stack([at(0.8), unit(0, 1, 0)]))
    others = PhraseVectors(("",), ("hold on",), np.stack([non_answer]))
    decision = understand(unit(1, 0, 0), menu, threshold=0.5, margin=0.1, non_answers=others)
    assert (decision.match is not None) is taken, decision.reason
    assert decision.non_answer is not None
    if not taken:
        assert "no closer than the non-answer 'hold on'" in decision.reason


def test_unnormalised_and_zero_vectors_are_handled() -> None:
    menu = PhraseVectors.build(
        [("a", ["x"]), ("b", ["y"])], np.array([[3.0, 0, 0], [0, 0.5, 0]], dtype=np.float32)
    )
    assert understand(np.array([10.0, 0, 0]), menu, 0.5, 0.1).match == MeaningMatch(
        "a", "x", 1.0, 1.0
    )
    decision = understand(np.zeros(3), menu, 0.5, 0.1)
    assert decision.match is None and "under the threshold" in decision.reason


def test_a_menu_without_phrases_and_a_misshapen_table() -> None:
    empty = PhraseVectors((), (), np.zeros((0, 3), dtype=np.float32))
    assert understand(unit(1, 0, 0), empty).reason == "no phrases to compare with"
    with pytest.raises(ValueError, match="2 intents and 2 phrases for vectors of shape"):
        PhraseVectors(("a", "b"), ("x", "y"), np.zeros((3, 3)))


def test_the_log_line_names_intent_score_and_margin() -> None:
    match = MeaningMatch("hours", "when are you open", 0.7137, 0.2)
    assert match.describe() == "'hours' by meaning score 0.71 margin 0.20"


def test_the_bars_are_round_and_the_non_answers_cover_both_languages() -> None:
    assert THRESHOLD * 20 == round(THRESHOLD * 20) and MARGIN * 20 == round(MARGIN * 20)
    assert 0 < MARGIN < THRESHOLD < 1 and MIN_WORDS >= 2
    assert {"hold on", "I don't know", "подождите", "не знаю"} <= set(NON_ANSWERS)
    assert len(set(NON_ANSWERS)) == len(NON_ANSWERS)


@pytest.mark.parametrize(
    ("text", "negated"),
    [
        ("please don't", True),
        ("that is not it", True),
        ("No.", True),
        ("I can't make it", True),
        ("не надо", True),
        ("Нет, спасибо", True),
        ("please do", False),
        ("go for it", False),
        ("notice the knot", False),  # words, not letters
        ("да, конечно", False),
    ],
)
def test_says_no_finds_a_negation_word(text: str, negated: bool) -> None:
    assert says_no(text) is negated


# "yes" has no phrase that says no; "no" has one that does and one that does not.
YES_NO = PhraseVectors.build(
    [("yes", ["yes", "please do"]), ("no", ["no", "keep it"]), ("never", ["never", "not ever"])],
    np.stack(
        [
            unit(1, 0, 0),
            unit(1, 0.1, 0),
            unit(0, 1, 0),
            unit(0, 1, 0.1),
            unit(0, 0, 1),
            unit(0, 0.1, 1),
        ]
    ),
)


@pytest.mark.parametrize(
    ("words", "negated", "intent", "why"),
    [
        (unit(1, 0.05, 0), False, "yes", "by meaning"),
        (unit(1, 0.05, 0), None, "yes", "by meaning"),  # not checked
        (unit(1, 0.05, 0), True, None, "'yes' score 1.00: the words say no, none of its phrases"),
        (unit(0, 1, 0.05), True, "no", "by meaning"),
        (unit(0, 1, 0.05), False, "no", "by meaning"),
        (unit(0, 0.05, 1), False, None, "all its phrases say no, the words do not"),
    ],
)
def test_words_that_say_no_go_only_to_an_intent_with_a_phrase_that_does(
    words: np.ndarray, negated: bool | None, intent: str | None, why: str
) -> None:
    decision = understand(words, YES_NO, threshold=0.4, margin=0.1, negated=negated)
    assert (decision.match.intent if decision.match else None) == intent
    assert why in decision.reason
    assert decision.clash is (intent is None)


# -- one-word phrases carried in sentences ----------------------------------------------------


@pytest.mark.parametrize(
    ("phrase", "carriers", "forms"),
    [
        ("hours", ENGLISH.meaning_carriers,
         ("hours", "I would like hours", "hours, please", "what about hours")),
        ("часы", RUSSIAN.meaning_carriers,
         ("часы", "мне нужно часы", "часы, пожалуйста", "скажите часы")),
        # A phrase of more words is a sentence already: carried, intents drew together.
        ("opening hours", ENGLISH.meaning_carriers, ("opening hours",)),
        ("what are your opening times", ENGLISH.meaning_carriers,
         ("what are your opening times",)),
        # A language without carriers (the neutral fallback): the phrase alone.
        ("hours", NEUTRAL.meaning_carriers, ("hours",)),
        ("please", ("{phrase}, please",), ("please", "please, please")),
        ("x", ("{phrase}", "say {phrase}", "say {phrase}"), ("x", "say x")),  # each form once
    ],
)  # fmt: skip
def test_one_word_phrases_are_also_carried_in_sentences(
    phrase: str, carriers: tuple[str, ...], forms: tuple[str, ...]
) -> None:
    assert phrase_forms(phrase, carriers) == forms


def test_a_carrier_without_its_place_for_the_phrase_is_refused() -> None:
    with pytest.raises(ValueError, match=r"'I would like' does not hold \{phrase\}"):
        phrase_forms("hours", ["I would like"])


def test_the_languages_carry_single_words_in_their_own_sentences() -> None:
    assert CARRIED_WORDS == 1 and NEUTRAL.meaning_carriers == ()
    for language in LANGUAGES.values():
        assert len(language.meaning_carriers) >= 2, language
        assert all(carrier.count("{phrase}") == 1 for carrier in language.meaning_carriers)
        assert not any(says_no(carrier) for carrier in language.meaning_carriers), language


def test_a_phrases_forms_are_rows_of_its_intent_named_by_the_phrase() -> None:
    menu = [("hours", ["hours", "opening hours"]), ("bye", ["bye"])]
    carriers = ["{phrase}, please"]
    assert menu_forms(menu, carriers) == [
        ("hours", "hours", "hours"),
        ("hours", "hours", "hours, please"),
        ("hours", "opening hours", "opening hours"),
        ("bye", "bye", "bye"),
        ("bye", "bye", "bye, please"),
    ]
    # The carried "hours, please" is the closest row: its intent is taken, its phrase named.
    vectors = np.stack([unit(1, 0, 0.5), at(1.0), unit(1, 0, 1), unit(0, 1, 0), unit(0, 1, 0.2)])
    table = PhraseVectors.build(menu, vectors, carriers)
    assert table.phrases == ("hours", "hours", "opening hours", "bye", "bye")
    decision = understand(unit(1, 0, 0), table, threshold=0.9, margin=0.1)
    assert decision.match == MeaningMatch("hours", "hours", 1.0, 1.0)
    with pytest.raises(ValueError, match="3 intents and 3 phrases for vectors of shape"):
        PhraseVectors.build(menu, vectors)  # five rows for the three phrases uncarried


@pytest.mark.parametrize(
    ("menu", "language", "polar"),
    [
        # A confirmation: a yes and a no.
        ((("yes", ("yes", "correct")), ("no", ("no", "wrong"))), ENGLISH, True),
        ((("yes", ("да", "верно")), ("no", ("нет", "неверно"))), RUSSIAN, True),
        # "anything else?": goodbye holds a "no", nothing holds a yes: a "not" is no answer.
        ((("address", ("address",)), ("goodbye", ("goodbye", "no"))), ENGLISH, False),
        ((("menu", ("menu", "yes")), ("goodbye", ("goodbye", "no"))), ENGLISH, True),
        # A yes and a no inside one intent are no question between two.
        ((("answer", ("yes", "no")), ("other", ("operator",))), ENGLISH, False),
        ((("track", ("tracking",)), ("operator", ("agent",))), ENGLISH, False),
        # Without a language's words nothing reads as yes or no.
        ((("yes", ("yes",)), ("no", ("no",))), NEUTRAL, False),
    ],
)
def test_a_menu_asks_yes_or_no_when_one_intent_is_a_yes_and_another_a_no(
    menu: tuple[tuple[str, tuple[str, ...]], ...], language: Language, polar: bool
) -> None:
    assert asks_yes_or_no(menu, language.parse_yes_no) is polar
