"""``voicebot call``: a real SIP test call through Asterisk, printed as a conversation.

The caller is sipp (``voicebot.tools.sip``) speaking recorded human audio. What the bot said is
transcribed from the audio the caller received; what the bot heard comes from the bot's own
status endpoint (``/calls``), so both sides of the conversation are shown.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import pairwise
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np

from ..config import Config
from ..errors import VoicebotError
from ..media import levels
from ..media.codecs import ULAW, resample
from ..media.peer import Arrival
from ..speech.asr.whisper import WhisperEngine
from ..speech.discovery import choose_asr
from .bench import PacingStats
from .sip import CallResult, Hangup, Pause, Play, Step, WaitForBye, place_call, read_wav_8k
from .sounds import ALLISON_DIR, missing_sound_message

# Allison's recordings matching the demo script's intents: "hours" → hours, "goodbye" → goodbye.
DEFAULT_UTTERANCES = (ALLISON_DIR / "hours.wav", ALLISON_DIR / "goodbye.wav")
# The same two answers for the Russian demo (prompts/ru/demo.yaml), «часы работы» and «до
# свидания» in RHVoice's Aleksandr (the bot speaks as Irina), from the repository's fixtures
# (scripts/make-caller-audio.py): `voicebot call` is run from a checkout.
_RUSSIAN_AUDIO = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "audio" / "ru"
DEFAULT_UTTERANCES_BY_LANGUAGE: Mapping[str, tuple[Path, ...]] = {
    "en": DEFAULT_UTTERANCES,
    "ru": (_RUSSIAN_AUDIO / "hours.wav", _RUSSIAN_AUDIO / "goodbye.wav"),
}
# Time to let the bot finish its greeting / answer before the caller speaks.
GREETING_WAIT_S = 8.0
ANSWER_WAIT_S = 7.0
# Whisper reads 30 s windows; longer bot audio is transcribed in pieces.
MAX_PIECE_S = 28.0
RECEIVED_RATE = 8000


@dataclass(frozen=True)
class SpokenSegment:
    start_s: float  # seconds since the call was answered
    text: str


def caller_steps(utterances: Sequence[np.ndarray], *, wait_for_bye: bool) -> list[Step]:
    steps: list[Step] = [Pause(GREETING_WAIT_S)]
    for index, pcm in enumerate(utterances):
        steps.append(Play(pcm))
        if index < len(utterances) - 1:
            steps.append(Pause(ANSWER_WAIT_S))
    steps.append(WaitForBye(timeout_s=20.0) if wait_for_bye else Pause(ANSWER_WAIT_S))
    if not wait_for_bye:
        steps.append(Hangup())
    return steps


async def transcribe_received(
    result: CallResult, asr: WhisperEngine, *, min_rms: float = 200.0
) -> list[SpokenSegment]:
    """What the caller heard, cut at the moments the caller started speaking."""
    audio = result.received_audio
    start = result.received_start_time
    if start is None or audio.size == 0:
        return []
    cuts = [0]
    for sent in result.sent_start_time:
        if sent is not None:
            cuts.append(min(max(int((sent - start) * RECEIVED_RATE), 0), audio.size))
    cuts.append(audio.size)
    segments: list[SpokenSegment] = []
    piece = int(MAX_PIECE_S * RECEIVED_RATE)
    for begin, end in pairwise(cuts):
        texts = []
        for offset in range(begin, end, piece):
            chunk = audio[offset : min(offset + piece, end)]
            if chunk.size == 0 or np.sqrt(np.mean(chunk.astype(np.float64) ** 2)) < min_rms:
                continue
            transcript = await asr.transcribe(resample(chunk, RECEIVED_RATE, asr.sample_rate))
            if transcript.text:
                texts.append(transcript.text)
        if texts:
            answered = result.answered_time or start
            segments.append(
                SpokenSegment(start + begin / RECEIVED_RATE - answered, " ".join(texts))
            )
    return segments


# Asterisk marks no talkspurts towards the phone: a pause this long starts a new one.
TALKSPURT_SPLIT_MS = 200.0


def voice_to_voice_ms(result: CallResult, step: int, pcm: np.ndarray) -> float | None:
    """What the caller lives, at the phone: from the last voiced frame of the caller's
    ``step``-th utterance (``pcm``, as sent) to the first voiced frame of the bot's answer.
    Not from the end of the file: recordings carry silence after the last word."""
    if step >= len(result.sent_start_time) or result.sent_start_time[step] is None:
        return None
    ended = result.sent_start_time[step] + speech_end_s(pcm)  # type: ignore[operator]
    answered = result.first_voiced_after(ended)
    return None if answered is None else (answered - ended) * 1000


# No packet for this long (they come every 20 ms while the bot talks) means it stopped.
PROMPT_STOPPED_GAP_S = 0.1


def speech_onset_s(pcm: np.ndarray, rate: int = RECEIVED_RATE) -> float:
    """Offset of the first voiced 20 ms frame of a recording."""
    return levels.speech_onset_s(pcm, rate)


def speech_end_s(pcm: np.ndarray, rate: int = RECEIVED_RATE) -> float:
    """Offset of the end of the last voiced 20 ms frame of a recording."""
    return levels.speech_end_s(pcm, rate)


def barge_in_stop_ms(
    result: CallResult, step: int, pcm: np.ndarray, onset_s: float | None = None
) -> float | None:
    """How long the bot kept talking after the caller started speaking over it (step
    ``step`` plays ``pcm``), both measured at the caller: onset of the caller's voice on the
    wire (``onset_s`` into ``pcm`` when known, else its first frame louder than VOICED_RMS) →
    the last packet of the bot's prompt. The bot sends nothing while it is silent, so
    the prompt ends where the packets stop (its own pauses still come as quiet packets)."""
    sent = result.sent_start_time[step] if step < len(result.sent_start_time) else None
    if sent is None:
        return None
    onset = sent + (speech_onset_s(pcm) if onset_s is None else onset_s)
    last: float | None = None
    for received in result.received_packets:
        if received.arrival_time < onset:
            last = received.arrival_time
            continue
        if last is not None and received.arrival_time - last > PROMPT_STOPPED_GAP_S:
            break  # the prompt stopped; what follows is the answer
        last = received.arrival_time
    return None if last is None else max(0.0, last - onset) * 1000


def wire_pacing(result: CallResult) -> str:
    """How evenly the bot's audio reached the caller, packet by packet."""
    stats = PacingStats(ULAW.name, ULAW.bytes_per_frame())
    arrivals = [Arrival(r.arrival_time, r.packet) for r in result.received_packets]
    stats.add_stream(arrivals, ULAW.payload_type, ULAW.samples_per_frame(),
                     split_gap_ms=TALKSPURT_SPLIT_MS)  # fmt: skip
    s = stats.summary()
    if not s["gaps"]:
        return "bot audio on the wire: no packets"
    return (
        f"bot audio on the wire: {s['packets']} packets in {s['talkspurts']} talkspurts; gaps "
        f"median {s['median_ms']} p99 {s['p99_ms']} max {s['max_ms']} ms, "
        f"{s['within_tolerance']:.1%} within 20±2 ms; wrong size {s['wrong_size']}"
    )


async def bot_is_answering(config: Config) -> str | None:
    """Why a test call would find no bot (None when its /health says it is connected)."""
    if not config.http.port:
        return None  # the status server is off: nothing to ask
    url = f"http://{config.http.host}:{config.http.port}/health"
    timeout = aiohttp.ClientTimeout(total=3)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(url) as response,
        ):
            health = await response.json()
    except (aiohttp.ClientError, OSError, ValueError, TimeoutError):
        return (
            f"no voicebot is running here (nothing answered at {url}): start it with "
            "`make run` in another terminal, then call again"
        )
    if not health.get("ari_connected", True):
        return (
            f"the bot is running but not connected to Asterisk at {config.ari.url}: is Asterisk "
            "up? (`make run` starts the sandbox's; the bot's log says why it cannot connect)"
        )
    return None


async def recent_call_summary(config: Config, since: float) -> dict[str, Any] | None:
    """The bot's own record of the newest call that started after ``since`` (or None)."""
    if not config.http.port:
        return None
    url = f"http://{config.http.host}:{config.http.port}/calls"
    headers = {"Authorization": f"Bearer {config.http.token}"} if config.http.token else {}
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(url, headers=headers) as response,
        ):
            calls = (await response.json())["recent"]
    except (aiohttp.ClientError, OSError, ValueError, KeyError):
        return None
    mine = [c for c in calls if c.get("started", 0) >= since - 1]
    return mine[-1] if mine else None


def load_utterances(
    utterances: Sequence[str] | None, language: str = "en"
) -> list[tuple[str, np.ndarray]]:
    """The caller's lines as (name, 8 kHz PCM); by default 'hours' and 'goodbye' in
    ``language`` (Allison's in English)."""
    if utterances:
        paths = [Path(u) for u in utterances]
    else:
        defaults = DEFAULT_UTTERANCES_BY_LANGUAGE.get(language)
        if defaults is None:
            known = ", ".join(sorted(DEFAULT_UTTERANCES_BY_LANGUAGE))
            raise VoicebotError(
                f"no default caller lines in language '{language}' (there are for {known}): "
                f"give them with --say"
            )
        paths = list(defaults)
    lines = []
    for path in paths:
        if not path.is_file():
            raise VoicebotError(missing_sound_message(path))
        try:
            lines.append((path.name, read_wav_8k(path)))
        except ValueError as exc:  # not 8 kHz 16-bit mono: a bad --say, not a crash
            raise VoicebotError(f"--say {path}: {exc}") from None
    return lines


async def run_probe_call(
    config: Config,
    *,
    extension: str,
    target: str,
    utterances: Sequence[tuple[str, np.ndarray]],
    wait_for_bye: bool,
    workdir: Path,
    language: str = "en",
) -> int:
    """Call, print the conversation (the bot's lines transcribed in ``language``); ``workdir``
    must exist. Returns the exit code."""
    pcms = [pcm for _, pcm in utterances]
    names = [name for name, _ in utterances]
    not_answering = await bot_is_answering(config)
    if not_answering is not None:
        raise VoicebotError(not_answering)
    # The whisper model the bot itself would hear the language with (raises ModelError when
    # it is not installed, before anyone is called).
    choice = choose_asr(replace(config.asr, engine="whisper"), language)
    asr = WhisperEngine(replace(config.asr, whisper_model=str(choice.model)), choice.language)
    await asr.load()
    try:
        print(
            f"calling {extension} at {target} with sipp; the caller will say: " + ", ".join(names)
        )
        since = time.time()
        result = await place_call(
            target=target, extension=extension, workdir=workdir,
            steps=caller_steps(pcms, wait_for_bye=wait_for_bye),
            timeout_s=GREETING_WAIT_S + len(pcms) * (ANSWER_WAIT_S + 5) + 30,
        )  # fmt: skip
        heard = await transcribe_received(result, asr)
    finally:
        await asr.close()

    print(
        f"\ncall {result.call_id}: {result.received_duration_s:.1f} s of bot audio received, "
        f"hung up by {result.hangup_by or 'nobody'}\n"
    )
    summary = await recent_call_summary(config, since)
    bot_heard = [line for line in (summary or {}).get("transcript", []) if line["who"] == "caller"]
    for index, segment in enumerate(heard):
        print(f"  bot    [{segment.start_s:5.1f} s] {segment.text}")
        if index < len(names):
            what = f"bot heard {bot_heard[index]['text']!r}" if index < len(bot_heard) else ""
            print(f"  caller           ({names[index]}) {what}")
    if summary is None:
        print("\n(the bot's /calls endpoint was not reachable: what it heard is not shown)")
    else:
        for turn in summary.get("turns", []):
            print(
                f"  bot's view, turn {turn['turn']}: {turn['total_ms']} ms voice end → first RTP "
                f"(turn taken after {turn['wait_ms']}: pause {turn['pause_ms']}, asr "
                f"{turn['asr_ms']}; tts {turn['tts_ms']}, send {turn['send_ms']})"
            )
    for index, pcm in enumerate(pcms):
        heard_after = voice_to_voice_ms(result, index, pcm)
        if heard_after is not None:
            print(
                f"  voice to voice, turn {index + 1}: {heard_after:.0f} ms at the phone (the "
                "caller's last voiced frame → the bot's first voiced frame)"
            )
    print(f"  {wire_pacing(result)}")
    print(f"\nfiles (capture, sipp logs): {result.workdir}")
    return 0 if heard else 1


def start_sandbox_bot(
    repo: Path, overrides: Mapping[str, str], log: Path, http_port: int, name: str
) -> subprocess.Popen[bytes]:
    """``voicebot run`` of ``repo`` against its sandbox Asterisk (``VOICEBOT_*`` ``overrides``),
    returned once its /health says it is connected to ARI; ``name`` is the bench, for errors."""
    sandbox = str(repo / "scripts" / "asterisk-sandbox.sh")
    password = subprocess.run(
        [sandbox, "password"], capture_output=True, text=True, check=True
    ).stdout.strip()
    env = {**os.environ, "VOICEBOT_ARI_PASSWORD": password,
           "VOICEBOT_HTTP_PORT": str(http_port), **overrides}  # fmt: skip
    process = subprocess.Popen(
        [str(repo / ".venv" / "bin" / "voicebot"), "run"],
        cwd=repo, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{name}: the bot exited; its log: {log}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/health", timeout=2) as r:
                if json.loads(r.read()).get("ari_connected"):
                    return process
        except (OSError, ValueError):
            pass
        time.sleep(0.5)
    process.kill()
    raise SystemExit(f"{name}: the bot did not connect to Asterisk; its log: {log}")
