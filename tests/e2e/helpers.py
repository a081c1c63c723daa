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
from typing import Any

import numpy as np

from tests.e2e.conftest import AsteriskSandbox, RunningBot
from tests.support.audio import ALLISON
from voicebot.tools.sip import read_wav_8k


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
