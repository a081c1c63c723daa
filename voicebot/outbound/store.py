"""The campaign store: campaigns, their contacts, every call attempt and the do-not-call list,
in one SQLite file (docs/outbound.md, "The campaign store" says what a restart relies on).

An attempt is written ("dialling") in the transaction that claims its contact, before its call
is placed, in WAL mode with ``synchronous=FULL``; an attempt still dialling is never claimed
again, ``interrupted()`` hands it back. So nobody is called twice for the same attempt and no
attempt is lost, whenever the bot dies. Every write is one short ``BEGIN IMMEDIATE``
transaction, so processes sharing the file (the bot, the CLI) never claim the same contact.
The store decides nothing: the policy is opaque JSON and every ``next_at`` is the caller's.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from ..errors import OutboundError
from .model import ATTEMPT_OUTCOMES, CampaignState, Contact, Outcome

SCHEMA_VERSION = 1
# How long a call waits for another process's write (a 100,000-contact import, say).
LOCK_WAIT_S = 10.0
EXPORT_FORMATS = ("csv", "jsonl")
# Every exported row starts with these; a contact's own column of the same name gets "contact_".
EXPORT_KEYS = ("number", "status", "attempts", "last_outcome", "last_attempt_at", "amd", "result")

_PENDING = Outcome.PENDING.value
_Enum = TypeVar("_Enum", bound=StrEnum)
# Times are UTC epoch seconds; policy, fields and result are JSON objects.
_SCHEMA = (
    """CREATE TABLE campaigns (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,
        script TEXT NOT NULL, policy TEXT NOT NULL, state TEXT NOT NULL,
        created_at REAL NOT NULL, updated_at REAL NOT NULL)""",
    """CREATE TABLE contacts (id INTEGER PRIMARY KEY,
        campaign_id INTEGER NOT NULL REFERENCES campaigns (id), line INTEGER NOT NULL,
        number TEXT NOT NULL, fields TEXT NOT NULL, timezone TEXT, status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0, next_at REAL, last_outcome TEXT,
        updated_at REAL NOT NULL, UNIQUE (campaign_id, number))""",
    "CREATE INDEX contacts_due ON contacts (status, next_at)",
    "CREATE INDEX contacts_by_campaign ON contacts (campaign_id, status)",
    "CREATE INDEX contacts_by_number ON contacts (number)",
    """CREATE TABLE attempts (id INTEGER PRIMARY KEY,
        contact_id INTEGER NOT NULL REFERENCES contacts (id), number INTEGER NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('dialling', 'done')), started_at REAL NOT NULL,
        ended_at REAL, outcome TEXT, channel_id TEXT, result TEXT, UNIQUE (contact_id, number))""",
    "CREATE INDEX attempts_dialling ON attempts (contact_id) WHERE state = 'dialling'",
    "CREATE TABLE dnc (number TEXT PRIMARY KEY, reason TEXT NOT NULL, added_at REAL NOT NULL)",
)

_DIALLING = "EXISTS (SELECT 1 FROM attempts a WHERE a.contact_id = c.id AND a.state = 'dialling')"
_CLAIM_SELECT = """SELECT a.id, a.number, a.started_at, a.channel_id, k.id, k.name, k.script,
    k.policy, c.id, c.line, c.number, c.fields, c.timezone FROM attempts a
    JOIN contacts c ON c.id = a.contact_id JOIN campaigns k ON k.id = c.campaign_id"""
# Running and paused campaigns with no contact left to call and no call in flight are done.
_SETTLE = f"""UPDATE campaigns SET state = 'done', updated_at = :now
    WHERE state IN ('running', 'paused')
      AND NOT EXISTS (SELECT 1 FROM contacts c
                      WHERE c.campaign_id = campaigns.id AND c.status = '{_PENDING}')
      AND id NOT IN (SELECT c.campaign_id FROM attempts a JOIN contacts c ON c.id = a.contact_id
                     WHERE a.state = 'dialling')"""
# Contacts to claim, oldest due first, and whether each is on the do-not-call list.
_DUE = f"""SELECT c.id, EXISTS (SELECT 1 FROM dnc WHERE dnc.number = c.number)
    FROM contacts c JOIN campaigns k ON k.id = c.campaign_id
    WHERE c.status = '{_PENDING}' AND c.next_at <= ? AND k.state = 'running' AND NOT {_DIALLING}
    ORDER BY c.next_at, c.id LIMIT ?"""
# Pending contacts whose number is on the do-not-call list are never dialled.
_MARK_DNC = f"""UPDATE contacts SET status = 'dnc', next_at = NULL, updated_at = :now
    WHERE status = '{_PENDING}' AND number IN (SELECT number FROM dnc)"""


@dataclass(frozen=True)
class CampaignInfo:
    """A campaign and how far it got."""

    id: int
    name: str
    script: str
    policy: dict[str, Any]
    state: CampaignState
    created_at: datetime
    updated_at: datetime
    counts: dict[str, int]  # contacts by status (an Outcome value); statuses with none left out
    attempts_total: int
    active: int  # attempts dialling now

    @property
    def total(self) -> int:
        """How many contacts the campaign has."""
        return sum(self.counts.values())


@dataclass(frozen=True)
class Claim:
    """One attempt the store has opened ("dialling"): the dialler places its call."""

    attempt_id: int
    attempt_number: int  # 1 for a contact's first attempt
    campaign_id: int
    campaign_name: str
    script: str
    policy: dict[str, Any]
    contact: Contact
    contact_id: int
    started_at: datetime
    channel_id: str | None  # set by set_channel(); an interrupted attempt's channel may live on


def check_transition(name: str, current: CampaignState, wanted: CampaignState) -> None:
    """Raise OutboundError unless a campaign in state ``current`` may be set to ``wanted``
    (setting the state it is in already is allowed, and changes nothing)."""
    if wanted is CampaignState.DONE:
        raise OutboundError(f"campaign {name!r}: 'done' is set by the store, not by hand")
    if current is wanted or current in (CampaignState.RUNNING, CampaignState.PAUSED):
        return
    verb = "resumed" if wanted is CampaignState.RUNNING else wanted.value
    raise OutboundError(f"campaign {name!r} is {current.value}: it cannot be {verb}")


def _epoch(when: datetime, what: str) -> float:
    if not isinstance(when, datetime) or when.utcoffset() is None:
        raise OutboundError(f"{what} must be a timezone-aware datetime, not {when!r}")
    return when.timestamp()


def _member(kind: type[_Enum], value: str, what: str) -> _Enum:
    try:
        return kind(value)
    except ValueError:
        raise OutboundError(f"{what}: {value!r} is no {kind.__name__}") from None


def _among(ids: Sequence[int]) -> str:
    return f"IN ({', '.join('?' * len(ids))})"


def _time(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _json(value: Any, what: str) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise OutboundError(f"{what} cannot be stored as JSON: {exc}") from exc


def _info(row: Sequence[Any], counts: dict[str, int], attempts: tuple[int, int]) -> CampaignInfo:
    cid, name, script, policy, state, created, updated = row
    times = _time(created), _time(updated)
    state = CampaignState(state)
    return CampaignInfo(cid, name, script, json.loads(policy), state, *times, counts, *attempts)


def _claim(row: Sequence[Any]) -> Claim:
    attempt_id, number, started, channel, cid, cname, script, policy, contact_id = row[:9]
    line, phone, fields, timezone = row[9:]
    contact = Contact(line=line, number=phone, fields=json.loads(fields), timezone=timezone)
    policy = json.loads(policy)
    return Claim(
        attempt_id, number, cid, cname, script, policy, contact, contact_id, _time(started), channel
    )


class CampaignStore:
    """The campaigns of one bot, in the SQLite file at ``path`` (created when missing)."""

    def __init__(self, path: Path, *, lock_wait_s: float = LOCK_WAIT_S) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        try:
            self._open(lock_wait_s)
        except BaseException:
            self.close()
            raise

    def _open(self, lock_wait_s: float) -> None:
        with self._wrapped("cannot be opened"):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = self._db = sqlite3.connect(
                self.path, timeout=lock_wait_s, isolation_level=None, check_same_thread=False
            )
            mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise OutboundError(f"campaign store {self.path}: WAL mode refused ({mode})")
            # NORMAL may lose the last commits on power loss: a claimed attempt must survive.
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA foreign_keys=ON")
        with self._transaction() as db:  # one process creates the tables, the others wait
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise OutboundError(
                    f"campaign store {self.path} has schema version {version}; this voicebot "
                    f"knows version {SCHEMA_VERSION} at most: upgrade voicebot"
                )
            if version == 0:
                for statement in _SCHEMA:
                    db.execute(statement)
                db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def __enter__(self) -> CampaignStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transactions ---------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            raise OutboundError(f"campaign store {self.path} is closed")
        return self._db

    @contextlib.contextmanager
    def _wrapped(self, doing: str) -> Iterator[None]:
        try:
            yield
        except (sqlite3.Error, OSError) as exc:
            raise OutboundError(f"campaign store {self.path} {doing}: {exc}") from exc

    @contextlib.contextmanager
    def _transaction(self, *, write: bool = True) -> Iterator[sqlite3.Connection]:
        """One transaction under the lock: IMMEDIATE (the write lock taken up front, so it
        cannot fail half-way on another process's write) or a read snapshot."""
        with self._lock, self._wrapped("failed"):
            db = self._connection()
            db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield db
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    # -- campaigns ------------------------------------------------------------------------------

    def create_campaign(
        self,
        name: str,
        script: str,
        policy: dict[str, Any],
        contacts: Sequence[Contact],
        now: datetime,
    ) -> int:
        """A new running campaign (its id) whose contacts are all due at ``now``, except those
        on the do-not-call list: they are 'dnc' at once. One transaction: all or nothing."""
        if not name.strip():
            raise OutboundError("a campaign needs a name")
        if name.isdigit():
            raise OutboundError(f"campaign name {name!r} is only digits: it would read as an id")
        if not script.strip():
            raise OutboundError(f"campaign {name!r} needs a script")
        at = _epoch(now, "now")
        policy_text = _json(policy, f"the policy of campaign {name!r}")
        seen: dict[str, int] = {}
        rows = []
        for contact in contacts:
            first = seen.setdefault(contact.number, contact.line)
            if first != contact.line:
                raise OutboundError(f"contact on line {contact.line}: same number as line {first}")
            fields = _json(dict(contact.fields), f"contact on line {contact.line}")
            rows.append((contact.line, contact.number, fields, contact.timezone, _PENDING, at, at))
        with self._transaction() as db:
            if db.execute("SELECT 1 FROM campaigns WHERE name = ?", (name,)).fetchone():
                raise OutboundError(f"a campaign named {name!r} exists already")
            cursor = db.execute(
                "INSERT INTO campaigns (name, script, policy, state, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (name, script, policy_text, CampaignState.RUNNING.value, at, at),
            )
            campaign_id = cursor.lastrowid
            assert campaign_id is not None
            db.executemany(
                f"INSERT INTO contacts (campaign_id, line, number, fields, timezone, status, "
                f"next_at, updated_at) VALUES ({campaign_id}, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            db.execute(_MARK_DNC, {"now": at})
            db.execute(_SETTLE, {"now": at})
        return campaign_id

    def campaigns(self) -> list[CampaignInfo]:
        """Every campaign, oldest first."""
        with self._transaction(write=False) as db:
            return self._infos(db, None)

    def campaign(self, ref: int | str) -> CampaignInfo:
        """One campaign by id or name (a name of digits only reads as an id)."""
        with self._transaction(write=False) as db:
            return self._infos(db, self._campaign_id(db, ref))[0]

    def _campaign_id(self, db: sqlite3.Connection, ref: int | str) -> int:
        if isinstance(ref, str) and not ref.isdigit():
            row = db.execute("SELECT id FROM campaigns WHERE name = ?", (ref,)).fetchone()
        else:
            row = db.execute("SELECT id FROM campaigns WHERE id = ?", (int(ref),)).fetchone()
        if row is None:
            raise OutboundError(f"no campaign {str(ref)!r}")
        return int(row[0])

    def _infos(self, db: sqlite3.Connection, campaign_id: int | None) -> list[CampaignInfo]:
        """One campaign's info, or every campaign's (``campaign_id`` None)."""
        only = "" if campaign_id is None else f"WHERE c.campaign_id = {int(campaign_id)}"
        counts: dict[int, dict[str, int]] = {}
        for cid, status, count in db.execute(
            f"SELECT c.campaign_id, c.status, COUNT(*) FROM contacts c {only} "
            "GROUP BY c.campaign_id, c.status"
        ):
            counts.setdefault(cid, {})[status] = count
        attempts: dict[int, tuple[int, int]] = {
            cid: (total, active)
            for cid, total, active in db.execute(
                "SELECT c.campaign_id, COUNT(*), SUM(a.state = 'dialling') FROM attempts a "
                f"JOIN contacts c ON c.id = a.contact_id {only} GROUP BY c.campaign_id"
            )
        }
        rows = db.execute(
            "SELECT id, name, script, policy, state, created_at, updated_at FROM campaigns "
            f"{only.replace('c.campaign_id', 'id')} ORDER BY id"
        )
        return [_info(row, counts.get(row[0], {}), attempts.get(row[0], (0, 0))) for row in rows]

    def set_state(self, ref: int | str, state: CampaignState, now: datetime) -> CampaignInfo:
        """Pause, resume or cancel a campaign. Cancelling marks every contact still pending
        'cancelled'; a call in flight goes on and its attempt is recorded when it ends."""
        at = _epoch(now, "now")
        state = _member(CampaignState, state, "set_state")
        with self._transaction() as db:
            campaign_id = self._campaign_id(db, ref)
            name, current = db.execute(
                "SELECT name, state FROM campaigns WHERE id = ?", (campaign_id,)
            ).fetchone()
            check_transition(name, CampaignState(current), state)
            if state.value != current:
                db.execute(
                    "UPDATE campaigns SET state = ?, updated_at = ? WHERE id = ?",
                    (state.value, at, campaign_id),
                )
            if state is CampaignState.CANCELLED:
                db.execute(
                    "UPDATE contacts SET status = ?, next_at = NULL, updated_at = ? "
                    "WHERE campaign_id = ? AND status = ?",
                    (Outcome.CANCELLED.value, at, campaign_id, _PENDING),
                )
            db.execute(_SETTLE, {"now": at})
            return self._infos(db, campaign_id)[0]

    # -- attempts -------------------------------------------------------------------------------

    def claim_due(self, now: datetime, limit: int) -> list[Claim]:
        """Open an attempt ("dialling", started at ``now``) for each of at most ``limit``
        contacts due by ``now`` (oldest ``next_at`` first) in running campaigns, with no
        attempt in flight and not on the do-not-call list. One transaction, so two processes
        never claim the same contact."""
        at = _epoch(now, "now")
        if limit <= 0:
            return []
        with self._transaction() as db:
            claimed: list[int] = []
            while due := db.execute(_DUE, (at, limit - len(claimed))).fetchall():
                # A contact found on the list now is marked, and leaves its place to the next.
                fresh = [contact_id for contact_id, listed in due if not listed]
                barred = [contact_id for contact_id, listed in due if listed]
                db.execute(
                    f"UPDATE contacts SET status = 'dnc', next_at = NULL, updated_at = ? "
                    f"WHERE id {_among(barred)}",
                    (at, *barred),
                )
                db.execute(
                    "UPDATE contacts SET attempts = attempts + 1, updated_at = ? "
                    f"WHERE id {_among(fresh)}",
                    (at, *fresh),
                )
                db.execute(
                    "INSERT INTO attempts (contact_id, number, state, started_at) "
                    f"SELECT id, attempts, 'dialling', ? FROM contacts WHERE id {_among(fresh)}",
                    (at, *fresh),
                )
                claimed += fresh
                if len(claimed) == limit:
                    break
            db.execute(_SETTLE, {"now": at})
            rows = db.execute(
                f"{_CLAIM_SELECT} WHERE a.state = 'dialling' AND c.id {_among(claimed)} "
                "ORDER BY c.next_at, c.id",
                claimed,
            )
            return [_claim(row) for row in rows]

    def interrupted(self, now: datetime) -> list[Claim]:
        """The attempts still dialling that started by ``now``: at start-up, the calls of a
        bot that died mid-call. Their contacts are not claimed again until each is closed
        with finish_attempt()."""
        at = _epoch(now, "now")
        with self._transaction(write=False) as db:
            rows = db.execute(
                f"{_CLAIM_SELECT} WHERE a.state = 'dialling' AND a.started_at <= ? ORDER BY a.id",
                (at,),
            )
            return [_claim(row) for row in rows]

    def set_channel(self, attempt_id: int, channel_id: str) -> None:
        """The Asterisk channel placed for an attempt."""
        with self._transaction() as db:
            update = "UPDATE attempts SET channel_id = ? WHERE id = ?"
            if not db.execute(update, (channel_id, attempt_id)).rowcount:
                raise OutboundError(f"no attempt {attempt_id}")

    def finish_attempt(
        self,
        attempt_id: int,
        outcome: Outcome,
        now: datetime,
        *,
        result: Mapping[str, Any] | None,
        final: Outcome | None,
        next_at: datetime | None,
    ) -> None:
        """Close an attempt with its ``outcome`` and ``result``; its contact ends as ``final``
        or stays pending until ``next_at`` (give one of them). A contact cancelled or put on
        the do-not-call list meanwhile ends as ``final`` if given, else stays as it is.
        Closing a closed attempt changes nothing: a late event cannot count twice."""
        outcome = _member(Outcome, outcome, f"attempt {attempt_id}")
        if outcome not in ATTEMPT_OUTCOMES:
            raise OutboundError(f"attempt {attempt_id}: {outcome.value!r} is no attempt outcome")
        if (final is None) == (next_at is None):
            raise OutboundError(f"attempt {attempt_id}: give either final or next_at")
        if final is not None:
            final = _member(Outcome, final, f"attempt {attempt_id}: final")
            if final is Outcome.PENDING:
                raise OutboundError(f"attempt {attempt_id}: 'pending' is no final status")
        at = _epoch(now, "now")
        due = None if next_at is None else _epoch(next_at, "next_at")
        result_text = None if result is None else _json(dict(result), f"attempt {attempt_id}")
        with self._transaction() as db:
            row = db.execute(
                "SELECT a.state, a.contact_id, c.status FROM attempts a "
                "JOIN contacts c ON c.id = a.contact_id WHERE a.id = ?",
                (attempt_id,),
            ).fetchone()
            if row is None:
                raise OutboundError(f"no attempt {attempt_id}")
            state, contact_id, status = row
            if state == "done":
                return
            db.execute(
                "UPDATE attempts SET state = 'done', ended_at = ?, outcome = ?, result = ? "
                "WHERE id = ?",
                (at, outcome.value, result_text, attempt_id),
            )
            if final is not None:
                status, due = final.value, None
            db.execute(
                "UPDATE contacts SET status = ?, next_at = ?, last_outcome = ?, updated_at = ? "
                "WHERE id = ?",
                (status, due, outcome.value, at, contact_id),
            )
            db.execute(_SETTLE, {"now": at})

    def release(self, attempt_id: int, next_at: datetime) -> None:
        """Undo a claim whose call was not placed (the contact's window or its number's
        limits say not now): the attempt is gone, the contact due again at ``next_at``."""
        due = _epoch(next_at, "next_at")
        with self._transaction() as db:
            row = db.execute(
                "SELECT contact_id FROM attempts WHERE id = ? AND state = 'dialling'",
                (attempt_id,),
            ).fetchone()
            if row is None:
                raise OutboundError(f"no attempt {attempt_id} dialling")
            db.execute("DELETE FROM attempts WHERE id = ?", (attempt_id,))
            db.execute(
                "UPDATE contacts SET attempts = attempts - 1, next_at = ? WHERE id = ?",
                (due, row[0]),
            )

    def attempt_times(self, number: str, since: datetime) -> list[datetime]:
        """When each attempt on ``number`` since ``since`` started, in any campaign, oldest
        first (for the per-number limits)."""
        start = _epoch(since, "since")
        with self._transaction(write=False) as db:
            rows = db.execute(
                "SELECT a.started_at FROM attempts a JOIN contacts c ON c.id = a.contact_id "
                "WHERE c.number = ? AND a.started_at >= ? ORDER BY a.started_at",
                (number, start),
            )
            return [_time(started) for (started,) in rows]

    def next_due(self, now: datetime) -> datetime | None:
        """When the next contact of a running campaign falls due (``now`` when one is due
        already), or None when none waits."""
        at = _epoch(now, "now")
        with self._transaction(write=False) as db:
            row = db.execute(
                "SELECT c.next_at FROM contacts c JOIN campaigns k ON k.id = c.campaign_id "
                f"WHERE c.status = ? AND k.state = ? AND NOT {_DIALLING} "
                "ORDER BY c.next_at LIMIT 1",
                (_PENDING, CampaignState.RUNNING.value),
            ).fetchone()
        return None if row is None else _time(max(row[0], at))

    # -- do not call ----------------------------------------------------------------------------

    def add_dnc(self, number: str, reason: str, now: datetime) -> bool:
        """Put ``number`` on the do-not-call list (False if it was there already); its pending
        contacts in every campaign become 'dnc'."""
        return self.load_dnc([number], reason, now) == 1

    def load_dnc(self, numbers: Iterable[str], reason: str, now: datetime) -> int:
        """Put many numbers on the do-not-call list at once: how many were new."""
        at = _epoch(now, "now")
        rows = [(number, reason, at) for number in numbers]
        if any(not number for number, _, _ in rows):
            raise OutboundError("an empty number cannot go on the do-not-call list")
        with self._transaction() as db:
            before = db.total_changes
            db.executemany(
                "INSERT OR IGNORE INTO dnc (number, reason, added_at) VALUES (?, ?, ?)", rows
            )
            added = db.total_changes - before
            if added:
                db.execute(_MARK_DNC, {"now": at})
                db.execute(_SETTLE, {"now": at})
            return added

    def is_dnc(self, number: str) -> bool:
        with self._transaction(write=False) as db:
            row = db.execute("SELECT 1 FROM dnc WHERE number = ?", (number,)).fetchone()
        return row is not None

    # -- export ---------------------------------------------------------------------------------

    def export_rows(self, ref: int | str) -> list[dict[str, Any]]:
        """One row per contact of a campaign, in the contact list's order: EXPORT_KEYS (times
        as ISO-8601 UTC text), then the contact's own columns."""
        with self._transaction(write=False) as db:
            campaign_id = self._campaign_id(db, ref)
            rows = db.execute(
                "SELECT c.number, c.status, c.attempts, c.last_outcome, c.fields, a.started_at, "
                "a.result FROM contacts c "
                "LEFT JOIN attempts a ON a.contact_id = c.id AND a.number = c.attempts "
                "WHERE c.campaign_id = ? ORDER BY c.line, c.id",
                (campaign_id,),
            ).fetchall()
        return [_export_row(row) for row in rows]


def _export_row(row: Sequence[Any]) -> dict[str, Any]:
    number, status, attempts, last_outcome, fields, started_at, result_text = row
    result = None if result_text is None else json.loads(result_text)
    amd = result.get("amd") if isinstance(result, dict) else None
    exported: dict[str, Any] = {
        "number": number,
        "status": status,
        "attempts": attempts,
        "last_outcome": last_outcome,
        "last_attempt_at": None if started_at is None else _time(started_at).isoformat(),
        "amd": amd.get("verdict") if isinstance(amd, dict) else None,
        "result": result,
    }
    own: dict[str, Any] = json.loads(fields)
    taken = set(EXPORT_KEYS) | set(own)
    for key, value in own.items():
        name = key
        if key in EXPORT_KEYS:
            name = f"contact_{key}"
            while name in taken:
                name = f"contact_{name}"
            taken.add(name)
        exported[name] = value
    return exported
