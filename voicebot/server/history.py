"""The console's call history: every finished call kept in SQLite for the history pages and
the scripts' per-state counts (docs/console.md).

``keep(summary, record)`` takes what the controller has when a call ends (``ActiveCall.summary()``
and its result record) and returns at once; the write, and dropping the oldest calls beyond
``max_calls``, happen on the history's own thread, which is the only one to touch the database
(WAL). The file holds callers' numbers and words: it is created 0600 in a 0700 directory, lines
a caller said or keyed where a ``private`` slot was collected are stored masked, and log lines
name calls by id only.

Per-state counts (``count_states``) are worked out once per call, when it is kept, and summed
by SQL when asked for; ``COUNT_RULE`` numbers the rule, and a database counted by another rule
is counted again when opened.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from ..call.results import MASK
from ..errors import ConfigError, VoicebotError
from ..logtext import is_key

log = logging.getLogger(__name__)

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_OFFSET = 1 << 62  # within SQLite's integers
# Bumped whenever count_states counts differently: stored counts are then counted again.
COUNT_RULE = 2
CALLER_HANGUP_OUTCOME = "caller_hangup"  # server.leg.CallResult.CALLER_HANGUP
CALLER_HANGUP_REASON = "caller hangup"  # server.leg.EndReason.CALLER_HANGUP
LOCK_WAIT_S = 1.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    seq INTEGER PRIMARY KEY,
    call_id TEXT NOT NULL,
    started REAL NOT NULL,
    duration_s REAL NOT NULL,
    script TEXT NOT NULL,
    outcome TEXT NOT NULL,
    end_reason TEXT NOT NULL,
    caller TEXT NOT NULL,
    turns INTEGER NOT NULL,
    recording TEXT,
    latencies TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS calls_by_started ON calls (started, seq);
CREATE INDEX IF NOT EXISTS calls_by_id ON calls (call_id);
CREATE TABLE IF NOT EXISTS states (
    seq INTEGER NOT NULL REFERENCES calls (seq) ON DELETE CASCADE,
    script TEXT NOT NULL,
    started REAL NOT NULL,
    state TEXT NOT NULL,
    entered INTEGER NOT NULL,
    no_match INTEGER NOT NULL,
    no_input INTEGER NOT NULL,
    hangups INTEGER NOT NULL,
    PRIMARY KEY (seq, state)
);
CREATE INDEX IF NOT EXISTS states_by_script ON states (script, started);
"""
_ROW_COLUMNS = "call_id, started, duration_s, script, outcome, end_reason, caller, turns, recording"

_P = ParamSpec("_P")
_R = TypeVar("_R")


class HistoryQueryError(VoicebotError):
    """A history search parameter has a value that cannot be used; the message names both."""


# -- queries ------------------------------------------------------------------------------------


def parse_time(name: str, value: str, *, end_of_day: bool = False) -> float:
    """Epoch seconds from ``value``: epoch seconds, or an ISO 8601 date or date/time (UTC unless
    it says otherwise). A bare date is its midnight, or the next one with ``end_of_day`` (so
    ``until=2024-05-01`` takes in that whole day)."""
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds):
            raise HistoryQueryError(f"{name}: {value!r} is not a time")
        return seconds
    try:
        if len(text) == 10:  # YYYY-MM-DD
            day = date.fromisoformat(text) + timedelta(days=1 if end_of_day else 0)
            return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise HistoryQueryError(
            f"{name}: {value!r} is neither epoch seconds nor an ISO 8601 date or date/time"
        ) from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _count(name: str, value: str, least: int, most: int) -> int:
    try:
        number = int(value.strip())
    except ValueError:
        raise HistoryQueryError(f"{name}: {value!r} is not a whole number") from None
    if not least <= number <= most:
        raise HistoryQueryError(f"{name}: {number} must be from {least} to {most}")
    return number


@dataclass(frozen=True)
class HistoryQuery:
    """Which calls to list: started in ``[since, until)`` (epoch seconds), of ``script`` and
    ``outcome`` exactly, ``caller`` within the caller's number; newest first, a page of
    ``limit`` after ``offset``."""

    since: float | None = None
    until: float | None = None
    script: str | None = None
    outcome: str | None = None
    caller: str | None = None
    limit: int = DEFAULT_LIMIT
    offset: int = 0

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> HistoryQuery:
        """From a query string; empty values (a form's blank fields) and other names are
        ignored. HistoryQueryError names the parameter and the value it cannot use."""
        given = {name: value for name, value in params.items() if value.strip()}

        def text(name: str) -> str | None:
            return given[name].strip() if name in given else None

        def number(name: str, least: int, most: int, default: int) -> int:
            return _count(name, given[name], least, most) if name in given else default

        since, until = given.get("since"), given.get("until")
        return cls(
            since=parse_time("since", since) if since else None,
            until=parse_time("until", until, end_of_day=True) if until else None,
            script=text("script"),
            outcome=text("outcome"),
            caller=text("caller"),
            limit=number("limit", 1, MAX_LIMIT, DEFAULT_LIMIT),
            offset=number("offset", 0, MAX_OFFSET, 0),
        )


def where_clause(query: HistoryQuery) -> tuple[str, tuple[Any, ...]]:
    """The SQL condition on ``calls`` for ``query`` ("" when it takes every call) and its
    parameters."""
    conditions: list[str] = []
    values: list[Any] = []
    for condition, value in (
        ("started >= ?", query.since),
        ("started < ?", query.until),
        ("script = ?", query.script),
        ("outcome = ?", query.outcome),
        ("instr(caller, ?) > 0", query.caller),  # not LIKE: no wildcard in a number to escape
    ):
        if value is not None:
            conditions.append(condition)
            values.append(value)
    return ("WHERE " + " AND ".join(conditions) if conditions else ""), tuple(values)


@dataclass(frozen=True)
class HistoryRow:
    call_id: str
    started: float
    duration_s: float
    script: str
    outcome: str
    end_reason: str
    caller: str
    turns: int
    has_recording: bool


@dataclass(frozen=True)
class HistoryPage:
    rows: list[HistoryRow]
    total: int  # calls the query matched, on every page

    def as_dict(self) -> dict[str, Any]:
        return {"rows": [asdict(row) for row in self.rows], "total": self.total}


# -- per-state counts -----------------------------------------------------------------------------


@dataclass
class StateCounts:
    """One state over many calls: calls that entered it, the caller's answers it did not
    understand, the silences it re-asked after, and calls the caller hung up in it."""

    entered: int = 0
    no_match: int = 0
    no_input: int = 0
    hangups: int = 0


def count_states(
    path: Sequence[str],
    transcript: Sequence[Mapping[str, Any]],
    outcome: str,
    end_reason: str,
    events: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, StateCounts]:
    """What one call adds to each state's counts. A summary's ``events`` (call.session
    CallStats) name each no-input and its state; without them (older records) no-inputs are
    inferred as below. The transcript marks a no-match only by a caller line without an
    intent, so:

    - entered: 1 for each state in ``path``;
    - no_match: a caller line without an intent that the bot answers next in the same state
      (an apology, a re-prompt). Digits keyed one by one have no intent either, but the next
      line is another key, or the next state's prompt once the entry is complete;
    - no_input: the bot re-asking without the caller in between: in each run of bot lines of
      one state, with no caller line among them, the most times a line comes again;
    - hangups: 1 for the last state of ``path`` when the caller hung up.

    Missed: a no-match or no-input whose reaction goes to another state (``on_max_retries``
    with ``goto``) or says nothing. Miscounted as no-input: a webhook state that retries
    itself on error."""
    counts: dict[str, StateCounts] = {}

    def of(state: Any) -> StateCounts:
        return counts.setdefault(str(state), StateCounts())

    for state in dict.fromkeys(path):
        of(state).entered += 1
    for line, after in pairwise(transcript):
        if line.get("who") == "caller" and not line.get("intent") and after.get("who") == "bot":
            if after.get("state") == line.get("state"):
                of(line.get("state")).no_match += 1
    if events is not None:
        for event in events:
            if event.get("kind") == "no-input":
                of(event.get("state")).no_input += 1
    else:
        for state, texts in _bot_runs(transcript):
            repeats = max(Counter(texts).values()) - 1
            if repeats:
                of(state).no_input += repeats
    hung_up = outcome == CALLER_HANGUP_OUTCOME or end_reason.startswith(CALLER_HANGUP_REASON)
    if path and hung_up:
        of(path[-1]).hangups += 1
    return counts


def _bot_runs(transcript: Iterable[Mapping[str, Any]]) -> list[tuple[Any, list[str]]]:
    """The texts of each run of consecutive bot lines in one state."""
    runs: list[tuple[Any, list[str]]] = []
    current: tuple[Any, list[str]] | None = None
    for line in transcript:
        if line.get("who") != "bot":
            current = None
        elif current is not None and current[0] == line.get("state"):
            current[1].append(str(line.get("text", "")))
        else:
            current = (line.get("state"), [str(line.get("text", ""))])
            runs.append(current)
    return runs


def mask_private(
    transcript: Sequence[Mapping[str, Any]],
    turns: Sequence[Mapping[str, Any]],
    record: Mapping[str, Any],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The transcript and turns with what the caller said or keyed masked in the states the
    record shows collected a private slot (the slot masked, or the keys pressed there); the
    turns' texts of those lines too. A private state never answered is not known here."""
    hidden = {name for name, value in (record.get("slots") or {}).items() if value == MASK}
    keys = iter(record.get("keys") or ())
    private: set[Any] = set()
    for line in transcript:
        text = str(line.get("text", ""))
        if line.get("who") != "caller":
            continue
        # The record's keys are the transcript's key lines in order ("#" alone, when
        # record.keys = false hid which key, is neither).
        if is_key(text) and next(keys, None) == MASK:
            private.add(line.get("state"))
        elif line.get("intent") in hidden:
            private.add(line.get("state"))
    said = {
        str(line.get("text"))
        for line in transcript
        if line.get("who") == "caller" and line.get("state") in private
    }
    masked = [
        {**line, "text": MASK} if line.get("who") == "caller" and line.get("state") in private
        else dict(line)
        for line in transcript
    ]  # fmt: skip
    return masked, [{**t, "text": MASK} if t.get("text") in said else dict(t) for t in turns]


# -- the store, on its own thread ------------------------------------------------------------------


def _started(summary: Mapping[str, Any], record: Mapping[str, Any]) -> float:
    if isinstance(summary.get("started"), int | float):
        return float(summary["started"])
    return datetime.fromisoformat(str(record["started"])).timestamp()


def _is_ms(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


@dataclass(frozen=True)
class _Kept:
    """One call as it is stored: its columns, its body (JSON) and its per-state counts."""

    call_id: str
    started: float
    duration_s: float
    script: str
    outcome: str
    end_reason: str
    caller: str
    turns: int
    recording: str | None
    latencies: str  # JSON: each turn's voice-to-voice ms
    body: str
    counts: dict[str, StateCounts] = field(repr=False)

    @classmethod
    def of(cls, summary: Mapping[str, Any], record: Mapping[str, Any]) -> _Kept:
        transcript, turns = mask_private(
            summary.get("transcript") or (), summary.get("turns") or record.get("turns") or (),
            record,
        )  # fmt: skip
        recording = summary.get("recording") or record.get("recording")
        record = {**record, "turns": [*turns]} if record.get("turns") else record
        body = {
            **summary,  # what a later summary adds (the timeline reads it) is kept too
            "record": record,
            "transcript": transcript,
            "turns": turns,
            "recording": recording,
            "rtp": summary.get("rtp") or {},
            "pacer": summary.get("pacer") or {},
        }
        outcome, end_reason = str(record.get("outcome", "")), str(record.get("end_reason", ""))
        return cls(
            call_id=str(record.get("call_id") or summary.get("call_id")),
            started=_started(summary, record),
            duration_s=float(record.get("duration_s") or 0.0),
            script=str(record.get("script") or summary.get("script") or ""),
            outcome=outcome,
            end_reason=end_reason,
            caller=str(record.get("caller_id") or summary.get("caller") or ""),
            turns=len(turns),
            latencies=json.dumps([t["total_ms"] for t in turns if _is_ms(t.get("total_ms"))]),
            recording=str(recording) if recording else None,
            body=json.dumps(body, ensure_ascii=False, allow_nan=False),
            counts=count_states(
                record.get("path") or (), transcript, outcome, end_reason, summary.get("events")
            ),
        )


def _row(
    call_id: str, started: float, duration_s: float, script: str, outcome: str,
    end_reason: str, caller: str, turns: int, recording: str | None,
) -> HistoryRow:  # fmt: skip
    return HistoryRow(call_id, started, duration_s, script, outcome, end_reason, caller, turns,
                      has_recording=recording is not None)  # fmt: skip


class _Store:
    """The history's tables. Made, used and closed on the history's one thread."""

    def __init__(self, path: Path, max_calls: int) -> None:
        self.max_calls = max_calls
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        os.chmod(path, 0o600)  # one made before, by hand or an older version
        self._db = sqlite3.connect(path, timeout=LOCK_WAIT_S, isolation_level=None)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(_SCHEMA)
            if self._db.execute("PRAGMA user_version").fetchone()[0] != COUNT_RULE:
                self._count_again()
        except BaseException:
            self._db.close()
            raise

    def _count_again(self) -> None:
        calls = self._db.execute("SELECT seq, script, started, body FROM calls").fetchall()
        self._db.execute("BEGIN IMMEDIATE")
        self._db.execute("DELETE FROM states")
        for seq, script, started, body in calls:
            stored = json.loads(body)
            record = stored["record"]
            outcome, end_reason = record.get("outcome", ""), record.get("end_reason", "")
            counts = count_states(record.get("path") or (), stored["transcript"], outcome,
                                  end_reason, stored.get("events"))  # fmt: skip
            self._insert_counts(seq, script, started, counts)
        self._db.execute(f"PRAGMA user_version = {COUNT_RULE}")
        self._db.execute("COMMIT")

    def _insert_counts(
        self, seq: int, script: str, started: float, counts: Mapping[str, StateCounts]
    ) -> None:
        self._db.executemany(
            "INSERT INTO states VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(seq, script, started, state, c.entered, c.no_match, c.no_input, c.hangups)
             for state, c in counts.items()],
        )  # fmt: skip

    def insert(self, kept: _Kept) -> int:
        """Store ``kept``, drop the oldest calls beyond ``max_calls``; the calls stored."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            cursor = self._db.execute(
                f"INSERT INTO calls ({_ROW_COLUMNS}, latencies, body) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (kept.call_id, kept.started, kept.duration_s, kept.script, kept.outcome,
                 kept.end_reason, kept.caller, kept.turns, kept.recording, kept.latencies,
                 kept.body),
            )  # fmt: skip
            assert cursor.lastrowid is not None
            self._insert_counts(cursor.lastrowid, kept.script, kept.started, kept.counts)
            self._db.execute(
                "DELETE FROM calls WHERE seq IN (SELECT seq FROM calls "
                "ORDER BY started DESC, seq DESC LIMIT -1 OFFSET ?)",
                (self.max_calls,),
            )
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        return self.stored()

    def stored(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM calls").fetchone()[0])

    def search(self, query: HistoryQuery) -> HistoryPage:
        where, values = where_clause(query)
        total = self._db.execute(f"SELECT count(*) FROM calls {where}", values).fetchone()[0]
        rows = self._db.execute(
            f"SELECT {_ROW_COLUMNS} FROM calls {where} "
            "ORDER BY started DESC, seq DESC LIMIT ? OFFSET ?",
            (*values, query.limit, query.offset),
        )
        return HistoryPage([_row(*row) for row in rows], int(total))

    def call(self, call_id: str) -> dict[str, Any] | None:
        found = self._db.execute(
            "SELECT call_id, started, body FROM calls WHERE call_id = ? ORDER BY seq DESC LIMIT 1",
            (call_id,),
        ).fetchone()
        if found is None:
            return None
        return {**json.loads(found[2]), "call_id": found[0], "started": found[1]}

    def state_counts(self, script: str, since: float | None) -> dict[str, StateCounts]:
        rows = self._db.execute(
            "SELECT state, sum(entered), sum(no_match), sum(no_input), sum(hangups) FROM states "
            "WHERE script = ? AND started >= ? GROUP BY state ORDER BY state",
            (script, -math.inf if since is None else since),
        )
        return {state: StateCounts(*map(int, sums)) for state, *sums in rows}

    def turn_latencies(self, since: float) -> list[float]:
        rows = self._db.execute("SELECT latencies FROM calls WHERE started >= ?", (since,))
        return [float(ms) for (latencies,) in rows for ms in json.loads(latencies)]

    def close(self) -> None:
        self._db.close()


# -- the async face -------------------------------------------------------------------------------


class CallHistory:
    """Finished calls for the console; ``open`` it, ``keep`` each call, ``close`` it once."""

    def __init__(
        self, path: Path, store: _Store, executor: ThreadPoolExecutor, stored: int
    ) -> None:
        self.path = path
        self._store = store
        self._executor = executor
        self._stored = stored
        self._queued: set[Future[int]] = set()
        self._closed = False

    @classmethod
    async def open(cls, path: str | Path, max_calls: int) -> CallHistory:
        """Open (or create) the history at ``path``; ConfigError naming ``console.history``
        when it cannot be."""
        where = Path(path)
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="call-history")
        loop = asyncio.get_running_loop()
        try:
            store = await loop.run_in_executor(executor, _Store, where, max_calls)
            stored = await loop.run_in_executor(executor, store.stored)
        except (sqlite3.Error, OSError) as exc:
            executor.shutdown(wait=False)
            raise ConfigError(f"console.history: cannot open {where}: {exc}") from None
        return cls(where, store, executor, stored)

    async def _call(self, function: Callable[_P, _R], *args: _P.args, **kw: _P.kwargs) -> _R:
        if self._closed:
            raise RuntimeError("the call history is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: function(*args, **kw))

    def keep(self, summary: Mapping[str, Any], record: Mapping[str, Any]) -> None:
        """Store a finished call (``summary`` may be empty: a caller refused) without
        waiting; a call that cannot be stored is logged by id, never raised."""
        call_id = record.get("call_id") or summary.get("call_id")
        if self._closed:
            log.warning("history: call %s ended after the history closed; not kept", call_id)
            return
        try:  # encoded now: the dicts are the controller's, which may change them later
            kept = _Kept.of(summary, record)
            future = self._executor.submit(self._store.insert, kept)
        except Exception as exc:  # a record of an unexpected shape: the call still ends well
            log.warning("history: call %s not kept: %s", call_id, type(exc).__name__)
            return
        self._queued.add(future)
        future.add_done_callback(lambda done: self._written(done, call_id))

    def _written(self, done: Future[int], call_id: object) -> None:
        self._queued.discard(done)
        error = done.exception()
        if error is None:
            self._stored = done.result()
        else:  # SQLite's messages name tables and files, never values
            log.warning("history: call %s not kept: %s: %s", call_id, type(error).__name__, error)

    async def search(self, query: HistoryQuery) -> HistoryPage:
        """The calls ``query`` matches, newest first, and how many it matches in all."""
        return await self._call(self._store.search, query)

    async def call(self, call_id: str) -> dict[str, Any] | None:
        """The stored call (the newest, should two share an id): ``call_id``, ``started``
        (epoch s), ``record``, ``transcript``, ``turns``, ``recording`` (pcap path or None),
        ``rtp``, ``pacer`` and the summary's other fields (``caller`` in full among them);
        None when it is not (or no longer) kept."""
        return await self._call(self._store.call, call_id)

    async def state_counts(self, script: str, since: float | None = None) -> dict[str, StateCounts]:
        """Each state's counts (``count_states``) summed over the calls of ``script`` started
        at ``since`` or later."""
        return await self._call(self._store.state_counts, script, since)

    async def turn_latencies(self, since: float) -> list[float]:
        """Voice-to-voice latency (ms, caller's voice end to the answer's first packet) of
        every answered turn of the calls started at ``since`` or later."""
        return await self._call(self._store.turn_latencies, since)

    def status(self) -> dict[str, Any]:
        """For /health: calls stored, and calls waiting to be written."""
        return {"calls": self._stored, "queued": len(self._queued)}

    async def close(self) -> None:
        """Close once every call kept so far is stored; idempotent."""
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._store.close)  # after queued writes
        self._executor.shutdown(wait=False)
