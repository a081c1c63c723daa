"""The bot's side of a call: prompts → TTS → the pacer, with pause, resume and stop.

Each ``say`` is one prompt task; a queued prompt waits for the one before it. When a prompt
has been played out the speaker tells the session (``PlaybackDone``), which is how the
turn core learns that the caller may answer now.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence

from ..dialog.model import RecordedPrompt, SayItem
from ..media.codecs import Codec, PcmArray, resample
from ..media.pacer import Pacer
from ..speech.tts.base import TtsEngine, split_sentences
from ..speech.tts.recorded import RecordedPrompts
from . import turns

log = logging.getLogger(__name__)

# The most one prompt may speak (about a minute and a half of speech): a rendered text past it,
# e.g. a webhook's answer, is cut at the last sentence end that fits.
MAX_PROMPT_CHARS = 1500
# Audio synthesized ahead of what the caller has heard. Enough to ride out a sentence's
# synthesis (Piper runs ~15x real time); a long prompt then costs seconds of memory, not
# minutes, and leaves the one synthesis thread to other calls meanwhile.
SYNTHESIS_AHEAD_S = 3.0
# A recorded prompt goes to the pacer in pieces of this length, as synthesized speech does.
RECORDED_CHUNK_S = 0.5


def bounded(texts: Sequence[SayItem], limit: int = MAX_PROMPT_CHARS) -> tuple[SayItem, ...]:
    """``texts`` up to ``limit`` characters in all, cut after the last whole sentence that
    fits (a first sentence longer than the limit is cut at a word). Recorded prompts count
    no characters: their length is the author's choice, checked when the script loads."""
    kept: list[SayItem] = []
    room = limit
    for text in texts:
        if isinstance(text, RecordedPrompt):
            kept.append(text)
            continue
        if len(text) <= room:
            kept.append(text)
            room -= len(text)
            continue
        sentences, taken = split_sentences(text, max_chars=len(text)), ""
        for sentence in sentences:
            candidate = f"{taken} {sentence}".strip()
            if len(candidate) > room:
                break
            taken = candidate
        if not taken and not kept:
            taken = text[:room].rsplit(" ", 1)[0] or text[:room]
        if taken:
            kept.append(taken)
        break
    return tuple(kept)


class Speaker:
    def __init__(
        self,
        *,
        call_id: str,
        tts: TtsEngine,
        recordings: RecordedPrompts,
        pacer: Pacer,
        codec: Codec,
        deliver: Callable[[turns.TurnInput], None],
        spawn: Callable[..., asyncio.Task[None]],
        on_first_audio: Callable[[str], None],
    ) -> None:
        self.call_id = call_id
        self.tts = tts
        self.recordings = recordings
        self.pacer = pacer
        self.codec = codec
        self._deliver = deliver
        self._spawn = spawn
        # Called with a prompt's text when its first audio is ready (timing, transcript).
        self._on_first_audio = on_first_audio
        self._current: asyncio.Task[None] | None = None
        # Every prompt not yet played out, the one playing and those queued behind it: a
        # queued one cancelled before it ever ran cannot pass the stop on to the one it waits
        # for, so stop() cancels them all.
        self._prompts: list[asyncio.Task[None]] = []

    @property
    def speaking(self) -> bool:
        return self._current is not None and not self._current.done()

    def say(self, prompt: int, texts: Sequence[SayItem], *, queued: bool) -> None:
        spoken = bounded(texts)
        if spoken != tuple(texts):
            log.warning("call %s: a prompt of %d characters cut to %d (at most %d per prompt)",
                        self.call_id, _characters(texts), _characters(spoken),
                        MAX_PROMPT_CHARS)  # fmt: skip
        previous = self._current if queued and self.speaking else None
        if not queued:
            self.stop()
        self._current = self._spawn(self._play(prompt, spoken, previous), "speaker")
        self._prompts = [task for task in self._prompts if not task.done()]
        self._prompts.append(self._current)

    def pause(self) -> None:
        self.pacer.pause()

    def resume(self) -> None:
        self.pacer.resume()

    def stop(self) -> int:
        """Cancel the prompt (and any queued behind it) and drop its audio; frames dropped."""
        for task in self._prompts:
            task.cancel()
        self._prompts = []
        self._current = None
        return self.pacer.flush()

    async def _play(
        self, prompt: int, texts: tuple[SayItem, ...], after: asyncio.Task[None] | None
    ) -> None:
        if after is not None:
            try:
                # Waits without taking on ``after``'s outcome; our own cancellation (a barge-in)
                # still arrives here, and then the prompt queued before us must stop too.
                await asyncio.wait([after])
            except asyncio.CancelledError:
                after.cancel()
                raise
        for text in texts:
            started = False
            async for chunk, rate, label in self._audio_of(text):
                if not started:
                    started = True
                    self._on_first_audio(label)
                # Off the loop: under a burst of answers many calls resample at once, and the
                # pacers of every call share this loop.
                audio = await asyncio.to_thread(resample, chunk, rate, self.codec.sample_rate)
                self.pacer.play(audio)
                # The next chunk is asked for (and synthesized) only when there is room.
                await self.pacer.wait_for_room(SYNTHESIS_AHEAD_S)
        self.pacer.end_of_stream()
        await self.pacer.wait_idle()
        self._deliver(turns.PlaybackDone(time.monotonic(), prompt))

    async def _audio_of(self, item: SayItem) -> AsyncIterator[tuple[PcmArray, int, str]]:
        """``item``'s audio in chunks, with their rate and how the transcript names it."""
        if isinstance(item, str):
            async for chunk in self.tts.stream(item):
                yield chunk, self.tts.sample_rate, item
            return
        recorded = await self.recordings.audio(item.path)
        rate = self.recordings.sample_rate
        step = int(rate * RECORDED_CHUNK_S)
        for start in range(0, len(recorded), step):
            yield recorded[start : start + step], rate, item.label


def _characters(items: Sequence[SayItem]) -> int:
    return sum(len(item) for item in items if isinstance(item, str))
