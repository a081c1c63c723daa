"""call.parts: the words of a turn from whole-turn transcripts and parts decoded alone."""

from __future__ import annotations

import pytest

from voicebot.call.parts import TurnParts, has_words

Result = tuple[int, str, float | None, bool]  # part, text, confidence, cumulative (whole turn)


def parts_with(pitched: list[float], results: list[Result]) -> TurnParts:
    parts = TurnParts()
    for n, pitched_s in enumerate(pitched):
        parts.add(10 + n, pitched_s)
    for index, text, confidence, cumulative in results:
        assert parts.transcribed(index, 10 + index, text, confidence, cumulative=cumulative)
    return parts


@pytest.mark.parametrize(
    ("pitched", "results", "text"),
    [
        ([1.0], [(0, " my balance ", None, True)], "my balance"),
        # Parts alone, joined; a recognizer's guess that the sentence ended at the pause is
        # dropped, the last one's stays.
        ([1.0, 1.0], [(0, "I would like.", 0.5, False), (1, "an extension.", 0.6, False)],
         "I would like an extension."),
        ([1.0, 1.0], [(1, "hours?", None, False), (0, "What are your?", None, False)],
         "What are your hours?"),
        # The latest whole-turn transcript stands for the parts it covers.
        ([1.0, 1.0, 1.0], [(0, "i would", None, True), (1, "i would like", None, True),
                           (2, "my balance", None, False)], "i would like my balance"),
        ([1.0, 1.0, 1.0], [(0, "um", None, False), (1, "three five", None, True),
                           (2, "eight", None, False)], "three five eight"),
        # No word: no letters or digits, too low a score, or too little pitched voice.
        ([1.0, 1.0, 1.0], [(0, "...", None, False), (1, "You", 0.009, False),
                           (2, "operator", None, False)], "operator"),
        ([0.0, 1.0], [(0, "Thank you.", 0.4, False), (1, "four two", None, False)], "four two"),
        ([0.0], [(0, "Thank you.", 0.4, True)], ""),
        # ... a whole-turn transcript's pitch is the pitch of all it covers.
        ([0.03, 0.04], [(0, "", None, True), (1, "yes", None, True)], "yes"),
    ],
)  # fmt: skip
def test_the_turns_words(pitched: list[float], results: list[Result], text: str) -> None:
    assert parts_with(pitched, results).text() == text


@pytest.mark.parametrize(
    "results",
    [
        [(1, "balance", None, False)],  # part 0 is not in
        [(0, "my", None, True), (0, "my", None, False)],  # nor part 1
        [(2, "hello", None, True)],  # an older whole-turn transcript ...
    ],
)
def test_the_words_wait_for_every_transcript_they_need(results: list[Result]) -> None:
    parts = parts_with([1.0, 1.0, 1.0, 1.0], results)
    assert parts.text() is None  # ... still needs part 3
    assert parts.tail_text(3) is None


def test_the_last_part_alone_after_the_words_before_it() -> None:
    parts = parts_with([1.0, 1.0], [(0, "I would like.", None, True),
                                    (1, "I would like my mountains.", None, True)])  # fmt: skip
    assert parts.text() == "I would like my mountains."
    assert parts.tail_text(1) is None  # not decoded alone yet
    assert parts.transcribed(1, 11, "My balance.", None)
    assert parts.tail_text(1) == "I would like My balance."
    assert parts.text() == "I would like my mountains."  # the whole turn's still
    assert parts_with([1.0], [(0, "balance", None, False)]).tail_text(0) is None  # one part


@pytest.mark.parametrize(("index", "number"), [(2, 12), (-1, 9), (0, 11), (1, 10)])
def test_a_result_for_no_part_of_this_turn_is_refused(index: int, number: int) -> None:
    parts = parts_with([1.0, 1.0], [])
    assert not parts.transcribed(index, number, "hello", None)
    assert parts.text() is None


def test_what_is_a_word() -> None:
    assert has_words("a", None) and has_words("4", 0.05)
    assert not has_words(" . ", None) and not has_words("You", 0.009)
