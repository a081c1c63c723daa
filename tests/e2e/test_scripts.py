"""Real calls through Asterisk to the shipped example scripts (prompts/bank.yaml, clinic.yaml,
delivery.yaml on extensions 102-104): speech and DTMF navigation, slot collection, transfers
into the dialplan, no-input escalation and webhooks served by this test process.

The caller (sipp) speaks the fixtures in tests/fixtures/audio/ and presses RFC 4733 keys; what
the caller heard is transcribed with whisper, cut at the moments the caller acted, so each
piece is the bot's answer to one caller action.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.e2e.conftest import AsteriskSandbox, RunningBot
from tests.e2e.helpers import (
    ari_get,
    assert_all_released,
    caller_intents,
    heard_line,
    heard_per_step,
    last_call,
    transcribe_long,
    wait_for,
    words,
)
from voicebot.speech.asr.whisper import WhisperEngine
from voicebot.tools.sip import (
    Dtmf,
    Pause,
    Play,
    Step,
    WaitForBye,
    place_call,
    read_wav_8k,
)

pytestmark = pytest.mark.slow
AUDIO = Path(__file__).resolve().parents[1] / "fixtures" / "audio"
RATE = 8000
# Each greeting lasts about 5-8 s; the caller lets it finish (barge-in is tested elsewhere).
BANK_GREETING_S = 7.0
ACCOUNT_PROMPT = "Please say or type your four digit account number."  # prompts/bank.yaml
CLINIC_GREETING_S = 10.5
CLINIC_GREETING = (
    "Welcome to Sunny Clinic. Say appointment to book a visit, cancel to cancel one, hours for "
    "our opening hours, or reception. Or press 1, 2, 3, or 0."
)  # prompts/clinic.yaml
DELIVERY_GREETING_S = 8.0
WEBHOOK_PORT = 18099  # the scripts' webhook URLs point here


def say(name: str) -> Play:
    return Play(read_wav_8k(AUDIO / f"{name}.wav"))


# ---- what the caller heard -------------------------------------------------------------

NUMBER_WORDS = {
    w: str(i) for i, w in enumerate("zero one two three four five six seven eight nine".split())
}


# Whisper writes a spoken digit as its homophone now and then ("account for two one seven");
# next to another digit it is that digit.
HOMOPHONES = {"for": "4", "to": "2", "too": "2", "won": "1", "ate": "8", "oh": "0"}


def digit_string(text: str) -> str:
    """All digits in order, number words included: "4, 2, one 7" -> "4217"."""
    tokens = [NUMBER_WORDS.get(w, w) for w in re.findall(r"[a-z0-9]+", text.lower())]
    out = []
    for index, word in enumerate(tokens):
        if word in HOMOPHONES:
            near = tokens[max(index - 1, 0) : index] + tokens[index + 1 : index + 2]
            if any(n.isdigit() for n in near):
                word = HOMOPHONES[word]
        if word.isdigit():
            out.append(word)
    return "".join(out)


def says_42_dollars(text: str) -> bool:
    return "42 dollars" in text or "forty two dollars" in text


# ---- Asterisk and bot state ------------------------------------------------------------


def transfer_landed(sandbox: AsteriskSandbox, call_id: str, key: str = "transfer") -> str:
    """The dialplan's record of a landed transfer (voicebot-test/<key>/<Call-ID>), or "".
    After a transfer that set channel variables Asterisk refuses the dialplan's DB writes:
    then its log line with the Call-ID is the record."""
    out = sandbox.cli(f"database get voicebot-test/{key} {call_id}")
    match = re.search(r"Value:\s*(\S+)", out)
    if match:
        return match.group(1)
    logged = f"voicebot-test {key} landed channel="
    lines = [line for line in sandbox.log_text().splitlines() if logged in line]
    return "logged" if any(line.endswith(f"call-id={call_id}") for line in lines) else ""


async def watch_transfer(sandbox: AsteriskSandbox, extension: str) -> dict[str, Any]:
    """Wait until a channel runs the dialplan at voicebot-transfer,<extension>; then, while the
    caller is still there (listening to the hold prompt), wait until the bot's own objects are
    gone: no bridge and no externalMedia (UnicastRTP) channel. Returns the caller's channel."""

    def landed() -> dict[str, Any] | None:
        for channel in ari_get(sandbox, "/channels"):
            plan = channel.get("dialplan", {})
            if plan.get("context") == "voicebot-transfer" and plan.get("exten") == extension:
                return channel
        return None

    found: dict[str, Any] = {}

    def check() -> bool:
        channel = landed()
        if channel:
            found.update(channel)
        return channel is not None

    await wait_for(check, 60, f"a channel in voicebot-transfer,{extension}")

    def bot_gone() -> bool:
        names = [c["name"] for c in ari_get(sandbox, "/channels")]
        return not ari_get(sandbox, "/bridges") and not any("UnicastRTP" in n for n in names)

    await wait_for(bot_gone, 3, "the bot's bridge and media channel to go while the caller stays")
    assert landed() is not None, "the caller left the dialplan before the bot released"
    return found


# ---- (a) bank by speech ----------------------------------------------------------------


async def test_bank_by_speech_balance_account_digits_confirm_report(
    asterisk: AsteriskSandbox, bot: RunningBot, whisper: WhisperEngine, tmp_path: Path
) -> None:
    result = await place_call(
        extension="102", workdir=tmp_path, timeout_s=120,
        steps=[Pause(BANK_GREETING_S), say("balance"), Pause(5.0),
               say("digits-4217"), Pause(6.0), say("yes"), WaitForBye(timeout_s=25)],
    )  # fmt: skip
    heard = await heard_per_step(result, whisper)
    assert len(heard) == 4, heard
    greeting, account, confirm, report = (words(t) for t in heard)
    assert "bank" in greeting and "balance" in greeting, heard
    assert heard_line(account, ACCOUNT_PROMPT), heard
    assert "4217" in digit_string(confirm) and "right" in confirm, heard
    assert "4217" in digit_string(report) and says_42_dollars(report), heard
    assert result.hangup_by == "remote"  # the bot said goodbye and hung up

    await assert_all_released(asterisk, bot)
    call = last_call(bot)
    assert call["end_reason"] == "bot-hangup"
    assert caller_intents(call)[0] == "balance"
    assert caller_intents(call)[-1] == "yes"


# ---- (b) bank by DTMF ------------------------------------------------------------------


async def test_bank_by_dtmf_only(
    asterisk: AsteriskSandbox, bot: RunningBot, whisper: WhisperEngine, tmp_path: Path
) -> None:
    result = await place_call(
        extension="102", workdir=tmp_path, timeout_s=120,
        steps=[Pause(BANK_GREETING_S), Dtmf("1"), Pause(4.5), Dtmf("4217"), Pause(5.5),
               Dtmf("1"), WaitForBye(timeout_s=25)],
    )  # fmt: skip
    heard = [words(t) for t in await heard_per_step(result, whisper)]
    # Pieces: greeting | after "1" | after "4217" (cut where its first key was sent) | after
    # the last "1".
    assert len(heard) == 4, heard
    greeting, account, confirm, report = heard
    assert "bank" in greeting and "balance" in greeting, heard
    assert heard_line(account, ACCOUNT_PROMPT), heard
    assert "4217" in digit_string(confirm), heard
    assert "4217" in digit_string(report) and says_42_dollars(report), heard
    assert result.hangup_by == "remote"
    await assert_all_released(asterisk, bot)
    assert last_call(bot)["end_reason"] == "bot-hangup"


# ---- (c) operator transfer -------------------------------------------------------------


@pytest.mark.parametrize("how", ["dtmf", "speech"])
async def test_bank_operator_transfer_lands_in_dialplan_and_bot_lets_go(
    how: str, asterisk: AsteriskSandbox, bot: RunningBot, whisper: WhisperEngine, tmp_path: Path
) -> None:
    choice: Step = Dtmf("0") if how == "dtmf" else say("operator")
    call = asyncio.create_task(place_call(
        extension="102", workdir=tmp_path, timeout_s=90,
        steps=[Pause(BANK_GREETING_S), choice, WaitForBye(timeout_s=40)],
    ))  # fmt: skip
    try:
        caller_channel = await watch_transfer(asterisk, "operator")
    finally:
        result = await call
    assert caller_channel["name"].startswith("PJSIP/")
    # The dialplan (not the bot) ended the call, after its hold prompt.
    assert result.hangup_by == "remote"
    assert transfer_landed(asterisk, result.call_id), asterisk.cli("database show voicebot-test")
    heard = words(" ".join(await heard_per_step(result, whisper)))
    assert "transferring" in heard and "operator" in heard, heard
    assert "please hold" in heard, heard  # Allison's pls-hold-while-try, from the dialplan

    await assert_all_released(asterisk, bot)
    record = last_call(bot)
    assert record["end_reason"].startswith("transfer"), record["end_reason"]
    assert caller_intents(record) == ["operator"]


# ---- (d) no input ----------------------------------------------------------------------


async def test_bank_silent_caller_is_reprompted_twice_then_transferred(
    asterisk: AsteriskSandbox, bot: RunningBot, whisper: WhisperEngine, tmp_path: Path
) -> None:
    # greeting ~6 s + 3 x 5 s silence + 2 reprompts (~8 s each) + the transfer line.
    result = await place_call(
        extension="102", workdir=tmp_path, timeout_s=150, steps=[WaitForBye(timeout_s=120)]
    )
    heard = words(await transcribe_long(result.received_audio, whisper))
    assert heard.count("hear anything") == 2, heard
    # greeting + the menu again after each reprompt (whisper hears "demo bank" as "a mobile bank")
    assert heard.count(" bank say balance") >= 3, heard
    assert "transferring" in heard and "please hold" in heard, heard
    assert transfer_landed(asterisk, result.call_id)
    await assert_all_released(asterisk, bot)
    record = last_call(bot)
    assert record["end_reason"].startswith("transfer"), record["end_reason"]


# ---- (e) delivery with a webhook -------------------------------------------------------


class ParcelApi:
    """The parcel system the delivery script calls, served on 127.0.0.1:18099."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.requests: list[tuple[str, str]] = []

    async def parcel(self, request: web.Request) -> web.Response:
        self.requests.append((request.method, request.path))
        if self.status != 200:
            return web.json_response({"error": "database down"}, status=self.status)
        return web.json_response({"status": "out for delivery", "eta": "this afternoon"})

    async def redelivery(self, request: web.Request) -> web.Response:
        self.requests.append((request.method, request.path))
        return web.json_response({"date": "Thursday"})


@pytest.fixture
async def parcel_api() -> AsyncIterator[ParcelApi]:
    api = ParcelApi()
    app = web.Application()
    app.router.add_get("/parcels/{tracking}", api.parcel)
    app.router.add_post("/parcels/{tracking}/redelivery", api.redelivery)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", WEBHOOK_PORT)
    await site.start()
    try:
        yield api
    finally:
        await runner.cleanup()


async def test_delivery_status_from_webhook(
    asterisk: AsteriskSandbox, bot: RunningBot, whisper: WhisperEngine, parcel_api: ParcelApi,
    tmp_path: Path,
) -> None:  # fmt: skip
    result = await place_call(
        extension="104", workdir=tmp_path, timeout_s=120,
        steps=[Pause(DELIVERY_GREETING_S), say("tracking"), Pause(5.0), Dtmf("123456#"),
               Pause(16.0), Dtmf("2"), WaitForBye(timeout_s=20)],
    )  # fmt: skip
    assert parcel_api.requests == [("GET", "/parcels/123456")]
    heard = [words(t) for t in await heard_per_step(result, whisper)]
    assert len(heard) == 4, heard
    greeting, tracking, status, goodbye = heard
    assert "parcel express" in greeting, heard
    assert "tracking number" in tracking, heard
    assert "out for delivery" in status and "this afternoon" in status, heard
    assert "123456" in digit_string(status), heard
    assert "bye" in goodbye, heard  # whisper writes "goodbye" or just "bye"
    assert result.hangup_by == "remote"
    await assert_all_released(asterisk, bot)
    assert last_call(bot)["end_reason"] == "bot-hangup"


async def test_delivery_webhook_error_apologises_and_transfers(
    asterisk: AsteriskSandbox, bot: RunningBot, whisper: WhisperEngine, parcel_api: ParcelApi,
    tmp_path: Path,
) -> None:  # fmt: skip
    parcel_api.status = 500
    result = await place_call(
        extension="104", workdir=tmp_path, timeout_s=120,
        steps=[Pause(DELIVERY_GREETING_S), Dtmf("1"), Pause(4.5), Dtmf("1234567#"),
               WaitForBye(timeout_s=40)],
    )  # fmt: skip
    assert parcel_api.requests == [("GET", "/parcels/1234567")]
    heard = [words(t) for t in await heard_per_step(result, whisper)]
    after_number = heard[-1]
    assert "sorry" in after_number and "operator" in after_number, heard
    assert "out for delivery" not in after_number, heard
    assert "please hold" in after_number, heard  # landed in voicebot-transfer,operator
    assert result.hangup_by == "remote"
    assert transfer_landed(asterisk, result.call_id)
    await assert_all_released(asterisk, bot)
    assert last_call(bot)["end_reason"].startswith("transfer")


# ---- clinic: booking through a webhook, by speech and keys -------------------------------


class ClinicApi:
    def __init__(self) -> None:
        self.bookings: list[dict[str, Any]] = []

    async def book(self, request: web.Request) -> web.Response:
        self.bookings.append(dict(await request.json()))
        return web.json_response({"day": "Monday", "time": "10:30", "reference": "5521"})


async def test_clinic_books_an_appointment_through_the_webhook(
    asterisk: AsteriskSandbox, bot: RunningBot, whisper: WhisperEngine, tmp_path: Path
) -> None:
    api = ClinicApi()
    app = web.Application()
    app.router.add_post("/appointments", api.book)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", WEBHOOK_PORT).start()
    try:
        result = await place_call(
            extension="103", workdir=tmp_path, timeout_s=150,
            steps=[Pause(CLINIC_GREETING_S), say("appointment"), Pause(7.0), say("monday"),
                   Pause(4.5), Dtmf("250613"), Pause(9.0), say("yes"), Pause(12.0),
                   Dtmf("2"), WaitForBye(timeout_s=20)],
        )  # fmt: skip
    finally:
        await runner.cleanup()
    assert len(api.bookings) == 1, api.bookings
    booking = api.bookings[0]
    assert booking["patient"] == "250613" and "monday" in booking["day"].lower(), booking
    heard = [words(t) for t in await heard_per_step(result, whisper)]
    # The greeting, loosely: tiny.en has heard Piper's "Sunny Clinic" as "cine clinic".
    assert heard_line(heard[0], CLINIC_GREETING), heard
    booked = heard[-2]
    assert "book" in booked and "monday" in booked and "reference" in booked, heard
    assert "bye" in heard[-1], heard  # whisper writes "goodbye" or just "bye"
    assert result.hangup_by == "remote"
    await assert_all_released(asterisk, bot)
    # The exact digits from the bot's own record: whisper sometimes merges "5 5 2 1" into "551".
    said = [line["text"] for line in last_call(bot)["transcript"] if line["who"] == "bot"]
    assert any("reference number is 5 5 2 1" in text for text in said), said
