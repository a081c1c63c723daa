"""The speech models every call shares, loaded once at start-up: a recognizer and a voice per
script language, the end-of-turn model and the scripts' recorded prompts."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ModelError
from ..speech.asr.base import AsrEngine
from ..speech.tts.base import TtsEngine
from ..speech.tts.recorded import RecordedPrompts
from ..speech.turn.base import TurnDetector
from .meaning import MeaningMatcher


@dataclass
class SpeechServices:
    """Models shared by all calls (loaded once at start-up): the default pair, and one per
    script language when the scripts speak several."""

    asr: AsrEngine
    tts: TtsEngine
    by_language: dict[str, tuple[AsrEngine, TtsEngine]] = field(default_factory=dict)
    # The end-of-turn model (Smart Turn), None when not installed: the silence rule decides.
    turn: TurnDetector | None = None
    # The scripts' recorded prompts ({audio: FILE}, {sound: NAME}), converted once.
    recordings: RecordedPrompts = field(default_factory=RecordedPrompts)
    # Script languages whose models are not installed, and why: their scripts cannot take a
    # call (it goes back to the dialplan), the others run.
    unavailable: dict[str, str] = field(default_factory=dict)
    # Intents by meaning (call/meaning.py), None when no menu uses it or the model is missing.
    meaning: MeaningMatcher | None = None

    def for_language(self, language: str) -> tuple[AsrEngine, TtsEngine]:
        """The recognizer and voice of a script language (the default pair for a language no
        script declared, as in tests); ``ModelError`` for one whose models are missing."""
        if language in self.unavailable:
            raise ModelError(f"language '{language}': {self.unavailable[language]}")
        return self.by_language.get(language, (self.asr, self.tts))

    def engines(self) -> dict[str, AsrEngine | TtsEngine | TurnDetector]:
        """Every loaded engine once, by a name for /health and /metrics ("asr:whisper",
        "tts:piper", "asr:vosk/ko", "turn:smart-turn-v3.2")."""
        named: dict[str, AsrEngine | TtsEngine | TurnDetector] = {}
        seen: set[int] = set()
        pairs = [("", (self.asr, self.tts)), *sorted(self.by_language.items())]
        for language, (asr, tts) in pairs:
            suffix = f"/{language}" if language else ""
            for key, engine in ((f"asr:{asr.name}{suffix}", asr), (f"tts:{tts.name}{suffix}", tts)):
                if id(engine) not in seen:
                    seen.add(id(engine))
                    named[key] = engine
        if self.turn is not None:
            named[f"turn:{self.turn.name}"] = self.turn
        return named

    async def close(self) -> None:
        engines = {id(e): e for pair in [(self.asr, self.tts), *self.by_language.values()]
                   for e in pair}  # fmt: skip
        for engine in engines.values():
            await engine.close()
        if self.turn is not None:
            await self.turn.close()
