"""The campaign store: campaigns and their states, claims (next_at, limit, paused, cancelled,
do-not-call), two processes on one file never claiming the same contact, a SIGKILL mid-attempt
losing nothing and calling nobody twice, idempotent finishing, export. Real SQLite files."""

from __future__ import annotations

import csv
import io
import json
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from voicebot.errors import OutboundError
from voicebot.outbound.export import write_export
from voicebot.outbound.model import CampaignState, Contact, Outcome
from voicebot.outbound.store import (
    SCHEMA_VERSION,
    CampaignStore,
    Claim,
    check_transition,
)

ROOT = Path(__file__).resolve().parents[3]
T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
POLICY: dict[str, Any] = {"max_attempts": 3, "retry": {"busy": 600}, "window": "09:00-20:00"}
MINUTE = timedelta(minutes=1)


def number(n: int) -> str:
    return f"+7900{n:07d}"


def people(count: int, first: int = 0) -> list[Contact]:
    """Contacts on lines 2.. of a CSV file with a number and a name column."""
    return [
        Contact(
            line=i + 2,
            number=number(first + i),
            fields={"number": number(first + i), "name": f"Name {first + i}"},
        )
        for i in range(count)
    ]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "campaigns.sqlite"


@pytest.fixture
def store(db_path: Path) -> Iterator[CampaignStore]:
    with CampaignStore(db_path) as opened:
        yield opened


def claimed_numbers(claims: list[Claim]) -> list[str]:
    return [claim.contact.number for claim in claims]


# -- campaigns ---------------------------------------------------------------------------------


def test_a_new_campaign_is_running_with_every_contact_pending(
    store: CampaignStore, db_path: Path
) -> None:
    contacts = [*people(2), Contact(line=4, number="+15550100", timezone="America/New_York")]
    campaign_id = store.create_campaign("parcels", "delivery", POLICY, contacts, T0)
    info = store.campaign(campaign_id)
    assert (info.id, info.name, info.script, info.policy) == (
        campaign_id,
        "parcels",
        "delivery",
        POLICY,
    )
    assert info.state is CampaignState.RUNNING
    assert info.created_at == T0 == info.updated_at
    assert (info.counts, info.total, info.attempts_total, info.active) == ({"pending": 3}, 3, 0, 0)
    assert store.campaign("parcels") == info == store.campaign(str(campaign_id))
    assert store.campaigns() == [info]
    assert db_path.parent.is_dir()
    assert store.next_due(T0 - MINUTE) == T0


def test_campaigns_are_listed_oldest_first_with_their_own_counts(store: CampaignStore) -> None:
    first = store.create_campaign("first", "s", POLICY, people(2), T0)
    second = store.create_campaign("second", "s", {}, people(3, first=10), T0 + MINUTE)
    store.claim_due(T0 + MINUTE, limit=1)
    infos = store.campaigns()
    assert [info.id for info in infos] == [first, second]
    assert [info.counts for info in infos] == [{"pending": 2}, {"pending": 3}]
    assert [(info.attempts_total, info.active) for info in infos] == [(1, 1), (0, 0)]


@pytest.mark.parametrize(
    ("name", "script", "contacts", "problem"),
    [
        ("", "s", [], "needs a name"),
        ("  ", "s", [], "needs a name"),
        ("123", "s", [], "only digits"),
        ("x", " ", [], "needs a script"),
        (
            "x",
            "s",
            [*people(2), Contact(line=9, number=number(1))],
            "line 9: same number as line 3",
        ),
    ],
)
def test_bad_campaigns_are_refused_and_leave_nothing(
    store: CampaignStore, name: str, script: str, contacts: list[Contact], problem: str
) -> None:
    with pytest.raises(OutboundError, match=problem):
        store.create_campaign(name, script, POLICY, contacts, T0)
    assert store.campaigns() == []


def test_a_duplicate_name_is_refused(store: CampaignStore) -> None:
    store.create_campaign("parcels", "s", POLICY, people(1), T0)
    with pytest.raises(OutboundError, match="campaign named 'parcels' exists already"):
        store.create_campaign("parcels", "s", POLICY, people(1, first=5), T0)
    assert len(store.campaigns()) == 1


def test_an_unknown_campaign_is_named(store: CampaignStore) -> None:
    for ref in ("nope", 7, "7"):
        with pytest.raises(OutboundError, match=f"no campaign '{ref}'"):
            store.campaign(ref)
        with pytest.raises(OutboundError, match=f"no campaign '{ref}'"):
            store.export_rows(ref)


def test_the_policy_must_be_json(store: CampaignStore) -> None:
    with pytest.raises(OutboundError, match="policy of campaign 'x' cannot be stored as JSON"):
        store.create_campaign("x", "s", {"when": T0}, people(1), T0)


def test_times_must_be_timezone_aware(store: CampaignStore) -> None:
    with pytest.raises(OutboundError, match="now must be a timezone-aware datetime"):
        store.create_campaign("x", "s", POLICY, people(1), datetime(2025, 3, 3, 9, 0))
    with pytest.raises(OutboundError, match="since must be a timezone-aware"):
        store.attempt_times(number(0), datetime(2025, 3, 3))


def test_an_empty_campaign_is_done_at_once(store: CampaignStore) -> None:
    store.create_campaign("empty", "s", POLICY, [], T0)
    assert store.campaign("empty").state is CampaignState.DONE


# -- states ------------------------------------------------------------------------------------

S = CampaignState


@pytest.mark.parametrize(
    ("current", "wanted", "problem"),
    [
        (S.RUNNING, S.PAUSED, None),
        (S.RUNNING, S.RUNNING, None),
        (S.RUNNING, S.CANCELLED, None),
        (S.PAUSED, S.RUNNING, None),
        (S.PAUSED, S.PAUSED, None),
        (S.PAUSED, S.CANCELLED, None),
        (S.CANCELLED, S.CANCELLED, None),
        (S.CANCELLED, S.RUNNING, "is cancelled: it cannot be resumed"),
        (S.CANCELLED, S.PAUSED, "is cancelled: it cannot be paused"),
        (S.DONE, S.RUNNING, "is done: it cannot be resumed"),
        (S.DONE, S.PAUSED, "is done: it cannot be paused"),
        (S.DONE, S.CANCELLED, "is done: it cannot be cancelled"),
        (S.RUNNING, S.DONE, "'done' is set by the store"),
        (S.DONE, S.DONE, "'done' is set by the store"),
    ],
)
def test_state_changes(current: S, wanted: S, problem: str | None) -> None:
    if problem is None:
        check_transition("c", current, wanted)
    else:
        with pytest.raises(OutboundError, match=f"campaign 'c'.*{problem}"):
            check_transition("c", current, wanted)


def test_a_paused_campaign_is_not_dialled_until_resumed(store: CampaignStore) -> None:
    store.create_campaign("c", "s", POLICY, people(2), T0)
    info = store.set_state("c", CampaignState.PAUSED, T0 + MINUTE)
    assert (info.state, info.updated_at) == (CampaignState.PAUSED, T0 + MINUTE)
    assert store.claim_due(T0 + MINUTE, limit=5) == []
    assert store.next_due(T0) is None
    store.set_state("c", CampaignState.RUNNING, T0 + 2 * MINUTE)
    assert len(store.claim_due(T0 + 2 * MINUTE, limit=5)) == 2


def test_cancelling_marks_pending_contacts_and_cannot_be_undone(store: CampaignStore) -> None:
    store.create_campaign("c", "s", POLICY, people(3), T0)
    info = store.set_state("c", CampaignState.CANCELLED, T0)
    assert (info.state, info.counts) == (CampaignState.CANCELLED, {"cancelled": 3})
    assert store.claim_due(T0 + MINUTE, limit=5) == []
    with pytest.raises(OutboundError, match="is cancelled: it cannot be resumed"):
        store.set_state("c", CampaignState.RUNNING, T0)
    with pytest.raises(OutboundError, match="'sleeping' is no CampaignState"):
        store.set_state("c", "sleeping", T0)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("final", "next_at", "status"),
    [
        (None, T0 + MINUTE, "cancelled"),  # a retry would have come: none will
        (Outcome.ANSWERED, None, "answered"),  # the call in flight was done
        (Outcome.BUSY, None, "busy"),
    ],
)
def test_a_call_in_flight_when_cancelled_is_recorded(
    store: CampaignStore, final: Outcome | None, next_at: datetime | None, status: str
) -> None:
    store.create_campaign("c", "s", POLICY, people(2), T0)
    (claim,) = store.claim_due(T0, limit=1)
    info = store.set_state("c", CampaignState.CANCELLED, T0)
    assert (info.counts, info.active) == ({"cancelled": 2}, 1)
    outcome = final or Outcome.NO_ANSWER
    store.finish_attempt(claim.attempt_id, outcome, T0, result=None, final=final, next_at=next_at)
    info = store.campaign("c")
    assert info.state is CampaignState.CANCELLED
    expected = {"cancelled": 2} if status == "cancelled" else {"cancelled": 1, status: 1}
    assert info.counts == expected
    assert store.export_rows("c")[0]["last_outcome"] == outcome.value
    assert store.claim_due(T0 + 2 * MINUTE, limit=5) == []


def test_a_campaign_is_done_when_every_contact_has_its_final_status(store: CampaignStore) -> None:
    store.create_campaign("c", "s", POLICY, people(2), T0)
    first, second = store.claim_due(T0, limit=2)
    store.finish_attempt(
        first.attempt_id, Outcome.ANSWERED, T0, result=None, final=Outcome.ANSWERED, next_at=None
    )
    store.finish_attempt(second.attempt_id, Outcome.BUSY, T0, result=None, final=None, next_at=T0)
    assert store.campaign("c").state is CampaignState.RUNNING
    (retry,) = store.claim_due(T0 + MINUTE, limit=2)
    assert (retry.contact_id, retry.attempt_number) == (second.contact_id, 2)
    assert store.campaign("c").state is CampaignState.RUNNING  # a call is in flight
    store.finish_attempt(
        retry.attempt_id, Outcome.BUSY, T0, result=None, final=Outcome.BUSY, next_at=None
    )
    info = store.campaign("c")
    assert (info.state, info.counts) == (CampaignState.DONE, {"answered": 1, "busy": 1})
    assert info.attempts_total == 3
    with pytest.raises(OutboundError, match="is done: it cannot be paused"):
        store.set_state("c", CampaignState.PAUSED, T0)


# -- claims ------------------------------------------------------------------------------------


def test_a_claim_carries_what_the_dialler_needs(store: CampaignStore) -> None:
    contact = Contact(
        line=7, number="+15550100", fields={"number": "+1 555 0100", "x": "é"}, timezone="UTC"
    )
    campaign_id = store.create_campaign("c", "greet", POLICY, [contact], T0)
    (claim,) = store.claim_due(T0, limit=1)
    assert claim.contact == contact
    assert (claim.campaign_id, claim.campaign_name, claim.script) == (campaign_id, "c", "greet")
    assert (claim.policy, claim.attempt_number, claim.started_at) == (POLICY, 1, T0)
    assert claim.channel_id is None
    assert store.campaign(campaign_id).active == 1


def test_claims_take_the_oldest_due_first_up_to_the_limit(store: CampaignStore) -> None:
    store.create_campaign("c", "s", POLICY, people(5), T0)
    first, second = store.claim_due(T0, limit=2)
    assert claimed_numbers([first, second]) == [number(0), number(1)]
    # The second is due before the first and the three never called: it comes first.
    store.finish_attempt(first.attempt_id, Outcome.BUSY, T0, result=None, final=None, next_at=T0)
    store.finish_attempt(
        second.attempt_id, Outcome.BUSY, T0, result=None, final=None, next_at=T0 - MINUTE
    )
    assert store.claim_due(T0 - 2 * MINUTE, limit=5) == []
    retries = store.claim_due(T0, limit=1)
    assert claimed_numbers(retries) == [number(1)]
    assert claimed_numbers(store.claim_due(T0, limit=10)) == [number(i) for i in (0, 2, 3, 4)]
    assert store.claim_due(T0, limit=0) == []
    store.finish_attempt(
        retries[0].attempt_id, Outcome.BUSY, T0, result=None, final=None, next_at=T0 + 10 * MINUTE
    )
    assert store.claim_due(T0 + 9 * MINUTE, limit=10) == []  # it waits for its retry
    assert store.next_due(T0) == T0 + 10 * MINUTE
    (third,) = store.claim_due(T0 + 10 * MINUTE, limit=10)
    assert (third.contact.number, third.attempt_number) == (number(1), 3)


def test_next_due(store: CampaignStore) -> None:
    assert store.next_due(T0) is None
    store.create_campaign("c", "s", POLICY, people(1), T0)
    assert store.next_due(T0 - MINUTE) == T0
    assert store.next_due(T0 + MINUTE) == T0 + MINUTE  # due already
    store.claim_due(T0, limit=1)
    assert store.next_due(T0) is None  # its call is in flight


# -- do not call -------------------------------------------------------------------------------


def test_numbers_on_the_dnc_list_at_creation_are_never_dialled(store: CampaignStore) -> None:
    assert store.add_dnc(number(1), "file", T0)
    store.create_campaign("c", "s", POLICY, people(3), T0)
    assert store.campaign("c").counts == {"pending": 2, "dnc": 1}
    assert claimed_numbers(store.claim_due(T0, limit=5)) == [number(0), number(2)]


def test_adding_a_number_to_dnc_marks_its_pending_contacts_in_every_campaign(
    store: CampaignStore,
) -> None:
    store.create_campaign("a", "s", POLICY, people(2), T0)
    store.create_campaign("b", "s", POLICY, people(1, first=1), T0)
    assert store.add_dnc(number(1), "asked on a call", T0)
    assert not store.add_dnc(number(1), "again", T0)
    assert store.is_dnc(number(1)) and not store.is_dnc(number(0))
    assert store.campaign("a").counts == {"pending": 1, "dnc": 1}
    info = store.campaign("b")
    assert (info.counts, info.state) == ({"dnc": 1}, CampaignState.DONE)
    assert claimed_numbers(store.claim_due(T0, limit=5)) == [number(0)]


def test_load_dnc_counts_the_new_numbers(store: CampaignStore) -> None:
    store.add_dnc(number(0), "x", T0)
    assert store.load_dnc([number(0), number(1), number(2), number(1)], "file", T0) == 2
    assert store.load_dnc([], "file", T0) == 0
    with pytest.raises(OutboundError, match="empty number"):
        store.load_dnc([number(5), ""], "file", T0)
    assert not store.is_dnc(number(5))


def test_a_number_on_the_dnc_list_is_not_claimed_however_it_got_there(
    store: CampaignStore, db_path: Path
) -> None:
    store.create_campaign("c", "s", POLICY, people(2), T0)
    with sqlite3.connect(db_path) as other:  # a list written behind the store's back
        other.execute("INSERT INTO dnc VALUES (?, 'x', 0)", (number(0),))
    assert claimed_numbers(store.claim_due(T0, limit=1)) == [number(1)]
    assert store.campaign("c").counts == {"pending": 1, "dnc": 1}


def test_a_contact_put_on_dnc_mid_call_keeps_the_calls_outcome_or_stays_dnc(
    store: CampaignStore,
) -> None:
    store.create_campaign("c", "s", POLICY, people(2), T0)
    first, second = store.claim_due(T0, limit=2)
    store.add_dnc(number(0), "asked on the call", T0)
    store.add_dnc(number(1), "file", T0)
    store.finish_attempt(
        first.attempt_id, Outcome.ANSWERED, T0, result=None, final=Outcome.ANSWERED, next_at=None
    )
    store.finish_attempt(second.attempt_id, Outcome.BUSY, T0, result=None, final=None, next_at=T0)
    info = store.campaign("c")
    assert (info.counts, info.state) == ({"answered": 1, "dnc": 1}, CampaignState.DONE)


# -- attempts ----------------------------------------------------------------------------------


def test_finishing_twice_counts_once(store: CampaignStore) -> None:
    store.create_campaign("c", "s", POLICY, people(1), T0)
    (claim,) = store.claim_due(T0, limit=1)
    store.finish_attempt(
        claim.attempt_id, Outcome.BUSY, T0, result={"n": 1}, final=None, next_at=T0 + MINUTE
    )
    store.finish_attempt(  # a late event: changes nothing
        claim.attempt_id,
        Outcome.ANSWERED,
        T0,
        result={"n": 2},
        final=Outcome.ANSWERED,
        next_at=None,
    )
    (row,) = store.export_rows("c")
    assert (row["status"], row["last_outcome"], row["result"]) == ("pending", "busy", {"n": 1})
    assert store.campaign("c").attempts_total == 1
    assert store.next_due(T0) == T0 + MINUTE


@pytest.mark.parametrize(
    ("outcome", "final", "next_at", "problem"),
    [
        (Outcome.DNC, Outcome.DNC, None, "'dnc' is no attempt outcome"),
        (Outcome.PENDING, None, T0, "'pending' is no attempt outcome"),
        ("gone", None, T0, "'gone' is no Outcome"),
        (Outcome.BUSY, None, None, "give either final or next_at"),
        (Outcome.BUSY, Outcome.BUSY, T0, "give either final or next_at"),
        (Outcome.BUSY, Outcome.PENDING, None, "'pending' is no final status"),
    ],
)
def test_bad_finishes_are_refused(
    store: CampaignStore,
    outcome: Outcome,
    final: Outcome | None,
    next_at: datetime | None,
    problem: str,
) -> None:
    store.create_campaign("c", "s", POLICY, people(1), T0)
    (claim,) = store.claim_due(T0, limit=1)
    with pytest.raises(OutboundError, match=problem):
        store.finish_attempt(
            claim.attempt_id, outcome, T0, result=None, final=final, next_at=next_at
        )
    assert store.interrupted(T0) == [claim]  # still open


def test_unknown_attempts_are_named(store: CampaignStore) -> None:
    with pytest.raises(OutboundError, match="no attempt 41"):
        store.finish_attempt(41, Outcome.BUSY, T0, result=None, final=Outcome.BUSY, next_at=None)
    with pytest.raises(OutboundError, match="no attempt 42"):
        store.set_channel(42, "chan")
    store.create_campaign("c", "s", POLICY, people(1), T0)
    (claim,) = store.claim_due(T0, limit=1)
    with pytest.raises(OutboundError, match="cannot be stored as JSON"):
        store.finish_attempt(
            claim.attempt_id, Outcome.BUSY, T0, result={"t": T0}, final=Outcome.BUSY, next_at=None
        )


def test_attempt_times_span_campaigns(store: CampaignStore) -> None:
    store.create_campaign("a", "s", POLICY, people(2), T0)
    store.create_campaign("b", "s", POLICY, people(1), T0)
    for when in (T0, T0 + 5 * MINUTE):
        for claim in store.claim_due(when, limit=5):
            store.finish_attempt(
                claim.attempt_id, Outcome.BUSY, when, result=None, final=None, next_at=when
            )
    assert store.attempt_times(number(0), T0) == [T0, T0, T0 + 5 * MINUTE, T0 + 5 * MINUTE]
    assert store.attempt_times(number(0), T0 + MINUTE) == [T0 + 5 * MINUTE] * 2
    assert store.attempt_times(number(1), T0) == [T0, T0 + 5 * MINUTE]
    assert store.attempt_times(number(9), T0) == []


# -- restarts and concurrency ------------------------------------------------------------------


def test_an_abandoned_store_leaves_its_attempt_to_the_next_one(db_path: Path) -> None:
    bot = CampaignStore(db_path)
    bot.create_campaign("c", "s", POLICY, people(2), T0)
    (claim,) = bot.claim_due(T0, limit=1)
    bot.set_channel(claim.attempt_id, "chan-1")
    # Never closed: as if the bot had died here.
    with CampaignStore(db_path) as restarted:
        (left,) = restarted.interrupted(T0 + MINUTE)
        assert (left.attempt_id, left.contact, left.channel_id) == (
            claim.attempt_id,
            claim.contact,
            "chan-1",
        )
        assert claimed_numbers(restarted.claim_due(T0 + MINUTE, limit=5)) == [number(1)]


KILLED_BOT = """
import os, signal, sys
from datetime import datetime, timezone
from pathlib import Path
from voicebot.outbound.store import CampaignStore
store = CampaignStore(Path(sys.argv[1]))
now = datetime.fromisoformat(sys.argv[2])
claims = store.claim_due(now, limit=2)
store.set_channel(claims[0].attempt_id, "chan-" + str(claims[0].attempt_id))
print(" ".join(str(claim.attempt_id) for claim in claims), flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_bot_killed_mid_call_loses_no_attempt_and_calls_nobody_twice(db_path: Path) -> None:
    with CampaignStore(db_path) as cli:
        cli.create_campaign("c", "s", POLICY, people(3), T0)
    child = subprocess.run(
        [sys.executable, "-c", KILLED_BOT, str(db_path), T0.isoformat()],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    killed = [int(attempt_id) for attempt_id in child.stdout.split()]
    assert len(killed) == 2
    later = T0 + MINUTE
    with CampaignStore(db_path) as bot:
        interrupted = bot.interrupted(later)
        assert [claim.attempt_id for claim in interrupted] == killed
        assert interrupted[0].channel_id == f"chan-{killed[0]}"
        assert bot.campaign("c").active == 2
        # Only the contact never called is claimed; the others wait for the dialler's decision.
        never_called = bot.claim_due(later, limit=5)
        assert claimed_numbers(never_called) == [number(2)]
        for claim in interrupted:
            bot.finish_attempt(
                claim.attempt_id,
                Outcome.FAILED,
                later,
                result={"reason": "interrupted"},
                final=None,
                next_at=later,
            )
        retries = bot.claim_due(later, limit=5)
        assert claimed_numbers(retries) == [number(0), number(1)]
        assert [claim.attempt_number for claim in retries] == [2, 2]
        assert bot.interrupted(later) == [*never_called, *retries]  # ordered by attempt id
        assert bot.campaign("c").attempts_total == 5
        assert bot.export_rows("c")[0]["attempts"] == 2


def test_writes_wait_for_another_process_transaction(db_path: Path) -> None:
    with CampaignStore(db_path) as bot:
        bot.create_campaign("c", "s", POLICY, people(2), T0)
        (claim,) = bot.claim_due(T0, limit=1)
        other = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")  # the CLI, mid-way through a write
        other.execute("INSERT INTO dnc VALUES ('+1555', 'x', 0)")
        commit = threading.Timer(0.3, lambda: other.execute("COMMIT"))
        commit.start()
        try:
            bot.finish_attempt(
                claim.attempt_id, Outcome.BUSY, T0, result=None, final=Outcome.BUSY, next_at=None
            )
        finally:
            commit.join()
            other.close()
        assert bot.campaign("c").counts == {"busy": 1, "pending": 1}


def test_two_stores_taking_turns_never_claim_the_same_contact(db_path: Path) -> None:
    with CampaignStore(db_path) as bot, CampaignStore(db_path) as cli:
        bot.create_campaign("c", "s", POLICY, people(7), T0)
        taken: list[int] = []
        for turn in range(8):
            claimer = bot if turn % 2 == 0 else cli
            taken += [claim.contact_id for claim in claimer.claim_due(T0, limit=2)]
        assert len(taken) == len(set(taken)) == 7


def test_concurrent_claimers_never_claim_the_same_contact(db_path: Path) -> None:
    contacts = 400
    with CampaignStore(db_path) as setup:
        setup.create_campaign("c", "s", POLICY, people(contacts), T0)
    claimed: list[list[int]] = [[] for _ in range(4)]
    errors: list[BaseException] = []
    start = threading.Barrier(len(claimed))

    def claim_all(mine: list[int]) -> None:
        try:
            with CampaignStore(db_path) as own:  # one connection each, like separate processes
                start.wait()
                while claims := own.claim_due(T0, limit=3):
                    mine += [claim.contact_id for claim in claims]
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=claim_all, args=(mine,)) for mine in claimed]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    everything = [contact_id for mine in claimed for contact_id in mine]
    assert len(everything) == len(set(everything)) == contacts


def test_one_store_is_safe_from_several_threads(store: CampaignStore) -> None:
    store.create_campaign("c", "s", POLICY, people(100), T0)
    claimed: list[int] = []
    errors: list[BaseException] = []

    def claim_some() -> None:
        try:
            while claims := store.claim_due(T0, limit=2):
                claimed.extend(claim.contact_id for claim in claims)
                store.campaigns()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=claim_some) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert len(claimed) == len(set(claimed)) == 100


# -- the file ----------------------------------------------------------------------------------


def test_the_file_is_in_wal_mode_with_its_schema_version(
    store: CampaignStore, db_path: Path
) -> None:
    with sqlite3.connect(db_path) as other:
        assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert other.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)


def test_a_newer_schema_is_refused(db_path: Path) -> None:
    CampaignStore(db_path).close()
    with sqlite3.connect(db_path) as other:
        other.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    with pytest.raises(OutboundError, match=f"schema version {SCHEMA_VERSION + 1}.*upgrade"):
        CampaignStore(db_path)


def test_a_file_that_is_no_database_is_refused(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(b"not a database, just some text that is long enough" * 40)
    with pytest.raises(OutboundError, match=r"campaign store .* cannot be opened"):
        CampaignStore(db_path)


def test_a_closed_store_says_so(db_path: Path) -> None:
    store = CampaignStore(db_path)
    store.close()
    store.close()
    with pytest.raises(OutboundError, match="is closed"):
        store.campaigns()


def test_a_campaign_survives_reopening(db_path: Path) -> None:
    with CampaignStore(db_path) as first:
        first.create_campaign("c", "s", POLICY, people(2), T0)
        info = first.campaign("c")
    with CampaignStore(db_path) as second:
        assert second.campaign("c") == info


def test_a_hundred_thousand_contacts_in_one_go(store: CampaignStore) -> None:
    store.create_campaign("big", "s", POLICY, people(100_000), T0)
    assert store.campaign("big").counts == {"pending": 100_000}
    assert len(store.claim_due(T0, limit=50)) == 50
    assert store.next_due(T0) == T0


# -- export ------------------------------------------------------------------------------------


@pytest.fixture
def exported(store: CampaignStore) -> list[dict[str, Any]]:
    """A campaign of three: one answered (with an AMD verdict), one retried, one never called;
    the contact list has a column named `status` and one named `contact_status`."""
    contacts = [
        Contact(
            line=line,
            number=number(line),
            fields={"number": f"8 900 {line}", "status": "vip", "contact_status": "x"},
        )
        for line in (2, 3, 4)
    ]
    store.create_campaign("c", "s", POLICY, contacts, T0)
    answered, busy = store.claim_due(T0, limit=2)
    result = {"amd": {"verdict": "human", "ms": 420}, "path": ["greet", "bye"]}
    store.finish_attempt(
        answered.attempt_id,
        Outcome.ANSWERED,
        T0,
        result=result,
        final=Outcome.ANSWERED,
        next_at=None,
    )
    store.finish_attempt(busy.attempt_id, Outcome.BUSY, T0, result=None, final=None, next_at=T0)
    store.claim_due(T0 + MINUTE, limit=1)  # the retry, still dialling
    return store.export_rows("c")


def test_export_rows(exported: list[dict[str, Any]]) -> None:
    assert exported[0] == {
        "number": number(2),
        "status": "answered",
        "attempts": 1,
        "last_outcome": "answered",
        "last_attempt_at": T0.isoformat(),
        "amd": "human",
        "result": {"amd": {"verdict": "human", "ms": 420}, "path": ["greet", "bye"]},
        "contact_number": "8 900 2",
        "contact_contact_status": "vip",
        "contact_status": "x",
    }
    assert [row["status"] for row in exported] == ["answered", "pending", "pending"]
    assert [row["attempts"] for row in exported] == [1, 2, 0]
    assert [row["last_outcome"] for row in exported] == ["answered", "busy", None]
    assert exported[1]["last_attempt_at"] == (T0 + MINUTE).isoformat()
    assert exported[1]["result"] is None and exported[1]["amd"] is None
    assert exported[2]["last_attempt_at"] is None


def test_export_jsonl_round_trip(exported: list[dict[str, Any]]) -> None:
    out = io.StringIO()
    write_export(exported, "jsonl", out)
    assert [json.loads(line) for line in out.getvalue().splitlines()] == exported


def test_export_csv_round_trip(exported: list[dict[str, Any]]) -> None:
    out = io.StringIO()
    write_export(exported, "csv", out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert list(rows[0]) == list(exported[0])
    for row, original in zip(rows, exported, strict=True):
        assert json.loads(row.pop("result") or "null") == original["result"]
        expected = {key: value for key, value in original.items() if key != "result"}
        assert row == {key: "" if v is None else str(v) for key, v in expected.items()}


def test_an_empty_export_still_has_a_header() -> None:
    out = io.StringIO()
    write_export([], "csv", out)
    assert out.getvalue().startswith("number,status,attempts,")


def test_an_unknown_export_format_is_refused() -> None:
    with pytest.raises(OutboundError, match="export format 'xml': use one of csv, jsonl"):
        write_export([], "xml", io.StringIO())


def test_a_released_claim_is_no_attempt_and_is_due_again_later(tmp_path: Path) -> None:
    store = CampaignStore(tmp_path / "c.sqlite")
    store.create_campaign("r", "s", {}, [Contact(2, "5550001", {"number": "5550001"})], T0)
    (claim,) = store.claim_due(T0, 5)
    later = T0 + timedelta(hours=1)
    store.release(claim.attempt_id, later)
    assert store.claim_due(T0 + timedelta(minutes=59), 5) == []
    assert store.campaign("r").attempts_total == 0
    (again,) = store.claim_due(later, 5)
    assert again.attempt_number == 1
    store.finish_attempt(again.attempt_id, Outcome.ANSWERED, later, result=None,
                         final=Outcome.ANSWERED, next_at=None)  # fmt: skip
    with pytest.raises(OutboundError, match="no attempt"):
        store.release(again.attempt_id, later)  # done: not a claim any more
