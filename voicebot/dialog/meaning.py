"""Intents by meaning: which intent of a menu the caller's words mean, when no phrase fits them.

The caller's words and every phrase of a menu's intents are sentence embeddings (computed
elsewhere: ``speech/embed``); an intent's score is the best cosine between the words and its
phrases. A phrase of one word is also embedded inside the carrier sentences of the script's
language (``Language.meaning_carriers``: "{phrase}, please", "мне нужно {phrase}"): a word
alone lies far from the sentences callers say ("hours" against "when are you open
tomorrow"), the same word in a sentence less so (``phrase_forms``). The best intent is taken
only when

- the words are at least ``MIN_WORDS`` long: a single word that is no phrase of the menu is
  left to the no-match (one word is where the model is least sure: "hmm" scored 0.75 against
  "bye", "pardon" 0.69);
- its score reaches ``THRESHOLD`` and beats every other intent by ``MARGIN``;
- no ``NON_ANSWERS`` sentence is as close to the words: what callers say instead of an
  answer ("hold on a second", "I don't know", "подождите минутку") otherwise came out as the
  closest intent, often goodbye (0.47-0.66 with margins up to 0.4), and hung up on them;
- in a menu that asks yes or no (``asks_yes_or_no``: one intent has a phrase that is a yes,
  another one that is a no), the words say no (``says_no``) only if some phrase of the intent
  does, and say no if all of them do: the model hardly hears a "not" ("please don't" scored
  0.72 against "please do"). In other menus a "not" is no answer by itself ("my parcel hasn't
  come, where is it" is tracking, "I won't be home, bring it on Friday" a new delivery day).

Anything else is a no-match, as without meaning. Pure: vectors in, a decision out, with the
reason for the log either way.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

# Chosen on tests/fixtures/meaning/paraphrases.yaml (66 paraphrases, 42 utterances that are no
# answer) with USE multilingual v3 and the shipped scripts' phrases (whole sentences beside the
# menu words since the second round); scripts/bench-meaning.py prints the curve, docs/scripts.md
# quotes it. Paraphrases and off-topic words overlap there: at 0.40 one off-topic question
# ("Какая сегодня погода?", 0.43 to hours) was taken, at 0.45 none is and one paraphrase fewer
# is right (51 of 66, 77 %; another sits right at 0.45); 0.50 takes 70 %. Of two bars without
# headroom on both sides, the one that acts on no off-topic words. At margin 0.10 no
# paraphrase went to a wrong intent; 0.05 took 82 % with one wrong and one off-topic taken.
# tests/fixtures/meaning/heldout.yaml, written before these were chosen, says how they do on
# words they were not chosen on.
THRESHOLD = 0.45
MARGIN = 0.10
MIN_WORDS = 2
# Phrases of at most this many words are also compared inside carrier sentences. Longer ones
# are sentences already: carried too, their intents drew closer to each other (the carrier's
# words are common to all), and margins shrank.
CARRIED_WORDS = 1
# What callers say instead of an answer, in the languages the scripts speak (the model is
# multilingual: these stand for other languages too, less closely). Words closer to one of
# these than to any intent are no answer: the no-match reaction asks again.
NON_ANSWERS = (
    # English: asking again, holding on, not knowing, checking the line
    "what?", "sorry?", "pardon?", "huh?", "hmm", "um", "uh",
    "what did you say?", "could you repeat that?", "say it again", "I didn't catch that",
    "I can't hear you", "hello?", "are you there?", "can you hear me?",
    "hold on", "wait a second", "one moment please", "just a minute",
    "I don't know", "I'm not sure", "let me think",
    # Russian
    "что?", "а?", "что вы сказали?", "повторите", "ещё раз, пожалуйста", "не расслышал",
    "плохо слышно", "алло", "вы меня слышите?", "подождите", "секунду", "одну минуту",
    "минуточку", "не знаю", "не уверен", "сейчас подумаю", "ну", "э-э", "хм",
)  # fmt: skip


# Words that turn an answer into its opposite, in the languages of NON_ANSWERS (English words
# ending in n't too).
NEGATIONS = frozenset(
    "no not never nothing nobody none nope nah cannot не нет ни никогда ничего никто нельзя".split()
)
_WORD = re.compile(r"[\w']+")


def says_no(text: str) -> bool:
    """Whether a text holds a negation: "please don't", "that is not it", "не надо"."""
    words = _WORD.findall(text.lower())
    return any(word in NEGATIONS or word.endswith("n't") for word in words)


def asks_yes_or_no(
    menu: Sequence[tuple[str, Sequence[str]]], parse_yes_no: Callable[[str], bool | None]
) -> bool:
    """Whether a menu's answers are a yes and a no: one intent has a phrase ``parse_yes_no``
    (the script language's) reads as yes, another one it reads as no."""
    answers = [{parse_yes_no(phrase) for phrase in phrases} for _, phrases in menu]
    return any(
        True in mine and False in theirs
        for i, mine in enumerate(answers)
        for j, theirs in enumerate(answers)
        if i != j
    )


def phrase_forms(phrase: str, carriers: Sequence[str] = ()) -> tuple[str, ...]:
    """What is embedded of a menu phrase: the phrase, and when it has at most
    ``CARRIED_WORDS`` words, the phrase inside each of ``carriers`` (templates holding
    ``{phrase}``: "{phrase}, please" makes "hours, please")."""
    forms = [phrase]
    if len(_WORD.findall(phrase)) <= CARRIED_WORDS:
        for carrier in carriers:
            if "{phrase}" not in carrier:
                raise ValueError(f"meaning carrier {carrier!r} does not hold {{phrase}}")
            forms.append(carrier.replace("{phrase}", phrase))
    return tuple(dict.fromkeys(forms))


def menu_forms(
    menu: Sequence[tuple[str, Sequence[str]]], carriers: Sequence[str] = ()
) -> list[tuple[str, str, str]]:
    """A menu's rows as embedded, in order: (intent, phrase, form) for every ``phrase_forms``
    of every phrase of every intent."""
    return [
        (intent, phrase, form)
        for intent, phrases in menu
        for phrase in phrases
        for form in phrase_forms(phrase, carriers)
    ]


@dataclass(frozen=True)
class MeaningMatch:
    """The intent the words mean: its closest ``phrase``, the cosine ``score`` and the
    ``margin`` by which it beat the next intent."""

    intent: str
    phrase: str
    score: float
    margin: float

    def describe(self) -> str:
        """How the log says it: ``'hours' by meaning score 0.71 margin 0.20``."""
        return f"{self.intent!r} by meaning score {self.score:.2f} margin {self.margin:.2f}"


@dataclass(frozen=True)
class PhraseVectors:
    """A menu's phrases and their embeddings: row ``i`` of ``vectors`` is ``phrases[i]`` of
    intent ``intents[i]`` (or one of its ``phrase_forms``: a phrase may have several rows)."""

    intents: tuple[str, ...]
    phrases: tuple[str, ...]
    vectors: np.ndarray = field(repr=False, compare=False)

    def __post_init__(self) -> None:
        rows = self.vectors.shape[0] if self.vectors.ndim == 2 else -1
        if not (rows == len(self.intents) == len(self.phrases)):
            raise ValueError(
                f"{len(self.intents)} intents and {len(self.phrases)} phrases for vectors of "
                f"shape {self.vectors.shape} (one row each)"
            )

    @classmethod
    def build(
        cls,
        menu: Sequence[tuple[str, Sequence[str]]],
        vectors: np.ndarray,
        carriers: Sequence[str] = (),
    ) -> PhraseVectors:
        """From ``(intent, phrases)`` pairs, and the vectors of their ``menu_forms`` with
        ``carriers`` in that order (no carriers: one row a phrase)."""
        rows = menu_forms(menu, carriers)
        return cls(tuple(i for i, _, _ in rows), tuple(p for _, p, _ in rows), vectors)


@dataclass(frozen=True)
class Understanding:
    """The decision: ``match`` (None: no intent) and why, for the log (intent names and
    scores only, never the caller's words). ``best``: the closest intent whatever the bars
    (None: nothing compared), ``non_answer``: how close the nearest ``NON_ANSWERS`` sentence
    came (None: not compared); the bench re-decides from them."""

    match: MeaningMatch | None
    reason: str
    best: MeaningMatch | None = None
    non_answer: float | None = None
    # The words say no and no phrase of the best intent does (or the other way round).
    clash: bool = False


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors, dtype=np.float64),
                     where=norms > 0)  # fmt: skip


def too_short(words: Sequence[str]) -> bool:
    """Whether words are too few to be compared by meaning (``MIN_WORDS``)."""
    return len(words) < MIN_WORDS


def _cosines(rows: np.ndarray, vector: np.ndarray) -> np.ndarray:
    return _unit_rows(np.asarray(rows, dtype=np.float64)) @ _unit_rows(
        np.asarray(vector, dtype=np.float64)
    )


def understand(
    utterance: np.ndarray,
    menu: PhraseVectors,
    threshold: float = THRESHOLD,
    margin: float = MARGIN,
    non_answers: PhraseVectors | None = None,
    negated: bool | None = None,
) -> Understanding:
    """The intent of ``menu`` that ``utterance`` (the words' vector) means, if it is clear:
    its best phrase scores at least ``threshold``, at least ``margin`` more than any other
    intent's best (a menu of one intent: more than 0), and more than any of ``non_answers``
    (``NON_ANSWERS`` embedded; their ``intents`` are not used); ``negated``: whether the
    words say no (``says_no``), which some phrase of the intent must do too (None: not
    checked)."""
    if not menu.intents:
        return Understanding(None, "no phrases to compare with")
    scores = _cosines(menu.vectors, utterance)
    best_row: dict[str, int] = {}
    for row, intent in enumerate(menu.intents):
        if intent not in best_row or scores[row] > scores[best_row[intent]]:
            best_row[intent] = row
    ranked = sorted(best_row.items(), key=lambda item: -scores[item[1]])
    intent, row = ranked[0]
    score = float(scores[row])
    runner_up, second = (
        (ranked[1][0], max(0.0, float(scores[ranked[1][1]])))
        if len(ranked) > 1
        else ("nothing", 0.0)
    )
    best = MeaningMatch(intent, menu.phrases[row], round(score, 4), round(score - second, 4))
    nearest, closeness = "", None
    if non_answers is not None and non_answers.phrases:
        to_non_answers = _cosines(non_answers.vectors, utterance)
        at = int(np.argmax(to_non_answers))
        nearest, closeness = non_answers.phrases[at], float(to_non_answers[at])
    polarities = {
        says_no(p) for i, p in zip(menu.intents, menu.phrases, strict=True) if i == intent
    }
    clash = negated is not None and negated not in polarities
    reason = best.describe()
    if score < threshold:
        reason = f"best {intent!r} score {score:.2f} is under the threshold {threshold:.2f}"
    elif score - second < margin:
        reason = (
            f"best {intent!r} score {score:.2f} is within {margin:.2f} of {runner_up!r} "
            f"({second:.2f})"
        )
    elif closeness is not None and closeness >= score:
        reason = (
            f"best {intent!r} score {score:.2f} is no closer than the non-answer "
            f"{nearest!r} ({closeness:.2f})"
        )
    elif clash:
        reason = (
            f"best {intent!r} score {score:.2f}: the words say no, none of its phrases does"
            if negated
            else f"best {intent!r} score {score:.2f}: all its phrases say no, the words do not"
        )
    else:
        return Understanding(best, reason, best, closeness)
    return Understanding(None, reason, best, closeness, clash)
