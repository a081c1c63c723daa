"""Helpers for real-call tests: ARI checks, the bot's own records, what the caller heard."""

from __future__ import annotations

import asyncio
import base64
import difflib
import json
import re
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from itertools import pairwise
from typing import Any

import numpy as np

from tests.e2e.conftest import AsteriskSandbox, RunningBot
from tests.support.audio import ALLISON
from voicebot.media.codecs import resample
from voicebot.speech.asr.whisper import WhisperEngine
from voicebot.tools.sip import CallResult, read_wav_8k


def allison(name: str) -> np.ndarray:
    """One of Allison's recorded prompts (real human speech), 8 kHz."""
    return read_wav_8k(ALLISON / f"{name}.wav")


def words(text: str) -> str:
    """Lower case, punctuation to spaces, apostrophes kept ("didn't")."""
    return " ".join(re.findall(r"[a-z0-9']+", text.lower().replace("’", "'")))


def heard_line(heard: str, line: str, share: float = 0.75) -> bool:
    """Whether what the caller heard (whisper's text of it) carries most of the bot's `line`,
    in order. Whisper tiny.en mishears some TTS words differently on different CPUs ("4-digit
    account" came back "4 bitch of the count"), so a check of one exact phrase breaks on another
    machine; `share` of the line's words, each matched loosely, does not."""
    said, got = spoken_words(line), spoken_words(heard)
    # Longest common subsequence, with a loose match of one word.
    row = [0] * (len(got) + 1)
    for word in said:
        previous_diagonal = 0
        for j, other in enumerate(got, start=1):
            above = row[j]
            row[j] = previous_diagonal + 1 if sounds_alike(word, other) else max(row[j], row[j - 1])
            previous_diagonal = above
    return bool(said) and row[-1] >= share * len(said)


DIGIT_WORDS = {
    w: str(i) for i, w in enumerate("zero one two three four five six seven eight nine".split())
}


def spoken_words(text: str) -> list[str]:
    """`words`, split, with a digit's name written as the digit (whisper writes either)."""
    return [DIGIT_WORDS.get(word, word) for word in words(text).split()]


def sounds_alike(said: str, heard: str) -> bool:
    """Same word, or one whisper shortened ("account"/"count") or spelt a little differently."""
    if said == heard:
        return True
    longer, shorter = max(said, heard, key=len), min(said, heard, key=len)
    if len(shorter) >= 4 and longer.endswith(shorter):
        return True
    return difflib.SequenceMatcher(None, said, heard).ratio() >= 0.8


def ari_request(sandbox: AsteriskSandbox, method: str, path: str, **params: str) -> Any:
    """One ARI REST request to the sandbox (as a test's own client, not the bot's)."""
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    request = urllib.request.Request(sandbox.ari_url + "/ari" + path + query, method=method)
    auth = base64.b64encode(f"{sandbox.user}:{sandbox.password}".encode()).decode()
    request.add_header("Authorization", "Basic " + auth)
    with urllib.request.urlopen(request, timeout=5) as response:
        body = response.read()
    return json.loads(body) if body else None


def ari_get(sandbox: AsteriskSandbox, path: str) -> list[dict[str, Any]]:
    return list(ari_request(sandbox, "GET", path))


async def wait_for(condition: Callable[[], bool], within_s: float, what: str) -> None:
    deadline = time.monotonic() + within_s
    while not await asyncio.to_thread(condition):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def assert_all_released(sandbox: AsteriskSandbox, bot: RunningBot) -> None:
    """ARI lists no channel or bridge, and the bot holds no call and no port."""
    await wait_for(
        lambda: not ari_get(sandbox, "/channels") and not ari_get(sandbox, "/bridges"),
        10, "Asterisk channels and bridges to go away",
    )  # fmt: skip
    await wait_for(lambda: bot.get("/health")["active_calls"] == 0, 10, "the bot to end the call")
    health = bot.get("/health")
    assert health["ports_in_use"] == 0, health


def last_call(bot: RunningBot) -> dict[str, Any]:
    """The bot's own record of its most recent call (GET /calls)."""
    return dict(bot.get("/calls")["recent"][-1])


def caller_intents(call: dict[str, Any]) -> list[str | None]:
    return [line.get("intent") for line in call["transcript"] if line["who"] == "caller"]


# ---- what the caller heard, piece by piece --------------------------------------------

RATE = 8000


async def heard_per_step(result: CallResult, asr: WhisperEngine) -> list[str]:
    """What the caller heard before its first action, then after each action (Play or Dtmf),
    in order: one text per piece, "" where the bot said nothing."""
    audio = result.received_audio
    start = result.received_start_time
    if start is None or audio.size == 0:
        return []
    acted = sorted(t for t in [*result.sent_start_time, *result.dtmf_sent_time] if t is not None)
    cuts = [0, *(min(max(int((t - start) * RATE), 0), audio.size) for t in acted), audio.size]
    texts = []
    for begin, end in pairwise(cuts):
        texts.append(await transcribe_long(audio[begin:end], asr))
    return texts


async def transcribe_long(audio: np.ndarray, asr: WhisperEngine) -> str:
    """Whisper reads 30 s at most: cut long audio at its pauses (>= 0.5 s quiet)."""
    frame = RATE // 50
    count = audio.size // frame
    if count == 0:
        return ""
    rms = np.sqrt(np.mean(audio[: count * frame].reshape(count, frame).astype(np.float64) ** 2, 1))
    loud = rms > 200.0
    pieces: list[tuple[int, int]] = []
    begin: int | None = None
    quiet = 0
    for index, is_loud in enumerate(loud):
        if is_loud:
            if begin is None:
                begin = index
            quiet = 0
        elif begin is not None:
            quiet += 1
            if quiet >= 25:  # 0.5 s
                pieces.append((begin, index - quiet + 1))
                begin, quiet = None, 0
    if begin is not None:
        pieces.append((begin, count))
    texts = []
    for first, last in pieces:
        chunk = audio[max(first - 10, 0) * frame : min(last + 10, count) * frame]
        if chunk.size >= RATE // 5:
            transcript = await asr.transcribe(resample(chunk, RATE, asr.sample_rate))
            if transcript.text:
                texts.append(transcript.text)
    return " ".join(texts)
