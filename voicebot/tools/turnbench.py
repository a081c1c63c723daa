"""How the endpointing bench judges a call, from what the call left behind (no I/O here).

``scripts/bench-endpointing.py`` plays the labelled turns of ``tests/fixtures/turns/`` (English)
and ``tests/fixtures/turns-ru/`` (Russian: labels with ``"language": "ru"``) to a bot on real
calls, each as several seeded takes (``takes.py``), and hands this module what came
back: the bot's transcript (its ``/calls`` record) and the arrival times of the bot's packets
at the caller. Here it is decided whether the bot got the turn right, took something else
(wrong) or said its no-match line, whether a greeting stopped or paused before the caller
spoke, and how the plays add up per condition, with a turn whose verdict differs between
takes counted as not handled. A turn's language chooses the bench script it is played to
(``EXTENSIONS``) and how that script's lines are read (``BOT_LINES``).
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ..dialog.lang import RUSSIAN

Verdict = Literal["right", "wrong", "no-match"]

PACKET_S = 0.02
# A stop in the bot's packets longer than this is a pause a caller notices ("more than a
# breath"); the bot sends nothing while it is silent, its own pauses inside a prompt come as
# quiet packets.
BREATH_S = 0.3
# A greeting that delivered all but this much of its audio was heard whole.
GREETING_SLACK_S = 0.3
# The reference greeting ends at the first stop in the packets longer than this.
TALKSPURT_END_S = 0.5
# No packet for this long means the bot's current prompt has ended.
PROMPT_ENDED_S = 0.1
ARTICLES = frozenset({"a", "an", "the"})

# Conditions the bench prints, in order: name -> the groups of tests/fixtures/turns in it.
CONDITIONS: dict[str, tuple[str, ...]] = {
    "plain answers": ("menu", "yes-no", "digits"),
    "paused answers": ("menu-pause", "menu-carrier", "digits-carrier"),
    "background 10 dB": ("background-10db",),
    "background 16 dB": ("background-16db",),
    "background 22 dB": ("background-22db",),
    "ru plain answers": ("ru-menu", "ru-yes_no", "ru-digits"),
    "ru paused answers": ("ru-paused",),
}
# The comparison on one machine: Russian menu answers against English ones.
LANGUAGE_COMPARISONS: tuple[tuple[str, str], ...] = (("menu", "ru-menu"),)

# language -> kind ("digits-N" for N digits) -> the bench script's extension.
EXTENSIONS: Mapping[str, Mapping[str, str]] = {
    "en": {
        "menu": "311", "yes_no": "312", "digits-3": "313", "digits-4": "314", "number": "315",
        "text": "316", "noise": "317", "barge": "317", "background": "318",
    },
    "ru": {"menu": "321", "yes_no": "322", "digits-4": "324"},
}  # fmt: skip


@dataclass(frozen=True)
class BotLines:
    """How a language's bench scripts word the lines the bench reads in the bot's transcript."""

    said: str  # the answer state's line: this, then the value ("You said 4 2 1.")
    sorry: str  # in every no-match and no-input line, lower case
    values: Mapping[str, str]  # a yes/no said back -> the slot's value ("да" -> "yes")
    digits: Callable[[str], str | None]  # digits said back -> the digit string


def _spaced_digits(said: str) -> str:
    return said.replace(" ", "")


BOT_LINES: Mapping[str, BotLines] = {
    "en": BotLines("You said ", "sorry", {}, _spaced_digits),
    # 322 says "Вы сказали да." / "Вы сказали нет.", 324 the digits in words.
    "ru": BotLines("Вы сказали ", "извините", {"да": "yes", "нет": "no"}, RUSSIAN.parse_digits),
}


def language_of(label: Mapping[str, Any]) -> str:
    """The turn's language: English unless its label says otherwise."""
    return str(label.get("language", "en"))


def extension_for(label: Mapping[str, Any]) -> str:
    """The bench script (extension) a turn is played to; a ``ValueError`` for a turn no
    script of its language takes."""
    kind = label["kind"]
    if kind == "digits":
        kind = f"digits-{label['digits_length']}"
    language = language_of(label)
    extension = EXTENSIONS.get(language, {}).get(kind)
    if extension is None:
        raise ValueError(f"{label['file']}: no bench script takes {kind} turns in {language!r}")
    return extension


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower().replace("-", " "))


def taken_value(label: Mapping[str, Any], transcript: Sequence[Mapping[str, Any]]) -> str | None:
    """What the bot took from the caller: the intent of the first caller line that has one
    (menu, background, barge-in), or the value its answer state said back ("You said …",
    "Вы сказали …": the turn's language's BOT_LINES)."""
    if label["kind"] in ("menu", "background", "barge"):
        intents = [line.get("intent") for line in transcript if line["who"] == "caller"]
        return next((intent for intent in intents if intent), None)
    lines = BOT_LINES[language_of(label)]
    bots = [str(line["text"]) for line in transcript if line["who"] == "bot"]
    said = [text for text in bots if text.startswith(lines.said)]
    if not said:
        return None
    value = said[-1].removeprefix(lines.said).strip().rstrip(".")
    if label["kind"] == "digits":
        return lines.digits(value)
    return lines.values.get(value.lower(), value)


def is_answer(label: Mapping[str, Any], value: str) -> bool:
    if label["kind"] == "text":
        # A text slot holds what was heard; it must have every word said (articles aside).
        return not set(words(label["answer"])) - set(words(value)) - ARTICLES
    return value.lower() == str(label["answer"]).lower()


def verdict(label: Mapping[str, Any], transcript: Sequence[Mapping[str, Any]]) -> Verdict:
    """right: the bot took the turn's answer from one caller turn and never said its no-match
    or no-input line ("Sorry, …", "Извините, …"); wrong: it took something else (another
    intent, other digits, part of a text); no-match: it took nothing, or only after a
    "Sorry"."""
    value = taken_value(label, transcript)
    if value is not None and not is_answer(label, value):
        return "wrong"
    callers = [line for line in transcript if line["who"] == "caller"]
    sorry_word = BOT_LINES[language_of(label)].sorry
    sorry = any(sorry_word in str(line["text"]).lower() for line in transcript
                if line["who"] == "bot")  # fmt: skip
    return "right" if value is not None and len(callers) == 1 and not sorry else "no-match"


def from_background(label: Mapping[str, Any], value: str | None) -> bool:
    """Whether a wrong value is a word only the background said."""
    behind = label.get("background_text")
    return bool(behind and value and value in words(behind))


def talkspurt_s(arrivals: Sequence[float]) -> float:
    """How much audio the bot's first talkspurt carried (20 ms a packet), up to its first
    stop longer than TALKSPURT_END_S: a greeting's length, from a reference call."""
    ordered = sorted(arrivals)
    count = 0
    for index, t in enumerate(ordered):
        if index and t - ordered[index - 1] > TALKSPURT_END_S:
            break
        count += 1
    return count * PACKET_S


def greeting_stopped(arrivals: Sequence[float], caller_onset: float, greeting_s: float) -> bool:
    """Whether the greeting (the bot's first packets; ``greeting_s`` of audio in all, see
    talkspurt_s) stopped, or paused for more than BREATH_S, before the caller started to
    speak at ``caller_onset`` while it still had audio to play. Packets of another prompt
    after a complete greeting (a no-match line) are not a stop of the greeting."""
    before = sorted(t for t in arrivals if t < caller_onset)
    if not before:
        return False
    heard, last = 0.0, before[0]
    for t in before:
        if t - last > BREATH_S and heard < greeting_s - GREETING_SLACK_S:
            return True
        heard += PACKET_S
        last = t
    return caller_onset - last > BREATH_S and heard < greeting_s - GREETING_SLACK_S


def greeting_running(arrivals: Sequence[float], t: float) -> bool:
    """Whether the bot was still sending a prompt at ``t`` (a packet within PROMPT_ENDED_S
    before it): a caller starting then talks over the prompt."""
    return any(t - PROMPT_ENDED_S <= a < t for a in arrivals)


def answer_onset(voiced: Sequence[tuple[float, bool]], t: float) -> float | None:
    """The arrival of the bot's first voiced packet after ``t`` that does not belong to a
    prompt already running at ``t`` (``voiced``: (arrival, voiced) per packet)."""
    ordered = sorted(voiced)
    running = any(t - PROMPT_ENDED_S <= a < t for a, _ in ordered)
    last = t
    for arrival, is_voiced in ordered:
        if arrival < t:
            continue
        if running and arrival - last <= PROMPT_ENDED_S:
            last = arrival
            continue
        running = False
        if is_voiced:
            return arrival
    return None


@dataclass
class Outcome:
    """One take of one turn on one call, as the bench judged it."""

    file: str
    group: str
    kind: str
    seed: int
    verdict: Verdict | None = None  # None: not judged (noise)
    value: str | None = None
    voice_to_voice_ms: float | None = None
    cut_off: bool = False
    prompt_stopped: bool = False  # background turns: the greeting, before the caller spoke
    over_greeting: bool = False  # background turns: the caller started during the greeting
    from_background: bool = False  # wrong, and on a word only the background said
    barge_stop_ms: float | None = None
    prompt_lost: bool = False  # noise over a prompt
    heard: list[str] = field(default_factory=list)
    human: bool = False  # Allison's recordings
    language: str = "en"


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


@dataclass(frozen=True)
class Tally:
    """Plays of a set of turns over all takes."""

    plays: int
    right: int
    wrong: int
    no_match: int
    cut_off: int
    p50_ms: float | None
    p95_ms: float | None
    turns: int
    steady: int  # turns right on every take
    flipped: list[str]  # turns whose verdict differs between takes
    prompt_stopped: int
    over_greeting: int
    from_background: int


def tally(plays: Iterable[Outcome]) -> Tally:
    chosen = [p for p in plays if p.verdict is not None]
    times = [p.voice_to_voice_ms for p in chosen if p.voice_to_voice_ms is not None]
    by_turn: dict[str, set[Verdict | None]] = {}
    for p in chosen:
        by_turn.setdefault(p.file, set()).add(p.verdict)
    return Tally(
        plays=len(chosen),
        right=sum(p.verdict == "right" for p in chosen),
        wrong=sum(p.verdict == "wrong" for p in chosen),
        no_match=sum(p.verdict == "no-match" for p in chosen),
        cut_off=sum(p.cut_off for p in chosen),
        p50_ms=statistics.median(times) if times else None,
        p95_ms=percentile(times, 0.95) if times else None,
        turns=len(by_turn),
        steady=sum(verdicts == {"right"} for verdicts in by_turn.values()),
        flipped=sorted(name for name, verdicts in by_turn.items() if len(verdicts) > 1),
        prompt_stopped=sum(p.prompt_stopped for p in chosen),
        over_greeting=sum(p.over_greeting for p in chosen),
        from_background=sum(p.from_background for p in chosen),
    )


def tally_line(name: str, t: Tally) -> str:
    """One row of the bench's table (see TABLE_HEAD)."""

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.0f}"

    share = f"{100 * t.right / t.plays:.1f} %" if t.plays else "-"
    return (
        f"  {name:<18} {t.plays:>5} {t.right:>5} {t.wrong:>5} {t.no_match:>5} {share:>7} "
        f"{t.steady:>3}/{t.turns:<3} {len(t.flipped):>4} {t.cut_off:>4} "
        f"{ms(t.p50_ms):>6} {ms(t.p95_ms):>6}"
    )


TABLE_HEAD = (
    f"  {'condition':<18} {'plays':>5} {'right':>5} {'wrong':>5} {'no-m.':>5} {'right%':>7} "
    f"{'steady':>7} {'flip':>4} {'cut':>4} {'p50':>6} {'p95':>6}"
)


def latency_comparison(outcomes: Iterable[Outcome], reference: str, other: str) -> str | None:
    """Voice to voice of group ``other`` against group ``reference`` (Russian menu answers
    against English ones, played in the same run), or None unless both have times."""
    chosen = list(outcomes)

    def times(group: str) -> list[float]:
        return [o.voice_to_voice_ms for o in chosen if o.group == group
                and o.voice_to_voice_ms is not None]  # fmt: skip

    ours, theirs = times(reference), times(other)
    if not ours or not theirs:
        return None
    p50 = (statistics.median(ours), statistics.median(theirs))
    p95 = (percentile(ours, 0.95), percentile(theirs, 0.95))
    return (
        f"{other} against {reference}: p50 {p50[1]:.0f} vs {p50[0]:.0f} ms "
        f"({p50[1] - p50[0]:+.0f} ms), p95 {p95[1]:.0f} vs {p95[0]:.0f} ms "
        f"({p95[1] - p95[0]:+.0f} ms), n {len(theirs)} vs {len(ours)}"
    )
