"""Intents by meaning on a call: the caller's words compared with a menu's phrases.

When no phrase of a menu fits what the caller said, the turn core asks (``Understand``) which
intent the words mean; the ``MeaningMatcher`` shared by all calls answers (``Understood``)
off the event loop: one sentence embedded (3-4 ms on one core) and scored against the menu's
phrase vectors (``dialog/meaning.py`` decides). The phrases of every menu that understands by
meaning are embedded once, when the scripts load (``load_meaning``), one-word phrases also
inside their script language's carrier sentences (``Language.meaning_carriers``); a menu seen
for the first time on a call (a script loaded later) is embedded then, once, without carriers:
the turn core names the menu, not its language.

Texts are compared in lower case, as words without punctuation: the recognizers write the
same answer with and without capitals and full stops (whisper: "Are you open on Saturdays?",
Vosk: "are you open on saturdays"), and the embedding model tells them apart.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Iterable, Sequence

from ..dialog.lang import LANGUAGES, language_for
from ..dialog.meaning import (
    MARGIN,
    NON_ANSWERS,
    THRESHOLD,
    MeaningMatch,
    PhraseVectors,
    Understanding,
    asks_yes_or_no,
    menu_forms,
    says_no,
    too_short,
    understand,
)
from ..dialog.model import Script, State
from ..errors import ModelError
from ..speech.embed import Embedder, UseEmbedder
from .commands import Understand
from .turns import Understood

log = logging.getLogger(__name__)

# A menu as the turn core names it (``Expectation.intents``): (intent, phrases) in order.
Menu = tuple[tuple[str, tuple[str, ...]], ...]
_WORDS = re.compile(r"[\w']+")


def words_of(text: str) -> list[str]:
    """A text's words in lower case, without punctuation."""
    return _WORDS.findall(text.lower())


def meaning_text(text: str) -> str:
    """What is embedded of a text: its words in lower case, without punctuation."""
    return " ".join(words_of(text))


def menu_of(state: State) -> Menu:
    """A menu state's intents with their phrases and examples, as the turn core hands them
    over."""
    return state.meaning_menu


def menus(script: Script) -> list[Menu]:
    """The menus of ``script`` that understand by meaning, each once."""
    found = {menu_of(state): None for state in script.states.values() if state.by_meaning}
    return list(found)


class MeaningMatcher:
    """The embedder and the phrase vectors of every menu it has seen, shared by all calls."""

    def __init__(
        self, embedder: Embedder, threshold: float = THRESHOLD, margin: float = MARGIN
    ) -> None:
        self.embedder = embedder
        self.threshold = threshold
        self.margin = margin
        self._menus: dict[Menu, PhraseVectors] = {}
        # The carrier sentences of each menu's script language (a menu in scripts of two
        # languages: the first script's).
        self._carriers: dict[Menu, tuple[str, ...]] = {}
        # Whether each menu asks yes or no, read with its script language's yes/no words.
        self._polar: dict[Menu, bool] = {}
        self._non_answers: PhraseVectors | None = None

    @property
    def menus(self) -> int:
        """How many menus' phrases are embedded."""
        return len(self._menus)

    async def prepare(self, scripts: Iterable[Script]) -> int:
        """Embed the phrases of every menu of ``scripts`` that understands by meaning (one
        batch, off the event loop); returns how many phrase vectors were made (a carried
        phrase makes one for each of its forms)."""
        wanted: list[Menu] = []
        for script in scripts:
            language = language_for(script.language)
            for menu in menus(script):
                if menu not in self._menus and menu not in self._carriers:
                    self._carriers[menu] = language.meaning_carriers
                    self._polar[menu] = asks_yes_or_no(menu, language.parse_yes_no)
                    wanted.append(menu)
        if not wanted:
            return 0
        tables = await asyncio.to_thread(self._embed_menus, wanted)
        self._menus.update(zip(wanted, tables, strict=True))
        return sum(len(table.phrases) for table in tables)

    async def match(self, script: Script, state: str, text: str) -> MeaningMatch | None:
        """The intent of ``script``'s menu ``state`` that ``text`` means, if one is clear."""
        menu = menu_of(script.states[state])
        return (await self.understand(menu, text)).match

    async def understand(self, menu: Menu, text: str) -> Understanding:
        """The decision on ``text`` for ``menu``, with its reason (off the event loop)."""
        return await asyncio.to_thread(self._understand, menu, text)

    async def answer(self, ask: Understand, deliver: Callable[[Understood], None]) -> None:
        """Answer the turn core's ``Understand`` through ``deliver``, always: a failing model
        is a no-match, not a call left waiting."""
        try:
            decision = await self.understand(ask.intents, ask.text)
        except Exception as exc:  # the call goes on without meaning
            log.warning("intents by meaning failed in state %r: %s: %s", ask.state,
                        type(exc).__name__, exc)  # fmt: skip
            decision = Understanding(None, f"the comparison failed: {type(exc).__name__}")
        deliver(Understood(time.monotonic(), ask.token, decision.match, decision.reason))

    # -- blocking, in a worker thread ------------------------------------------------------

    def _embed_non_answers(self) -> PhraseVectors:
        if self._non_answers is None:
            vectors = self.embedder.encode([meaning_text(text) for text in NON_ANSWERS])
            self._non_answers = PhraseVectors(("",) * len(NON_ANSWERS), NON_ANSWERS, vectors)
        return self._non_answers

    def _embed_menus(self, wanted: Sequence[Menu]) -> list[PhraseVectors]:
        self._embed_non_answers()
        forms = {menu: menu_forms(menu, self._carriers.get(menu, ())) for menu in wanted}
        texts = list(
            dict.fromkeys(meaning_text(form) for rows in forms.values() for _, _, form in rows)
        )
        vectors = self.embedder.encode(texts)
        row = {text: i for i, text in enumerate(texts)}
        tables = []
        for menu in wanted:
            rows = [row[meaning_text(form)] for _, _, form in forms[menu]]
            tables.append(PhraseVectors.build(menu, vectors[rows], self._carriers.get(menu, ())))
        return tables

    def _understand(self, menu: Menu, text: str) -> Understanding:
        table = self._menus.get(menu)
        if table is None:
            # A script loaded after start-up: its menu is embedded now, once.
            (table,) = self._embed_menus([menu])
            self._menus[menu] = table
        words = words_of(text)
        if too_short(words):
            return Understanding(None, f"{len(words)} word(s): left to the phrases")
        said = " ".join(words)
        (vector,) = self.embedder.encode([said])
        non_answers = self._embed_non_answers()
        polar = self._polar.get(menu)
        if polar is None:  # first seen on a call: its language is not known here
            polar = any(asks_yes_or_no(menu, lang.parse_yes_no) for lang in LANGUAGES.values())
            self._polar[menu] = polar
        negated = says_no(said) if polar else None
        return understand(vector, table, self.threshold, self.margin, non_answers, negated)


async def load_meaning(
    scripts: Iterable[Script], embedder: Embedder | None = None
) -> MeaningMatcher | None:
    """The matcher for ``scripts``, loaded only when one of their menus understands by
    meaning (the default); None, said once in the log, when none does or the model is not
    installed: menus then match by their phrases alone."""
    scripts = [script for script in scripts if menus(script)]
    if not scripts:
        return None
    started = time.monotonic()
    embedder = embedder or UseEmbedder()
    try:
        await embedder.load()
    except ModelError as exc:
        log.info("intents by meaning: off, menus match by their phrases alone (%s)", exc)
        return None
    matcher = MeaningMatcher(embedder)
    phrases = await matcher.prepare(scripts)
    log.info("intents by meaning: %s, %d menus (%d phrase vectors) of %d scripts ready in %.1f s "
             "(threshold %.2f, margin %.2f)", embedder.name, matcher.menus, phrases,
             len(scripts), time.monotonic() - started, matcher.threshold,
             matcher.margin)  # fmt: skip
    return matcher
