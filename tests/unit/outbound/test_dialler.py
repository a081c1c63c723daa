"""The dialler: its pure helpers (outcomes of causes and calls, the dial string, the
do-not-call file, the attempt record) by table, then the Dialler itself placing calls into the
in-process fake ARI from a real campaign store in tmp_path: what it originates, the caps
(max_active, the room left by inbound calls, calls per second), how unanswered and answered
calls are recorded and retried, windows, failed originates, attempts a crash left dialling, the
do-not-call file, and a close that leaves nothing running."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.support.fakeari import FakeAri
from voicebot.ari.client import AriClient
from voicebot.config import OutboundConfig
from voicebot.errors import OutboundError
from voicebot.outbound.campaigns import Policy, parse_window
from voicebot.outbound.dialler import (
    CHANNEL_PREFIX,
    Attempt,
    Dialler,
    attempt_record,
    dial_string,
    outcome_of_call,
    outcome_of_cause,
    read_dnc_file,
)
from voicebot.outbound.model import CampaignState, Contact, Outcome
from voicebot.outbound.store import CampaignStore, Claim

APP = "voicebot-pool"
SCRIPT = "remind"
BASE = replace(
    OutboundConfig(),
    endpoint="PJSIP/{number}@trunk",
    ring_timeout_s=25.0,
    caller_id='"Parcel Express" <+15550100>',
    max_active=4,
    calls_per_second=100.0,  # the highest allowed: pacing adds 10 ms per call at most
)
WITHIN_S = 5.0  # the longest a test waits for the dialler; passing runs take milliseconds


# -- pure helpers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cause", "dial_status", "expected"),
    [
        (17, "", Outcome.BUSY),
        (16, "", Outcome.NO_ANSWER),
        (18, "", Outcome.NO_ANSWER),
        (19, "", Outcome.NO_ANSWER),
        (21, "", Outcome.NO_ANSWER),
        (34, "", Outcome.FAILED),
        (1, "", Outcome.FAILED),
        (0, "", Outcome.FAILED),
        (None, "", Outcome.FAILED),
        # A Local channel's own cause is 0: its dial status tells.
        (0, "BUSY", Outcome.BUSY),
        (0, "NOANSWER", Outcome.NO_ANSWER),
        (0, "CONGESTION", Outcome.FAILED),
        (0, "CHANUNAVAIL", Outcome.FAILED),
        (None, "BUSY", Outcome.BUSY),
        # The dial status wins over the cause.
        (16, "BUSY", Outcome.BUSY),
        (17, "NOANSWER", Outcome.NO_ANSWER),
        (17, "CHANUNAVAIL", Outcome.FAILED),
        # Statuses that say nothing of an unanswered end leave it to the cause.
        (17, "RINGING", Outcome.BUSY),
        (19, "PROGRESS", Outcome.NO_ANSWER),
        (None, "ANSWER", Outcome.FAILED),
    ],
)
def test_outcome_of_cause(cause: int | None, dial_status: str, expected: Outcome) -> None:
    assert outcome_of_cause(cause, dial_status) is expected


def test_outcome_of_cause_without_a_dial_status() -> None:
    assert outcome_of_cause(17) is Outcome.BUSY
    assert outcome_of_cause(None) is Outcome.FAILED


@pytest.mark.parametrize(
    ("verdict", "end_reason", "message_played", "expected"),
    [
        ("machine", "bot-hangup", True, Outcome.MESSAGE_LEFT),
        ("machine", "caller hangup", True, Outcome.MESSAGE_LEFT),
        ("machine", "machine", False, Outcome.MACHINE),
        ("machine", "caller hangup", False, Outcome.MACHINE),
        ("machine", "error", False, Outcome.MACHINE),
        ("human", "caller hangup", False, Outcome.ANSWERED),
        ("human", "bot-hangup", False, Outcome.ANSWERED),
        ("human", "error", False, Outcome.ANSWERED),  # a person heard the script
        ("unknown", "caller hangup", False, Outcome.ANSWERED),
        (None, "caller hangup", False, Outcome.ANSWERED),
        (None, "transfer", False, Outcome.ANSWERED),
        (None, "error", False, Outcome.FAILED),
        (None, "internal error", False, Outcome.FAILED),
    ],
)
def test_outcome_of_call(
    verdict: str | None, end_reason: str, message_played: bool, expected: Outcome
) -> None:
    assert outcome_of_call(verdict, end_reason, message_played) is expected


@pytest.mark.parametrize(
    ("endpoint", "number", "expected"),
    [
        ("PJSIP/{number}@trunk", "+15550100199", "PJSIP/+15550100199@trunk"),
        ("PJSIP/{number}@trunk", "+1 (555) 010-0199", "PJSIP/+15550100199@trunk"),
        ("Local/{number}@outbound", "555.0100", "Local/5550100@outbound"),
        ("Local/{number}@outbound", "100", "Local/100@outbound"),
        # Surrounding white space is dropped: nothing but digits reaches the endpoint.
        ("PJSIP/{number}@trunk", " 123 ", "PJSIP/123@trunk"),
        ("PJSIP/{number}@trunk", "123\n", "PJSIP/123@trunk"),
    ],
)
def test_dial_string_fills_the_placeholder_with_the_normalised_number(
    endpoint: str, number: str, expected: str
) -> None:
    assert dial_string(endpoint, number) == expected


@pytest.mark.parametrize(
    "number",
    [
        "100@evil",
        "1/2&3",
        "12\n3",
        "123\n@evil",
        "123;456",
        "123,456",
        "123)@trunk&PJSIP/666",
        "${EXTEN}",
        "12*3",
        "12#3",
        "12'3",
        "1+23",
        "12\x003",
        "",
        "   ",
        "12",
        "1234567890123456",
        "٣٤٥٦",  # digits, but not ASCII ones
    ],
)
def test_dial_string_refuses_what_is_no_phone_number(number: str) -> None:
    with pytest.raises(ValueError):
        dial_string("PJSIP/{number}@trunk", number)


def test_read_dnc_file_skips_comments_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "dnc.txt"
    path.write_text(
        "# numbers that asked not to be called\n"
        "\n"
        "+1 (555) 010-0199\n"
        "   \n"
        "5550100  # the office\n"
        "  +79001234567  \n"
        "#+15550100000\n",
        encoding="utf-8",
    )
    assert read_dnc_file(path) == ["+15550100199", "5550100", "+79001234567"]


def test_read_dnc_file_of_only_comments_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "dnc.txt"
    path.write_text("# nobody yet\n\n", encoding="utf-8")
    assert read_dnc_file(path) == []


@pytest.mark.parametrize("bad", ["100@evil", "1/2&3", "call me maybe", "12"])
def test_read_dnc_file_names_the_file_and_line_of_a_bad_number(tmp_path: Path, bad: str) -> None:
    path = tmp_path / "dnc.txt"
    path.write_text(f"# list\n+15550100199\n{bad}\n+15550100200\n", encoding="utf-8")
    with pytest.raises(OutboundError, match=rf"^{path}:3: "):
        read_dnc_file(path)


def test_read_dnc_file_that_cannot_be_read(tmp_path: Path) -> None:
    with pytest.raises(OutboundError, match=r"outbound\.dnc_file: cannot read .*missing\.txt"):
        read_dnc_file(tmp_path / "missing.txt")
    latin = tmp_path / "latin.txt"
    latin.write_bytes(b"+15550100199 # caf\xe9\n")
    with pytest.raises(OutboundError, match=r"outbound\.dnc_file: cannot read .*latin\.txt"):
        read_dnc_file(latin)


def a_claim(**overrides: Any) -> Claim:
    contact = Contact(line=7, number="+15550100199", fields={"number": "+15550100199"})
    values: dict[str, Any] = {
        "attempt_id": 41,
        "attempt_number": 2,
        "campaign_id": 3,
        "campaign_name": "parcels",
        "script": SCRIPT,
        "policy": {},
        "contact": contact,
        "contact_id": 9,
        "started_at": datetime(2025, 3, 3, 9, 0, tzinfo=UTC),
        "channel_id": None,
    }
    values.update(overrides)
    return Claim(**values)


def test_attempt_record_keeps_the_details_that_say_how_it_ended() -> None:
    now = datetime(2025, 3, 3, 9, 1, tzinfo=UTC)
    result = {
        "cause": 17,
        "dial_status": "BUSY",
        "reason": "r",
        "call_id": "c1",
        "path": ["greet"],
        "slots": {"pin": "***"},
        "amd": {"verdict": "human"},
    }
    record = attempt_record(a_claim(), Outcome.BUSY, now, result, now + timedelta(minutes=10))
    assert record == {
        "kind": "outbound-attempt",
        "campaign": "parcels",
        "attempt": 2,
        "line": 7,
        "number": "+15550100199",
        "outcome": "busy",
        "at": "2025-03-03T09:01:00+00:00",
        "next_at": "2025-03-03T09:11:00+00:00",
        "cause": 17,
        "dial_status": "BUSY",
        "reason": "r",
        "call_id": "c1",
    }


def test_attempt_record_of_a_final_attempt_has_no_next_time() -> None:
    now = datetime(2025, 3, 3, 9, 1, tzinfo=UTC)
    record = attempt_record(a_claim(attempt_number=3), Outcome.ANSWERED, now, {}, None)
    assert record["next_at"] is None
    assert (record["outcome"], record["attempt"]) == ("answered", 3)
    assert not {"cause", "dial_status", "reason", "call_id"} & set(record)


# -- the dialler against the fake ARI ----------------------------------------------------------


def local_zone(now: datetime) -> str:
    """A zone whose clock reads 01:00-23:00 now, so that a window of 00:00-23:59 holds the
    whole test run (a retry 10 minutes on included)."""
    return "UTC" if 1 <= now.hour <= 22 else "Etc/GMT+12"


def open_policy(**overrides: Any) -> dict[str, Any]:
    """Calls allowed all day, every day, with room under the per-number limits."""
    start, end = parse_window("00:00-23:59")
    values: dict[str, Any] = {
        "window_start": start,
        "window_end": end,
        "days": frozenset(range(7)),
        "timezone": local_zone(datetime.now(UTC)),
        "per_day": 10,
        "per_week": 20,
    }
    values.update(overrides)
    return Policy(**values).to_dict()


def closed_policy() -> dict[str, Any]:
    """A window of one hour that is not now, every day."""
    zone = local_zone(datetime.now(UTC))
    hour = 20 if datetime.now(ZoneInfo(zone)).hour < 12 else 3
    start, end = parse_window(f"{hour:02d}:00-{hour + 1:02d}:00")
    return open_policy(window_start=start, window_end=end)


def contacts(count: int) -> list[Contact]:
    """Contacts on lines 2.. of a CSV file with a number and a first_name column."""
    return [
        Contact(
            line=line,
            number=f"+1555010{line:04d}",
            fields={"number": f"+1555010{line:04d}", "first_name": f"Name{line}"},
        )
        for line in range(2, count + 2)
    ]


@dataclass
class Bench:
    """The fake ARI, a client of it, a store of the test's own on the dialler's file, and what
    the diallers reported."""

    fake: FakeAri
    ari: AriClient
    path: Path
    store: CampaignStore
    records: list[dict[str, Any]] = field(default_factory=list)
    outcomes: list[str] = field(default_factory=list)
    diallers: list[Dialler] = field(default_factory=list)

    def campaign(
        self, people: list[Contact], policy: dict[str, Any] | None = None, name: str = "parcels"
    ) -> int:
        return self.store.create_campaign(
            name, SCRIPT, policy or open_policy(), people, datetime.now(UTC)
        )

    def dialler(
        self, config: OutboundConfig = BASE, room: Callable[[], int] = lambda: 100
    ) -> Dialler:
        dialler = Dialler(
            config,
            self.path,
            self.ari,
            APP,
            room,
            on_outcome=self.outcomes.append,
            keep_record=self.records.append,
        )
        self.diallers.append(dialler)
        return dialler

    async def started(
        self, config: OutboundConfig = BASE, room: Callable[[], int] = lambda: 100
    ) -> Dialler:
        dialler = self.dialler(config, room)
        await dialler.start()
        return dialler

    def originates(self) -> list[dict[str, str]]:
        return [
            params
            for method, path, params in self.fake.requests
            if (method, path) == ("POST", "/channels")
        ]

    def originate_times(self) -> list[float]:
        return [
            at
            for (method, path, _), at in zip(
                self.fake.requests, self.fake.request_times, strict=True
            )
            if (method, path) == ("POST", "/channels")
        ]

    def row(self, number: str, campaign: int | str = "parcels") -> dict[str, Any]:
        rows = [row for row in self.store.export_rows(campaign) if row["number"] == number]
        assert len(rows) == 1
        return rows[0]


async def until(condition: Callable[[], bool], what: str) -> None:
    """Wait (polling) until ``condition`` holds; fail naming ``what`` after WITHIN_S."""
    deadline = time.monotonic() + WITHIN_S
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


async def quiet(dialler: Dialler) -> None:
    """Let the dialler's loop go round a few times (it would place any call due by now)."""
    for _ in range(3):
        dialler.wake()
        await asyncio.sleep(0.02)


@pytest.fixture
async def bench(tmp_path: Path) -> AsyncIterator[Bench]:
    async with FakeAri(originate_answers=False) as fake:
        ari = AriClient(fake.config(app=APP))
        path = tmp_path / "state" / "campaigns.sqlite"
        store = CampaignStore(path)
        test_bench = Bench(fake, ari, path, store)
        try:
            yield test_bench
        finally:
            for dialler in test_bench.diallers:
                await dialler.close()
            store.close()
            await ari.close()


def near(moment_text: str | None, expected: datetime, slack: timedelta) -> bool:
    assert moment_text is not None
    moment = datetime.fromisoformat(moment_text)
    return expected - slack <= moment <= expected + slack


@pytest.mark.parametrize("endpoint", ["PJSIP/{number}@trunk", "Local/{number}@outbound"])
async def test_a_due_contact_is_originated_into_the_app_with_its_script(
    bench: Bench, endpoint: str
) -> None:
    bench.campaign(contacts(1))
    dialler = await bench.started(replace(BASE, endpoint=endpoint))
    await until(lambda: len(bench.originates()) == 1, "the call")
    (params,) = bench.originates()
    (channel_id,) = dialler.active
    attempt = dialler.active[channel_id]
    assert channel_id == f"{CHANNEL_PREFIX}{attempt.claim.attempt_id}"
    assert params == {
        "endpoint": endpoint.replace("{number}", "+15550100002"),
        "app": APP,
        "appArgs": f"{SCRIPT},outbound",
        "callerId": '"Parcel Express" <+15550100>',
        "timeout": "25",
        "channelId": f"vb-out-{attempt.claim.attempt_id}",
    }
    assert attempt.claim.attempt_number == 1
    assert not attempt.answered
    # The store knows the attempt's channel (an interrupted attempt's may live on).
    (dialling,) = bench.store.interrupted(datetime.now(UTC))
    assert dialling.channel_id == channel_id
    assert bench.row("+15550100002")["attempts"] == 1
    await quiet(dialler)
    assert len(bench.originates()) == 1  # dialling: not claimed again


async def test_no_caller_id_leaves_the_endpoints_own(bench: Bench) -> None:
    bench.campaign(contacts(1))
    await bench.started(replace(BASE, caller_id="", ring_timeout_s=9.6))
    await until(lambda: len(bench.originates()) == 1, "the call")
    params = bench.originates()[0]
    assert "callerId" not in params
    assert params["timeout"] == "10"


async def test_the_claim_just_made_does_not_count_against_the_per_day_limit(bench: Bench) -> None:
    bench.campaign(contacts(1), open_policy(per_day=1, per_week=1))
    await bench.started()
    await until(lambda: len(bench.originates()) == 1, "the call")


async def test_max_active_caps_the_calls_at_once(bench: Bench) -> None:
    bench.campaign(contacts(5))
    dialler = await bench.started(replace(BASE, max_active=2))
    await until(lambda: len(bench.originates()) == 2, "two calls")
    await quiet(dialler)
    assert len(bench.originates()) == 2
    assert dialler.free() == 0
    first = next(iter(dialler.active))
    assert dialler.channel_ended(first, 16)
    await until(lambda: len(bench.originates()) == 3, "a third call when one ended")
    await quiet(dialler)
    assert len(bench.originates()) == 3
    assert len(dialler.active) == 2
    # In the contact list's order.
    assert [params["endpoint"] for params in bench.originates()] == [
        f"PJSIP/+1555010{line:04d}@trunk" for line in (2, 3, 4)
    ]


async def test_the_room_left_by_inbound_calls_caps_the_calls_at_once(bench: Bench) -> None:
    bench.campaign(contacts(6))
    # As the controller counts: the outbound share of calls.max_active less the calls in
    # progress (inbound ones, and the campaign's once answered); ringing ones are not its.
    share, inbound = 3, [2]
    dialler: Dialler | None = None

    def room() -> int:
        assert dialler is not None
        answered = sum(attempt.answered for attempt in dialler.active.values())
        return share - inbound[0] - answered

    dialler = await bench.started(replace(BASE, max_active=10), room=room)
    await until(lambda: len(bench.originates()) == 1, "one call")
    await quiet(dialler)
    assert len(bench.originates()) == 1  # still ringing: it holds the one place left
    inbound[0] = 0
    dialler.wake()
    await until(lambda: len(bench.originates()) == 3, "two more calls")
    await quiet(dialler)
    assert len(bench.originates()) == 3
    assert dialler.free() == 0
    first = bench.originates()[0]["channelId"]
    assert dialler.attempt_for(first) is not None  # answered: now one of the controller's
    await quiet(dialler)
    assert len(bench.originates()) == 3
    inbound[0] = 3  # inbound callers took every place: none placed as calls end
    for channel_id in [params["channelId"] for params in bench.originates()[1:]]:
        dialler.channel_ended(channel_id, 19)
    await until(lambda: len(bench.records) == 2, "the unanswered calls' records")
    await quiet(dialler)
    assert len(bench.originates()) == 3


async def test_calls_per_second_spaces_the_calls(bench: Bench) -> None:
    rate = 10.0
    bench.campaign(contacts(3))
    await bench.started(replace(BASE, calls_per_second=rate))
    await until(lambda: len(bench.originates()) == 3, "three calls")
    times = bench.originate_times()
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    # Loosely: a lower bound only, with room for the store's writes between pacing and sending.
    assert min(gaps) >= 0.5 / rate, gaps
    assert [params["endpoint"] for params in bench.originates()] == [
        f"PJSIP/+1555010{line:04d}@trunk" for line in (2, 3, 4)
    ]


@pytest.mark.parametrize(
    ("dial_status", "cause", "outcome", "delay"),
    [
        ("BUSY", 0, Outcome.BUSY, timedelta(minutes=10)),  # a Local channel
        ("", 17, Outcome.BUSY, timedelta(minutes=10)),
        ("NOANSWER", 0, Outcome.NO_ANSWER, timedelta(hours=1)),
        ("", 19, Outcome.NO_ANSWER, timedelta(hours=1)),
        ("CHANUNAVAIL", 0, Outcome.FAILED, timedelta(minutes=30)),
    ],
)
async def test_an_unanswered_call_is_recorded_and_retried_by_the_policy(
    bench: Bench, dial_status: str, cause: int, outcome: Outcome, delay: timedelta
) -> None:
    bench.campaign(contacts(1))
    dialler = await bench.started()
    await until(lambda: len(bench.originates()) == 1, "the call")
    channel_id = bench.originates()[0]["channelId"]
    dialler.dial_status(channel_id, "RINGING")
    dialler.dial_status(channel_id, dial_status)  # an empty one changes nothing
    dialler.dial_status("someone-else", "BUSY")  # not an attempt's: ignored
    assert not dialler.channel_ended("someone-else", 17)
    ended_at = datetime.now(UTC)
    assert dialler.channel_ended(channel_id, cause)
    assert not dialler.active
    await until(lambda: len(bench.records) == 1, "the attempt's record")
    (record,) = bench.records
    expected_status = dial_status if dial_status != "" else "RINGING"
    assert record["outcome"] == outcome.value
    assert record["attempt"] == 1
    assert (record["cause"], record["dial_status"]) == (cause, expected_status)
    assert near(record["next_at"], ended_at + delay, timedelta(seconds=5))
    assert bench.outcomes == [outcome.value]
    row = bench.row("+15550100002")
    assert (row["status"], row["attempts"], row["last_outcome"]) == ("pending", 1, outcome.value)
    assert row["result"] == {"cause": cause, "dial_status": expected_status}
    next_due = bench.store.next_due(datetime.now(UTC))
    assert next_due is not None and next_due > ended_at + delay - timedelta(seconds=5)
    await quiet(dialler)
    assert len(bench.originates()) == 1  # not before its time
    assert not dialler.channel_ended(channel_id, cause)  # a late second event counts nothing
    await quiet(dialler)
    assert len(bench.records) == 1


@pytest.mark.parametrize(
    ("dial_status", "cause", "final"),
    [("BUSY", 0, Outcome.BUSY), ("NOANSWER", 0, Outcome.NO_ANSWER), ("", 34, Outcome.FAILED)],
)
async def test_the_last_attempt_ends_the_contact_with_its_outcome(
    bench: Bench, dial_status: str, cause: int, final: Outcome
) -> None:
    bench.campaign(contacts(1), open_policy(max_attempts=2))
    # The first attempt was made (by an earlier run) and is due again now.
    now = datetime.now(UTC)
    (first,) = bench.store.claim_due(now, 1)
    bench.store.finish_attempt(
        first.attempt_id, Outcome.NO_ANSWER, now, result=None, final=None, next_at=now
    )
    dialler = await bench.started()
    await until(lambda: len(bench.originates()) == 1, "the second call")
    (channel_id,) = dialler.active
    assert dialler.active[channel_id].claim.attempt_number == 2
    dialler.dial_status(channel_id, dial_status)
    dialler.channel_ended(channel_id, cause)
    await until(lambda: len(bench.records) == 1, "the attempt's record")
    (record,) = bench.records
    assert (record["outcome"], record["attempt"], record["next_at"]) == (final.value, 2, None)
    row = bench.row("+15550100002")
    assert (row["status"], row["attempts"], row["last_outcome"]) == (final.value, 2, final.value)
    assert bench.store.campaign("parcels").state == "done"
    await quiet(dialler)
    assert len(bench.originates()) == 1


CALL_RECORD = {
    "call_id": "call-1",
    "path": ["greet", "thanks"],
    "slots": {"pin": "***"},
    "amd": {"verdict": "human", "reasons": ["short greeting"], "decided_ms": 900},
    "transcript": ["hello"],  # not the attempt's to keep
}


@pytest.mark.parametrize(
    ("verdict", "end_reason", "message_played", "status", "outcome"),
    [
        ("human", "caller hangup", False, "answered", Outcome.ANSWERED),
        ("unknown", "bot-hangup", False, "answered", Outcome.ANSWERED),
        ("machine", "bot-hangup", True, "message_left", Outcome.MESSAGE_LEFT),
        ("machine", "machine", False, "pending", Outcome.MACHINE),  # retried in 4 h
        (None, "error", False, "pending", Outcome.FAILED),
    ],
)
async def test_an_answered_call_is_recorded_with_its_result(
    bench: Bench,
    verdict: str | None,
    end_reason: str,
    message_played: bool,
    status: str,
    outcome: Outcome,
) -> None:
    bench.campaign(contacts(1))
    dialler = await bench.started()
    await until(lambda: len(bench.originates()) == 1, "the call")
    channel_id = bench.originates()[0]["channelId"]
    assert dialler.attempt_for("someone-else") is None
    attempt = dialler.attempt_for(channel_id)
    assert attempt is not None and attempt.answered
    assert attempt.variables == {
        "contact.number": "+15550100002",
        "contact.first_name": "Name2",
    }
    # An answered call's channel ending is the controller's to report, through call_ended.
    assert not dialler.channel_ended(channel_id, 16)
    assert channel_id in dialler.active
    amd = {**CALL_RECORD["amd"], "verdict": verdict}  # type: ignore[dict-item]
    dialler.call_ended(
        channel_id,
        verdict=verdict,
        end_reason=end_reason,
        message_played=message_played,
        do_not_call=False,
        record={**CALL_RECORD, "amd": amd},
    )
    assert not dialler.active
    await until(lambda: len(bench.records) == 1, "the attempt's record")
    (record,) = bench.records
    assert (record["outcome"], record["call_id"]) == (outcome.value, "call-1")
    assert (record["next_at"] is None) == (status != "pending")
    row = bench.row("+15550100002")
    assert (row["status"], row["last_outcome"], row["attempts"]) == (status, outcome.value, 1)
    assert row["result"] == {
        "call_id": "call-1",
        "path": ["greet", "thanks"],
        "slots": {"pin": "***"},
        "amd": amd,
    }
    assert row["amd"] == verdict
    assert not bench.store.is_dnc("+15550100002")
    # Told twice: counted once.
    dialler.call_ended(
        channel_id,
        verdict=verdict,
        end_reason=end_reason,
        message_played=message_played,
        do_not_call=False,
        record=CALL_RECORD,
    )
    await quiet(dialler)
    assert len(bench.records) == 1


async def test_a_callee_asking_not_to_be_called_goes_on_the_do_not_call_list(
    bench: Bench,
) -> None:
    people = contacts(1)
    bench.campaign(people)
    # The same number waits in another campaign (paused): it is never called.
    bench.campaign(people, name="surveys")
    bench.store.set_state("surveys", CampaignState.PAUSED, datetime.now(UTC))
    dialler = await bench.started()
    await until(lambda: len(bench.originates()) == 1, "the call")
    channel_id = bench.originates()[0]["channelId"]
    assert dialler.attempt_for(channel_id) is not None
    dialler.call_ended(
        channel_id,
        verdict="human",
        end_reason="bot-hangup",
        message_played=False,
        do_not_call=True,
        record={"call_id": "call-1"},
    )
    await until(lambda: len(bench.records) == 1, "the attempt's record")
    assert bench.store.is_dnc("+15550100002")
    assert bench.row("+15550100002")["status"] == "answered"
    assert bench.row("+15550100002", "surveys")["status"] == "dnc"
    assert bench.store.campaign("surveys").state is CampaignState.DONE  # nobody left to call
    await quiet(dialler)
    assert len(bench.originates()) == 1


async def test_a_contact_outside_its_window_waits_and_is_not_dialled(bench: Bench) -> None:
    bench.campaign(contacts(1), closed_policy())
    dialler = await bench.started()

    def released() -> bool:
        due = bench.store.next_due(datetime.now(UTC))
        return due is not None and due > datetime.now(UTC) + timedelta(minutes=30)

    await until(released, "the claim to be given back")
    await quiet(dialler)
    assert bench.originates() == []
    assert bench.records == []
    assert not dialler.active
    row = bench.row("+15550100002")
    assert (row["status"], row["attempts"], row["last_attempt_at"]) == ("pending", 0, None)
    assert bench.store.interrupted(datetime.now(UTC)) == []  # no attempt left dialling


@pytest.mark.parametrize(
    ("status", "message"),
    [(400, "Endpoint not found"), (500, "Allocation failed"), (409, "Channel exists")],
)
async def test_a_call_that_cannot_be_placed_fails_its_attempt_and_the_loop_goes_on(
    bench: Bench, status: int, message: str
) -> None:
    bench.campaign(contacts(2))
    bench.fake.fail_next(status, message, method="POST", path_contains="/channels")
    dialler = await bench.started(replace(BASE, max_active=1))
    await until(lambda: len(bench.originates()) == 2, "the second contact's call")
    await until(lambda: len(bench.records) == 1, "the failed attempt's record")
    (record,) = bench.records
    assert (record["outcome"], record["line"]) == ("failed", 2)
    assert message in record["reason"]
    assert record["next_at"] is not None  # retried (failed: in 30 minutes)
    first = bench.row("+15550100002")
    assert (first["status"], first["last_outcome"], first["attempts"]) == ("pending", "failed", 1)
    assert message in first["result"]["reason"]
    # The second contact's call is up; the failed one holds no place.
    assert list(dialler.active) == [bench.originates()[1]["channelId"]]
    assert dialler._task is not None and not dialler._task.done()


async def test_a_stored_number_that_is_no_phone_number_is_never_dialled(bench: Bench) -> None:
    # The store takes what it is given; the dialler checks the number again.
    hostile = Contact(line=2, number="100@evil", fields={"number": "100@evil"})
    bench.campaign([hostile, *contacts(2)[1:]])
    await bench.started()
    await until(lambda: len(bench.records) == 1, "the refused attempt's record")
    await until(lambda: len(bench.originates()) == 1, "the good contact's call")
    assert bench.originates()[0]["endpoint"] == "PJSIP/+15550100003@trunk"
    assert all("evil" not in params["endpoint"] for params in bench.originates())
    assert bench.records[0]["outcome"] == "failed"
    assert bench.row("100@evil")["last_outcome"] == "failed"


async def test_an_attempt_left_dialling_is_closed_as_interrupted_and_retried(
    bench: Bench,
) -> None:
    bench.campaign(contacts(1))
    # A bot claimed the contact and died before the call ended.
    (claim,) = bench.store.claim_due(datetime.now(UTC), 1)
    bench.store.set_channel(claim.attempt_id, f"{CHANNEL_PREFIX}{claim.attempt_id}")
    started_at = datetime.now(UTC)
    dialler = await bench.started()
    # Closed during start(), before the loop runs.
    assert len(bench.records) == 1
    (record,) = bench.records
    assert (record["outcome"], record["attempt"], record["reason"]) == (
        "failed",
        1,
        "interrupted",
    )
    assert near(record["next_at"], started_at + timedelta(minutes=30), timedelta(seconds=5))
    assert bench.store.interrupted(datetime.now(UTC)) == []
    row = bench.row("+15550100002")
    assert (row["status"], row["attempts"], row["last_outcome"]) == ("pending", 1, "failed")
    assert row["result"] == {"reason": "interrupted"}
    await quiet(dialler)
    assert bench.originates() == []  # not called twice for that attempt: its retry waits


async def test_an_interrupted_last_attempt_ends_the_contact_failed(bench: Bench) -> None:
    bench.campaign(contacts(1), open_policy(max_attempts=1))
    bench.store.claim_due(datetime.now(UTC), 1)
    await bench.started()
    assert bench.records[0]["next_at"] is None
    assert bench.row("+15550100002")["status"] == "failed"


async def test_the_do_not_call_file_is_loaded_at_start(bench: Bench, tmp_path: Path) -> None:
    dnc = tmp_path / "dnc.txt"
    dnc.write_text("# asked not to be called\n+1 (555) 010-0002\n+79000000000\n", encoding="utf-8")
    bench.campaign(contacts(2))
    await bench.started(replace(BASE, dnc_file=str(dnc)))
    await until(lambda: len(bench.originates()) == 1, "the call")
    assert bench.originates()[0]["endpoint"] == "PJSIP/+15550100003@trunk"
    assert bench.store.is_dnc("+15550100002") and bench.store.is_dnc("+79000000000")
    assert bench.row("+15550100002")["status"] == "dnc"
    assert bench.row("+15550100002")["attempts"] == 0


async def test_a_bad_do_not_call_file_stops_the_start(bench: Bench, tmp_path: Path) -> None:
    dnc = tmp_path / "dnc.txt"
    dnc.write_text("+15550100002\n100@evil\n", encoding="utf-8")
    bench.campaign(contacts(1))
    dialler = bench.dialler(replace(BASE, dnc_file=str(dnc)))
    with pytest.raises(OutboundError, match=rf"{dnc}:2: "):
        await dialler.start()
    assert dialler._task is None
    await asyncio.sleep(0.05)
    assert bench.originates() == []


def dialler_tasks() -> list[asyncio.Task[Any]]:
    return [task for task in asyncio.all_tasks() if task.get_name().startswith("dialler")]


async def test_close_leaves_no_task_running_and_records_what_ended(bench: Bench) -> None:
    bench.campaign(contacts(3))
    dialler = await bench.started()
    await until(lambda: len(bench.originates()) == 3, "the calls")
    first, second, _ = dialler.active
    dialler.channel_ended(first, 17)  # its record is being written as close() begins
    dialler.attempt_for(second)
    dialler.call_ended(
        second,
        verdict="human",
        end_reason="caller hangup",
        message_played=False,
        do_not_call=True,
        record={"call_id": "c2"},
    )
    assert dialler_tasks()
    await dialler.close()
    assert dialler_tasks() == []
    assert dialler._task is None and dialler.store is None
    assert sorted(record["outcome"] for record in bench.records) == ["answered", "busy"]
    assert bench.store.is_dnc("+15550100003")
    # The third call is still up: its attempt stays dialling, for the next start to close.
    (left,) = bench.store.interrupted(datetime.now(UTC))
    assert left.contact.number == "+15550100004"
    await dialler.close()  # twice: nothing more to do


async def test_close_without_start(bench: Bench) -> None:
    dialler = bench.dialler()
    await dialler.close()
    assert dialler_tasks() == []


async def test_a_restarted_dialler_goes_on_where_the_last_one_stopped(bench: Bench) -> None:
    bench.campaign(contacts(2))
    first = await bench.started(replace(BASE, max_active=1))
    await until(lambda: len(bench.originates()) == 1, "the first call")
    channel_id = next(iter(first.active))
    first.channel_ended(channel_id, 17)
    await until(lambda: len(bench.originates()) == 2, "the second call")
    await first.close()
    second = await bench.started(replace(BASE, max_active=1))
    # The second contact's call was cut off by the stop: closed and retried later, not now.
    await quiet(second)
    assert len(bench.originates()) == 2
    assert [(record["line"], record["outcome"]) for record in bench.records] == [
        (2, "busy"),
        (3, "failed"),
    ]
    assert bench.records[1]["reason"] == "interrupted"


async def test_the_greeting_is_prepared_while_it_rings_and_a_hung_one_does_not_hold_close(
    bench: Bench,
) -> None:
    bench.campaign(contacts(1))
    prepared: list[str] = []
    never = asyncio.Event()

    async def prepare(attempt: Attempt) -> None:
        prepared.append(attempt.variables["contact.number"])
        await never.wait()  # a synthesis that never ends

    dialler = Dialler(BASE, bench.path, bench.ari, APP, lambda: 100, prepare=prepare)
    bench.diallers.append(dialler)
    await dialler.start()
    await until(lambda: prepared == ["+15550100002"], "the greeting being prepared")
    (attempt,) = dialler.active.values()
    assert attempt.prepared is not None and not attempt.prepared.done()
    await asyncio.wait_for(dialler.close(), 5)
    assert attempt.prepared.cancelled()
