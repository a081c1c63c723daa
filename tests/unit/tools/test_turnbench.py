"""How the endpointing bench judges a call (voicebot/tools/turnbench.py): the verdict from the
bot's transcript (in the turn's language), a greeting stopped before the caller spoke from the
packets' arrival times, the tally over seeded takes, where a turn whose takes disagree is not
handled, the script each turn is played to, and Russian answers timed against English ones."""

from __future__ import annotations

from typing import Any

import pytest

from voicebot.tools.turnbench import (
    CONDITIONS,
    Outcome,
    Verdict,
    answer_onset,
    extension_for,
    from_background,
    greeting_running,
    greeting_stopped,
    latency_comparison,
    taken_value,
    talkspurt_s,
    tally,
    tally_line,
    verdict,
)

MENU = {"kind": "menu", "answer": "hours", "background_text": None}
BEHIND = "Did you ring the operator? She gave me his extension."
BACKGROUND = {"kind": "background", "answer": "hours", "background_text": BEHIND}
DIGITS = {"kind": "digits", "answer": "421"}
YES = {"kind": "yes_no", "answer": "yes"}
NUMBER = {"kind": "number", "answer": "120"}
TEXT = {"kind": "text", "answer": "I lost my card yesterday"}
RU_MENU = {"kind": "menu", "answer": "address", "language": "ru"}
RU_DIGITS = {"kind": "digits", "answer": "0427", "language": "ru"}
RU_YES = {"kind": "yes_no", "answer": "yes", "language": "ru"}
RU_NO = {"kind": "yes_no", "answer": "no", "language": "ru"}


def bot(text: str) -> dict[str, Any]:
    return {"who": "bot", "text": text}


def caller(text: str, intent: str | None = None) -> dict[str, Any]:
    line: dict[str, Any] = {"who": "caller", "text": text}
    if intent:
        line["intent"] = intent
    return line


GREET = bot("Which service?")


@pytest.mark.parametrize(
    ("label", "transcript", "expected", "value"),
    [
        (MENU, [GREET, caller("Hours.", "hours"), bot("You chose hours.")], "right", "hours"),
        (MENU, [GREET, caller("Extension.", "extension"), bot("You chose extension.")],
         "wrong", "extension"),
        (MENU, [GREET, caller("I would like."), bot("Sorry, I didn't get that.")],
         "no-match", None),
        # Right only after the no-match line: the caller heard "Sorry".
        (MENU, [GREET, caller("I would like."), bot("Sorry, I didn't get that."),
                caller("Hours.", "hours"), bot("You chose hours.")], "no-match", "hours"),
        (MENU, [GREET, bot("Sorry, I didn't hear anything."), bot("Goodbye.")], "no-match", None),
        # The background taken for a turn of its own, then the caller's: not one clean turn.
        (BACKGROUND, [GREET, caller("press zero"), caller("Hours.", "hours"),
                      bot("You chose hours.")], "no-match", "hours"),
        (BACKGROUND, [GREET, caller("his extension hours", "extension"),
                      bot("You chose extension.")], "wrong", "extension"),
        (DIGITS, [GREET, caller("4 2 1"), bot("You said 4 2 1.")], "right", "421"),
        (DIGITS, [GREET, caller("4 2"), bot("You said 4 2 7.")], "wrong", "427"),
        (YES, [GREET, caller("Yes please."), bot("You said yes.")], "right", "yes"),
        (YES, [GREET, caller("No."), bot("You said no.")], "wrong", "no"),
        (NUMBER, [GREET, caller("one hundred and twenty"), bot("You said 120.")], "right", "120"),
        (TEXT, [GREET, caller("I lost my card, yesterday."),
                bot("You said I lost my card, yesterday.")], "right",
         "I lost my card, yesterday"),
        # Cut off at the pause: part of the text is a wrong answer.
        (TEXT, [GREET, caller("I lost my card."), bot("You said I lost my card.")], "wrong",
         "I lost my card"),
        # Russian scripts (321, 322, 324) say it back in Russian.
        (RU_MENU, [bot("Какая услуга?"), caller("Ваш адрес.", "address"),
                   bot("Вы выбрали адрес.")], "right", "address"),
        (RU_MENU, [bot("Какая услуга?"), caller("Мне нужен"), bot("Извините, я не понял."),
                   caller("адрес", "address"), bot("Вы выбрали адрес.")], "no-match", "address"),
        (RU_DIGITS, [bot("Четыре цифры."), caller("0 4 2 7"),
                     bot("Вы сказали ноль четыре два семь.")], "right", "0427"),
        (RU_DIGITS, [bot("Четыре цифры."), caller("0 4 2 1"),
                     bot("Вы сказали ноль четыре два один.")], "wrong", "0421"),
        (RU_YES, [bot("Да или нет?"), caller("Да, верно."), bot("Вы сказали да.")], "right",
         "yes"),
        (RU_NO, [bot("Да или нет?"), caller("Да."), bot("Вы сказали да.")], "wrong", "yes"),
        (RU_NO, [bot("Да или нет?"), bot("Извините, я ничего не услышал."),
                 caller("Нет."), bot("Вы сказали нет.")], "no-match", "no"),
        # An English "You said" is not a Russian script's line.
        (RU_YES, [bot("Да или нет?"), caller("Да."), bot("You said yes.")], "no-match", None),
    ],
)  # fmt: skip
def test_verdict(
    label: dict[str, Any], transcript: list[dict[str, Any]], expected: Verdict, value: str | None
) -> None:
    assert verdict(label, transcript) == expected
    assert taken_value(label, transcript) == value


def test_a_wrong_answer_from_the_background_is_told_apart() -> None:
    assert from_background(BACKGROUND, "extension")
    assert not from_background(BACKGROUND, "balance")
    assert not from_background(BACKGROUND, None)
    assert not from_background(MENU, "extension")


def packets(start: float, seconds: float) -> list[float]:
    """The bot's packets, one every 20 ms from ``start`` for ``seconds``."""
    return [start + n * 0.02 for n in range(round(seconds / 0.02))]


def test_the_reference_greeting_is_its_first_talkspurt() -> None:
    assert talkspurt_s(packets(1.0, 5.0) + packets(11.0, 2.0)) == pytest.approx(5.0)
    # Its own pauses come as quiet packets: no gap, one talkspurt.
    assert talkspurt_s(packets(1.0, 2.0) + packets(3.3, 1.0)) == pytest.approx(3.0)
    assert talkspurt_s([]) == 0.0


GREETING_S = 5.0


@pytest.mark.parametrize(
    ("arrivals", "caller_onset", "stopped"),
    [
        (packets(1.0, 5.0), 6.6, False),  # heard whole, the caller answers after it
        (packets(1.0, 5.0) + packets(8.0, 1.0), 7.5, False),  # and a later prompt: not a stop
        (packets(1.0, 2.0), 6.6, True),  # stopped after 2 s of 5
        (packets(1.0, 2.0) + packets(3.5, 3.0), 6.6, True),  # paused 0.5 s, then went on
        (packets(1.0, 2.0) + packets(3.2, 3.0), 6.6, False),  # a 0.2 s gap: a breath
        (packets(1.0, 4.0), 4.5, False),  # the caller spoke over it (still playing)
        (packets(1.0, 4.8), 6.6, False),  # all but 0.2 s: the end of its audio, heard
        ([], 6.6, False),  # nothing heard at all: not a stop of a greeting
    ],
)
def test_a_greeting_stopped_before_the_caller_spoke(
    arrivals: list[float], caller_onset: float, stopped: bool
) -> None:
    assert greeting_stopped(arrivals, caller_onset, GREETING_S) is stopped


def test_a_prompt_running_when_the_caller_starts() -> None:
    assert greeting_running(packets(1.0, 5.0), 4.0)
    assert not greeting_running(packets(1.0, 5.0), 6.2)


def test_the_answer_is_the_first_voiced_packet_of_a_prompt_started_after() -> None:
    greeting = [(t, True) for t in packets(1.0, 5.0)]
    answer = [(t, False) for t in packets(8.0, 0.1)] + [(t, True) for t in packets(8.1, 1.0)]
    voiced = greeting + answer
    assert answer_onset(voiced, 7.0) == pytest.approx(8.1)
    # The greeting still running at t is not the answer, the next prompt is.
    assert answer_onset(voiced, 3.0) == pytest.approx(8.1)
    assert answer_onset(voiced, 9.5) is None


def outcome(file: str, seed: int, result: Verdict, ms: float, **more: Any) -> Outcome:
    return Outcome(file, "menu-carrier", "menu", seed, verdict=result, voice_to_voice_ms=ms,
                   **more)  # fmt: skip


def test_a_turn_that_flips_between_takes_is_not_handled() -> None:
    plays = [
        outcome("a.wav", 0, "right", 300), outcome("a.wav", 1, "right", 320),
        outcome("b.wav", 0, "right", 310), outcome("b.wav", 1, "no-match", 1300),
        outcome("c.wav", 0, "wrong", 290, prompt_stopped=True, from_background=True),
        outcome("c.wav", 1, "wrong", 295, cut_off=True),
        Outcome("noise.wav", "noise", "noise", 0, prompt_lost=True),  # not judged
    ]  # fmt: skip
    t = tally(plays)
    assert (t.plays, t.right, t.wrong, t.no_match) == (6, 3, 2, 1)
    assert (t.turns, t.steady, t.flipped) == (3, 1, ["b.wav"])
    assert (t.prompt_stopped, t.from_background, t.cut_off) == (1, 1, 1)
    assert t.p50_ms == pytest.approx(305)
    assert t.p95_ms == 1300
    line = tally_line("paused answers", t)
    assert "50.0 %" in line and "1/3" in line


def test_an_empty_tally_prints() -> None:
    t = tally([])
    assert t.plays == 0 and t.p50_ms is None
    assert "-" in tally_line("background 16 dB", t)


def test_the_conditions_name_the_issue_s_groups() -> None:
    assert CONDITIONS["background 16 dB"] == ("background-16db",)
    assert "menu-carrier" in CONDITIONS["paused answers"]
    assert "menu" in CONDITIONS["plain answers"]


@pytest.mark.parametrize(
    ("label", "extension"),
    [
        ({"kind": "menu"}, "311"), ({"kind": "yes_no"}, "312"),
        ({"kind": "digits", "digits_length": 3}, "313"),
        ({"kind": "digits", "digits_length": 4}, "314"), ({"kind": "number"}, "315"),
        ({"kind": "text"}, "316"), ({"kind": "noise"}, "317"), ({"kind": "barge"}, "317"),
        ({"kind": "background"}, "318"), ({"kind": "menu", "language": "en"}, "311"),
        ({"kind": "menu", "language": "ru"}, "321"), ({"kind": "yes_no", "language": "ru"}, "322"),
        ({"kind": "digits", "digits_length": 4, "language": "ru"}, "324"),
    ],
)  # fmt: skip
def test_each_turn_is_played_to_its_language_s_script(
    label: dict[str, Any], extension: str
) -> None:
    assert extension_for({"file": "t.wav", **label}) == extension


@pytest.mark.parametrize(
    "label",
    [
        {"kind": "number", "language": "ru"},
        {"kind": "digits", "digits_length": 3, "language": "ru"},
        {"kind": "menu", "language": "de"},
    ],
)
def test_a_turn_no_script_takes_is_named(label: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"^t\.wav: no bench script takes"):
        extension_for({"file": "t.wav", **label})


def timed(group: str, *ms: float) -> list[Outcome]:
    return [Outcome(f"{group}-{n}.wav", group, "menu", 0, verdict="right", voice_to_voice_ms=t)
            for n, t in enumerate(ms)]  # fmt: skip


def test_russian_menu_answers_are_timed_against_english_ones() -> None:
    plays = timed("menu", 500, 520, 540, 900) + timed("ru-menu", 560, 600, 610, 1000, 1100)
    line = latency_comparison(plays, "menu", "ru-menu")
    assert line == (
        "ru-menu against menu: p50 610 vs 530 ms (+80 ms), p95 1100 vs 900 ms (+200 ms), n 5 vs 4"
    )
    # Nothing to compare without both.
    assert latency_comparison(timed("menu", 500), "menu", "ru-menu") is None
    assert latency_comparison(plays + timed("yes-no", 400), "yes-no", "ru-yes_no") is None


def test_the_russian_conditions_are_their_own() -> None:
    assert CONDITIONS["ru plain answers"] == ("ru-menu", "ru-yes_no", "ru-digits")
    assert CONDITIONS["ru paused answers"] == ("ru-paused",)
    english = {g for name, groups in CONDITIONS.items() if not name.startswith("ru ")
               for g in groups}  # fmt: skip
    assert not any(group.startswith("ru-") for group in english)
