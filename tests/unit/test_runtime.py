"""The Runtime every call runs on, built around test doubles for the speech engines: what a
session takes from the config, the ``[webhooks]`` policy, releasing everything once, the
prompts worth synthesizing ahead, and which end-of-turn model is loaded."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
from collections.abc import AsyncIterator, Iterable, Mapping
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.support.doubles import ListAsr, RecordingDetector, ToneTts
from voicebot import runtime as runtime_module
from voicebot.call import CallEnd, SpeechServices
from voicebot.config import Config, LogConfig, TurnConfig, VadConfig, WebhookConfig
from voicebot.dialog.model import Script
from voicebot.dialog.parser import parse_script
from voicebot.errors import ConfigError, ModelError
from voicebot.media.codecs import ULAW
from voicebot.media.endpoint import PortAllocator, RtpEndpoint
from voicebot.runtime import Runtime, fixed_prompts, turn_model_path
from voicebot.speech.tts.cache import CachedTts
from voicebot.speech.turn import smart_turn

FAST_TTS_S_PER_CHAR = 0.001


def lookup_script(url: str) -> Script:
    return parse_script(
        f"""
start: lookup
states:
  lookup:
    say: "One moment."
    webhook:
      url: "{url}"
      goto: found
      on_error: {{say: "The shop cannot be reached.", hangup: true}}
  found:
    say: "Found it."
    hangup: true
""",
        "shop.yaml",
    )


class ClosingAsr(ListAsr):
    def __init__(self) -> None:
        super().__init__([])
        self.closes = 0

    async def close(self) -> None:
        self.closes += 1


class ClosingTts(ToneTts):
    def __init__(self) -> None:
        super().__init__(FAST_TTS_S_PER_CHAR)
        self.closes = 0

    async def close(self) -> None:
        self.closes += 1


class ClosingDetector(RecordingDetector):
    def __init__(self) -> None:
        super().__init__()
        self.closes = 0

    async def close(self) -> None:
        self.closes += 1


@pytest.fixture
async def shop() -> AsyncIterator[tuple[str, list[str]]]:
    """An in-process web service: its URL and the paths it was asked for."""
    asked: list[str] = []

    async def answer(request: web.Request) -> web.Response:
        asked.append(request.path)
        return web.json_response({"status": "found"})

    app = web.Application()
    app.router.add_route("*", "/orders", answer)
    async with TestServer(app, host="127.0.0.1") as server:
        yield str(server.make_url("/orders")), asked


async def converse(runtime: Runtime, script: Script) -> CallEnd:
    """One call from the greeting to the bot's hangup, with nobody on the line."""
    endpoint = await RtpEndpoint.open(PortAllocator("127.0.0.1", 41170, 41179), "127.0.0.1")
    try:
        session = runtime.new_session(call_id="rt-1", endpoint=endpoint, codec=ULAW, script=script)
        return await asyncio.wait_for(session.run(), 20)
    finally:
        await endpoint.aclose()


# -- new_session: what each call takes from the config ---------------------------------------


@pytest.mark.parametrize(
    ("allow_hosts", "asked", "said", "refused"),
    [
        ("", [], "The shop cannot be reached.", "is a private address (loopback)"),
        ("127.0.0.1", ["/orders"], "Found it.", None),
        ("shop.example", [], "The shop cannot be reached.", "is not in webhooks.allow_hosts"),
    ],
)
async def test_a_session_calls_webhooks_under_the_webhooks_policy(
    shop: tuple[str, list[str]],
    caplog: pytest.LogCaptureFixture,
    allow_hosts: str,
    asked: list[str],
    said: str,
    refused: str | None,
) -> None:
    url, requests = shop
    tts = ToneTts(FAST_TTS_S_PER_CHAR)
    config = Config(webhooks=WebhookConfig(allow_hosts=allow_hosts))
    async with aiohttp.ClientSession() as http:
        runtime = Runtime(config, SpeechServices(ListAsr([]), tts), http=http)
        end = await converse(runtime, lookup_script(url))
    assert end == CallEnd("bot-hangup")
    assert requests == asked
    assert tts.spoken == ["One moment.", said]
    if refused is not None:
        assert refused in caplog.text


async def test_a_session_without_an_http_client_fails_its_webhooks(
    shop: tuple[str, list[str]],
) -> None:
    url, requests = shop
    tts = ToneTts(FAST_TTS_S_PER_CHAR)
    await converse(Runtime(Config(), SpeechServices(ListAsr([]), tts)), lookup_script(url))
    assert requests == []
    assert tts.spoken == ["One moment.", "The shop cannot be reached."]


@pytest.mark.parametrize("transcripts", [True, False])
async def test_a_session_logs_the_bots_words_at_info_only_with_log_transcripts(
    shop: tuple[str, list[str]], caplog: pytest.LogCaptureFixture, transcripts: bool
) -> None:
    caplog.set_level(logging.INFO, logger="voicebot")
    url, _ = shop
    config = Config(
        log=LogConfig(transcripts=transcripts), webhooks=WebhookConfig(allow_hosts="127.0.0.1")
    )
    async with aiohttp.ClientSession() as http:
        services = SpeechServices(ListAsr([]), ToneTts(FAST_TTS_S_PER_CHAR))
        await converse(Runtime(config, services, http=http), lookup_script(url))
    said = [r.getMessage() for r in caplog.records if "says" in r.getMessage()]
    expected = ["call rt-1: bot says 'One moment.'", "call rt-1: bot says 'Found it.'"]
    assert said == (expected if transcripts else [])


async def test_a_session_listens_with_the_configs_vad() -> None:
    runtime = Runtime(Config(vad=VadConfig(frame_ms=25)), SpeechServices(ListAsr([]), ToneTts()))
    endpoint = await RtpEndpoint.open(PortAllocator("127.0.0.1", 41170, 41179), "127.0.0.1")
    try:
        with pytest.raises(ValueError, match="10, 20 or 30 ms frames, got 25"):
            runtime.new_session(
                call_id="rt-1",
                endpoint=endpoint,
                codec=ULAW,
                script=lookup_script("http://shop.example/"),
            )
    finally:
        await endpoint.aclose()


# -- the [webhooks] policy -------------------------------------------------------------------


def test_the_policy_is_the_configs() -> None:
    webhooks = WebhookConfig(
        allow_hosts="shop.example, 10.0.0.5:8080", connect_timeout_s=0.5, max_response_bytes=1000
    )
    config = Config(webhooks=webhooks)
    policy = Runtime(config, SpeechServices(ListAsr([]), ToneTts())).webhook_policy
    assert [(h.host, h.port) for h in policy.allow_hosts] == [
        ("shop.example", None),
        ("10.0.0.5", 8080),
    ]
    assert (policy.connect_timeout_s, policy.max_response_bytes) == (0.5, 1000)


def test_a_bad_allow_hosts_entry_is_refused_when_the_runtime_is_built() -> None:
    config = Config(webhooks=WebhookConfig(allow_hosts="shop.example, http://x/y"))
    with pytest.raises(ConfigError, match=r"webhooks\.allow_hosts: bad entry 'http://x/y'"):
        Runtime(config, SpeechServices(ListAsr([]), ToneTts()))


async def test_a_bad_allow_hosts_entry_is_refused_before_any_model_is_loaded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loaded: list[str] = []

    async def load_services(*args: object, **kwargs: object) -> SpeechServices:
        loaded.append("models")
        return SpeechServices(ListAsr([]), ToneTts())

    monkeypatch.setattr(runtime_module, "load_services", load_services)
    config = Config(webhooks=WebhookConfig(allow_hosts="http://x/y"))
    with pytest.raises(ConfigError, match=r"webhooks\.allow_hosts"):
        await Runtime.open(config, {}, "none")
    assert loaded == []


# -- open and close --------------------------------------------------------------------------


async def test_close_releases_the_http_client_and_every_engine_once_each() -> None:
    asr, korean_asr, tts, detector = ClosingAsr(), ClosingAsr(), ClosingTts(), ClosingDetector()
    # The default pair serves English too: each engine is closed once however often it is named.
    services = SpeechServices(
        asr, tts, by_language={"en": (asr, tts), "ko": (korean_asr, tts)}, turn=detector
    )
    http = aiohttp.ClientSession()
    runtime = Runtime(Config(), services, http=http)
    await runtime.close()
    assert http.closed and runtime.http is None
    assert (asr.closes, korean_asr.closes, tts.closes, detector.closes) == (1, 1, 1, 1)
    await runtime.close()  # again: nothing is closed twice
    assert runtime.http is None
    assert (asr.closes, korean_asr.closes, tts.closes, detector.closes) == (1, 1, 1, 1)


async def test_leaving_async_with_closes_the_runtime() -> None:
    tts = ClosingTts()
    async with (
        aiohttp.ClientSession() as http,
        Runtime(Config(), SpeechServices(ListAsr([]), tts), http=http) as runtime,
    ):
        assert runtime.http is http
    assert http.closed and tts.closes == 1


async def test_open_warms_the_fixed_prompts_and_their_heads_then_serves_calls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    voice = ToneTts(FAST_TTS_S_PER_CHAR)

    async def load_services(
        config: Config, scripts: Mapping[str, Script], default: str, models_dir: Path
    ) -> SpeechServices:
        return SpeechServices(ListAsr([]), CachedTts(voice, config.tts.cache_size))

    monkeypatch.setattr(runtime_module, "load_services", load_services)
    script = parse_script(
        """
start: ask
states:
  ask:
    say: "Your code?"
    collect: {slot: code, type: digits, length: 3, goto: bye}
  bye:
    say: "You said {code}."
    hangup: true
""",
        "code.yaml",
    )
    runtime = await Runtime.open(Config(), {"code": script}, "code")
    try:
        # The fixed prompts (the defaults' reactions too) and the head of "You said {code}.".
        assert sorted(voice.spoken) == [
            "Goodbye.",
            "Sorry, I didn't get that.",
            "Sorry, I didn't hear anything.",
            "You said",
            "Your code?",
        ]
        assert runtime.http is not None and not runtime.http.closed
    finally:
        await runtime.close()
    assert runtime.http is None


async def test_close_stops_prompts_warming_in_the_background(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started = asyncio.Event()

    async def warm_forever(services: SpeechServices, scripts: Iterable[Script]) -> None:
        started.set()
        await asyncio.Event().wait()

    async def load_services(*args: object, **kwargs: object) -> SpeechServices:
        return SpeechServices(ListAsr([]), ToneTts())

    monkeypatch.setattr(runtime_module, "load_services", load_services)
    monkeypatch.setattr(runtime_module, "warm_prompts", warm_forever)
    runtime = await Runtime.open(Config(), {}, "none", warm_in_background=True)
    await started.wait()  # calls are served meanwhile: open did not wait for it
    warming = [t for t in asyncio.all_tasks() if t.get_name() == "warm-prompts"]
    assert len(warming) == 1
    await runtime.close()
    assert warming[0].cancelled()


# -- what is loaded --------------------------------------------------------------------------


def test_fixed_prompts_are_the_texts_that_need_no_templating() -> None:
    script = parse_script(
        """
start: a
defaults:
  on_no_input: {say: "Sorry?"}
states:
  a:
    say: ["Hello.", "Hello {caller_id}.", "Goodbye."]
    hangup: true
""",
        "fixed.yaml",
    )
    # The defaults' reactions are spoken too ("Goodbye." once, though said twice).
    assert fixed_prompts(script) == ["Goodbye.", "Hello.", "Sorry, I didn't get that.", "Sorry?"]


@pytest.mark.parametrize("off", ["none", "None", "NONE"])
def test_turn_model_none_is_the_silence_rule(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, off: str
) -> None:
    caplog.set_level(logging.INFO, logger="voicebot")
    assert turn_model_path(TurnConfig(model=off), tmp_path) is None
    assert "turn.model = none, the silence rule alone decides" in caplog.text


def test_a_turn_model_that_is_not_there_is_a_model_error(tmp_path: Path) -> None:
    missing = tmp_path / "elsewhere.onnx"
    with pytest.raises(ModelError, match=re.escape(f"turn.model: no model file at {missing}")):
        turn_model_path(TurnConfig(model=str(missing)), tmp_path)


def test_a_turn_model_named_is_used(tmp_path: Path) -> None:
    model = tmp_path / "my-turn.onnx"
    model.write_bytes(b"onnx")
    assert turn_model_path(TurnConfig(model=str(model)), tmp_path / "models") == model


def test_without_smart_turn_installed_the_silence_rule_decides(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Not the repository's copy either.
    monkeypatch.setattr(smart_turn, "_REPO", tmp_path / "repo")
    models = tmp_path / "models"
    (models / "whisper").mkdir(parents=True)
    assert turn_model_path(TurnConfig(), models) is None
    assert f"no Smart Turn model in {models}/smart-turn/" in caplog.text
    installed = models / "smart-turn" / "smart-turn-v3.2-cpu.onnx"
    installed.parent.mkdir()
    installed.write_bytes(b"onnx")
    assert turn_model_path(TurnConfig(), models) == installed


# -- languages whose models are not installed ---------------------------------------------

HANGUP = "start: a\nstates:\n  a:\n    say: 'Hi.'\n    hangup: true\n"


async def test_a_language_without_its_models_leaves_its_scripts_out_not_the_bot(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    scripts = {
        "demo": parse_script(HANGUP, "demo.yaml"),
        "ru/demo": parse_script("language: ru\n" + HANGUP, "ru/demo.yaml"),
    }
    config = Config(turn=TurnConfig(model="none"))
    config = dataclasses.replace(
        config, tts=dataclasses.replace(config.tts, rhvoice_dir=str(tmp_path / "no-rhvoice"))
    )
    caplog.set_level(logging.WARNING, "voicebot.runtime")
    services = await runtime_module.load_services(config, scripts, "demo", tmp_path / "models")
    try:
        assert "script(s) ru/demo cannot take calls" in caplog.text
        assert "VOICEBOT_LANGUAGES=en,ru" in caplog.text
        assert list(services.unavailable) == ["ru"]
        services.for_language("en")
        with pytest.raises(ModelError, match="language 'ru': no speech recognizer"):
            services.for_language("ru")
        await runtime_module.warm_prompts(services, scripts.values())  # skips ru, no error
    finally:
        await services.close()
    # For the default script's language it is an error before anything loads.
    with pytest.raises(ModelError, match="script\\(s\\) ru/demo: no speech recognizer"):
        await runtime_module.load_services(config, scripts, "ru/demo", tmp_path / "models")
