"""The voice interface's own behaviour: whole-text synthesis from the stream, an engine's
defaults, and the sentence splitter every engine streams by."""

from __future__ import annotations

from collections.abc import AsyncIterator

import numpy as np
import pytest

from tests.support.doubles import ToneTts
from voicebot.speech.tts.base import MAX_SENTENCE_CHARS, TtsEngine, split_sentences


class MuteTts(ToneTts):
    """Yields nothing at all (a text with nothing speakable in it)."""

    async def stream(self, text: str) -> AsyncIterator[np.ndarray]:
        self.spoken.append(text)
        return
        yield np.zeros(0, dtype=np.int16)  # pragma: no cover - makes this an async generator


async def test_synthesize_is_the_streams_chunks_joined() -> None:
    tts = ToneTts(seconds_per_char=0.01, rate=16000)
    chunks = [chunk async for chunk in tts.stream("Hello.")]
    whole = await tts.synthesize("Hello.")
    assert len(chunks) == 2
    np.testing.assert_array_equal(whole, np.concatenate(chunks))
    assert whole.dtype == np.int16 and whole.size == 6 * 160  # 10 ms a character at 16 kHz


async def test_synthesize_of_nothing_is_no_samples() -> None:
    tts = MuteTts()
    audio = await tts.synthesize("...")
    assert audio.dtype == np.int16 and audio.size == 0
    assert tts.spoken == ["..."]


def test_an_engine_has_no_voice_name_and_is_healthy_unless_it_says_otherwise() -> None:
    tts = ToneTts()
    assert tts.voice == ""
    assert tts.status() == {"loaded": True, "workers_alive": True, "queued": 0}


def test_an_engine_must_say_its_rate_stream_load_and_close() -> None:
    class NoStream(TtsEngine):
        name = "incomplete"

        @property
        def sample_rate(self) -> int:
            return 16000

        async def load(self) -> None:
            pass

        async def close(self) -> None:
            pass

    with pytest.raises(TypeError, match="stream"):
        NoStream()  # type: ignore[abstract]


@pytest.mark.parametrize(
    ("text", "sentences"),
    [
        ("Hello. Goodbye.", ["Hello.", "Goodbye."]),
        ("Really?! Yes...", ["Really?!", "Yes..."]),  # a run of marks ends one sentence
        ("Press 1; or say operator", ["Press 1;", "or say operator"]),
        ('He said "stop." Then left.', ['He said "stop."', "Then left."]),
        ("(Mr. Brown) left. OK", ["(Mr. Brown) left.", "OK"]),
        # Abbreviations, initials and decimals do not end a sentence.
        ("Dr. Smith is in. Call at 3.5 pm!", ["Dr. Smith is in.", "Call at 3.5 pm!"]),
        ("e.g. this one; that one", ["e.g. this one;", "that one"]),
        ("J. Smith called.", ["J. Smith called."]),
        ("Open Mon. to Fri. from 9.", ["Open Mon. to Fri. from 9."]),
        ("Version 2.0 is out. Try it", ["Version 2.0 is out.", "Try it"]),
        # Ordinary words that are also abbreviations elsewhere still end one.
        ("No. Sun.", ["No.", "Sun."]),
        # Whitespace is tidied; nothing speakable is dropped (it would be a click).
        ("  spaced   out.  Next ", ["spaced out.", "Next"]),
        ("...", []),
        (";", []),
        ("", []),
        ("Hello. ... Goodbye.", ["Hello.", "Goodbye."]),
    ],
)
def test_split_sentences(text: str, sentences: list[str]) -> None:
    assert split_sentences(text) == sentences


@pytest.mark.parametrize(
    ("text", "max_chars", "pieces"),
    [
        ("One, two, three, four.", 100, ["One, two, three, four."]),  # short: one sentence
        ("One, two, three, four.", 10, ["One, two,", "three,", "four."]),  # cut at commas
        ("alpha beta gamma delta", 11, ["alpha beta", "gamma delta"]),  # else at a space
        ("x" * 25, 10, ["x" * 10, "x" * 10, "x" * 5]),  # else at the limit
        ("Short. " + "word " * 50, 60, ["Short."] + ["word " * 11 + "word"] * 4 + ["word word"]),
    ],
)
def test_a_long_sentence_is_synthesized_in_pieces(
    text: str, max_chars: int, pieces: list[str]
) -> None:
    assert split_sentences(text, max_chars) == pieces
    assert all(len(piece) <= max_chars for piece in pieces)


def test_no_piece_of_a_runaway_text_is_over_the_default_bound() -> None:
    endless = "and then " * 2000  # a webhook's answer with no sentence end at all
    pieces = split_sentences(endless)
    assert max(map(len, pieces)) <= MAX_SENTENCE_CHARS
    assert " ".join(pieces) == endless.strip()
