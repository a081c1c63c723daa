"""What every call runs on, built one way for `voicebot run`, replay, the benches and the tests.

A ``Runtime`` holds what a process loads once and every call shares: the speech engines (one
recognizer and voice per script language, the end-of-turn model), the prompt cache warmed
ahead of time, the HTTP client of webhooks and the ``[webhooks]`` policy. ``Runtime.open``
builds it, ``close`` (or leaving ``async with``) releases all of it in one place, and
``new_session`` gives each call its ``CallSession``, taking only what differs per call.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import aiohttp

from .call import CallObserver, CallSession, SpeechServices
from .call.amd import AmdSettings
from .call.meaning import load_meaning
from .call.webhook import WebhookPolicy, webhook_session
from .config import DEFAULT_MODELS_DIR, Config, TurnConfig
from .dialog.engine import CallStarted, Say, step
from .dialog.model import Script
from .errors import ModelError, VoicebotError
from .media.codecs import Codec
from .media.endpoint import RtpEndpoint
from .speech.asr.base import AsrEngine
from .speech.asr.vosk import VoskEngine
from .speech.asr.whisper import WhisperEngine
from .speech.discovery import VoiceChoice, choose_asr, choose_voice
from .speech.tts.base import TtsEngine
from .speech.tts.cache import CachedTts
from .speech.tts.piper import PiperTts
from .speech.turn.base import TurnDetector
from .speech.turn.smart_turn import SmartTurnDetector, find_smart_turn_model

log = logging.getLogger(__name__)


async def load_services(
    config: Config,
    scripts: Mapping[str, Script],
    default: str,
    models_dir: Path = DEFAULT_MODELS_DIR,
) -> SpeechServices:
    """Load, once, the recognizer and voice each script language needs (``asr.engine`` auto:
    Vosk when a Vosk model for the language is present, else whisper). Models shared by
    several languages are loaded once; ``default`` names the script whose language is the
    default. A language whose models are not installed is left out, with a warning naming its
    scripts and the fix; for the default script's language that is a ``ModelError``."""
    started = time.monotonic()
    languages = sorted({script.language for script in scripts.values()})
    asr_by_model: dict[tuple[Path, str], AsrEngine] = {}
    tts_by_voice: dict[VoiceChoice, CachedTts] = {}
    by_language: dict[str, tuple[AsrEngine, TtsEngine]] = {}
    unavailable: dict[str, str] = {}
    for language in languages:
        try:
            choice = choose_asr(config.asr, language, models_dir)
            voice = choose_voice(config.tts, language, models_dir)
        except ModelError as exc:
            users = ", ".join(sorted(n for n, s in scripts.items() if s.language == language))
            if language == scripts[default].language:
                raise ModelError(f"script(s) {users}: {exc}") from None
            log.warning("script(s) %s cannot take calls: %s", users, exc)
            unavailable[language] = str(exc)
            continue
        # whisper is told the language it hears; Vosk models speak one.
        asr_key = (choice.model, choice.language if choice.engine == "whisper" else "")
        if asr_key not in asr_by_model:
            asr_by_model[asr_key] = (
                VoskEngine(config.asr, choice.model, language)
                if choice.engine == "vosk"
                else WhisperEngine(
                    replace(config.asr, whisper_model=str(choice.model)), choice.language
                )
            )
        if voice not in tts_by_voice:
            tts_by_voice[voice] = CachedTts(
                voice_engine(config, voice),
                config.tts.cache_size,
                cache_dir=config.tts.cache_dir or None,
            )
        by_language[language] = (asr_by_model[asr_key], tts_by_voice[voice])
        log.info("language %s: %s (%s), voice %s %s", language, choice.engine, choice.model,
                 voice.engine, voice.voice or voice.model)  # fmt: skip
    await asyncio.gather(
        *(engine.load() for engine in asr_by_model.values()),
        *(tts.load() for tts in tts_by_voice.values()),
    )
    turn = await load_turn_detector(config.turn, models_dir)
    log.info("models loaded in %.1f s", time.monotonic() - started)
    default_asr, default_tts = by_language[scripts[default].language]
    return SpeechServices(
        asr=default_asr, tts=default_tts, by_language=by_language, turn=turn,
        unavailable=unavailable,
    )  # fmt: skip


def voice_engine(config: Config, voice: VoiceChoice) -> TtsEngine:
    """The text-to-speech engine of a chosen voice (not loaded yet)."""
    if voice.engine == "rhvoice":
        from .speech.tts.rhvoice import RhvoiceTts

        return RhvoiceTts(voice.model, voice.voice)
    return PiperTts(replace(config.tts, voice=str(voice.model)))


def turn_model_path(config: TurnConfig, models_dir: Path) -> Path | None:
    """The Smart Turn model to load, or None (said in the log) when off or not installed."""
    if config.model.lower() == "none":
        log.info("end of turn: turn.model = none, the silence rule alone decides")
        return None
    if config.model:
        if not Path(config.model).is_file():
            raise ModelError(f"turn.model: no model file at {config.model}")
        return Path(config.model)
    path = find_smart_turn_model(models_dir)
    if path is None:
        log.warning(
            "end of turn: no Smart Turn model in %s/smart-turn/ (scripts/fetch-smart-turn.py "
            "installs it; make does): falling back to the silence rule",
            models_dir,
        )
    return path


async def load_turn_detector(config: TurnConfig, models_dir: Path) -> TurnDetector | None:
    path = turn_model_path(config, models_dir)
    if path is None:
        return None
    detector = SmartTurnDetector(path)
    await detector.load()
    log.info("end of turn: Smart Turn v3.2 (%s)", path)
    return detector


def fixed_prompts(script: Script) -> list[str]:
    """Every text the script can say that needs no templating."""
    return sorted({t for t in script.prompts() if "{" not in t})


async def warm_prompts(services: SpeechServices, scripts: Iterable[Script]) -> None:
    """Synthesize fixed prompts ahead of time (or load them from the disk cache) so answering
    them costs nothing."""
    started = time.monotonic()
    warmed = 0
    try:
        for script in scripts:
            if script.language in services.unavailable:
                continue
            _, tts = services.for_language(script.language)
            assert isinstance(tts, CachedTts)
            prompts = fixed_prompts(script)
            await tts.warm(prompts)
            heads = sorted(script.prompt_heads())
            await tts.warm_heads(heads)
            warmed += len(prompts) + len(heads)
    except VoicebotError as exc:
        log.error("could not pre-synthesize prompts (they will be synthesized on demand): %s", exc)
        return
    log.info("%d fixed prompts and prompt heads synthesized in %.1f s", warmed,
             time.monotonic() - started)  # fmt: skip


async def load_recordings(services: SpeechServices, scripts: Iterable[Script]) -> None:
    """Read and convert the scripts' recorded prompts before their first call (a file that
    became unreadable since the script was checked: ``MediaError`` naming it)."""
    paths = [prompt.path for script in scripts for prompt in script.recorded_prompts()]
    await services.recordings.load(paths)


class Runtime:
    """The engines, the warmed prompts, the webhook client and policy every call shares.

    Build it with ``Runtime.open`` (loads the models a set of scripts needs) or, in tests,
    directly around ready ``SpeechServices``. A bad ``[webhooks] allow_hosts`` entry raises
    ``ConfigError`` when the runtime is built, before any call.
    """

    def __init__(
        self,
        config: Config,
        services: SpeechServices,
        *,
        http: aiohttp.ClientSession | None = None,
        webhook_policy: WebhookPolicy | None = None,
    ) -> None:
        self.config = config
        self.services = services
        self.http = http
        self.webhook_policy = webhook_policy or WebhookPolicy.from_config(config.webhooks)
        self._warming: asyncio.Task[None] | None = None
        self._closed = False

    @classmethod
    async def open(
        cls,
        config: Config,
        scripts: Mapping[str, Script],
        default: str,
        *,
        warm: bool = True,
        warm_in_background: bool = False,
        models_dir: Path = DEFAULT_MODELS_DIR,
    ) -> Runtime:
        """Load the models ``scripts`` need and open the webhook client. ``warm``: synthesize
        their fixed prompts first; ``warm_in_background``: while calls are already served
        (a prompt not cached yet is synthesized on demand)."""
        policy = WebhookPolicy.from_config(config.webhooks)  # a bad entry: before the models
        services = await load_services(config, scripts, default, models_dir)
        runtime = cls(config, services, http=webhook_session(policy), webhook_policy=policy)
        try:
            await load_recordings(services, scripts.values())
            usable = [s for s in scripts.values() if s.language not in services.unavailable]
            services.meaning = await load_meaning(usable)  # only if a menu understands by it
            if warm_in_background:
                runtime._warming = asyncio.create_task(
                    warm_prompts(services, scripts.values()), name="warm-prompts"
                )
            elif warm:
                await warm_prompts(services, scripts.values())
        except BaseException:
            await runtime.close()
            raise
        return runtime

    async def warm(self, scripts: Iterable[Script]) -> None:
        """Load the recorded prompts and synthesize (or load from the disk cache) the fixed
        prompts of more scripts."""
        scripts = list(scripts)
        await load_recordings(self.services, scripts)
        await warm_prompts(self.services, scripts)

    async def warm_call(self, script: Script, variables: Mapping[str, str]) -> None:
        """Synthesize what a call's first state says, with its variables, into the memory
        cache (never to disk: it holds a contact's data): an outbound call's greeting, while
        the phone rings."""
        _, tts = self.services.for_language(script.language)
        _, actions = step(script, None, CallStarted(dict(variables)))
        for action in actions:
            if isinstance(action, Say) and action.recording is None:
                async for _chunk in tts.stream(action.text):
                    pass

    def new_session(
        self,
        *,
        call_id: str,
        endpoint: RtpEndpoint,
        codec: Codec,
        script: Script,
        variables: Mapping[str, str] | None = None,
        observers: Sequence[CallObserver] = (),
        amd: AmdSettings | None = None,
        ready: Awaitable[object] | None = None,
    ) -> CallSession:
        """One call's session, wired to an endpoint whose remote end is already known;
        ``amd``: an outbound call, whose answer is judged before the script begins."""
        return CallSession(
            call_id=call_id,
            endpoint=endpoint,
            codec=codec,
            script=script,
            services=self.services,
            vad=self.config.vad,
            variables=variables,
            http=self.http,
            observers=observers,
            log_transcripts=self.config.log.transcripts,
            webhook_policy=self.webhook_policy,
            amd=amd,
            ready=ready,
        )

    async def close(self) -> None:
        """Stop warming, close the webhook client and every engine; idempotent."""
        if self._closed:
            return
        self._closed = True
        warming, self._warming = self._warming, None
        if warming is not None:
            warming.cancel()
            await asyncio.gather(warming, return_exceptions=True)
        http, self.http = self.http, None
        if http is not None:
            await http.close()
        await self.services.close()

    async def __aenter__(self) -> Runtime:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
