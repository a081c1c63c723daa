"""Durable delivery of call result records: an on-disk outbox, retried with back-off
(docs/operations.md, "Results", says what an operator sees and can count on).

``put(record)`` gives the record its key (a UUID: the ``Idempotency-Key`` of every attempt, in
every run) and commits one row per target to SQLite before it returns, so an accepted record
survives a SIGKILL. One task per target delivers rows oldest first and deletes each once its
target has it; a failure pauses that target for ``backoff_s``. SQLite (WAL, ``synchronous=FULL``,
``locking_mode=EXCLUSIVE``: a second bot on the same outbox would send everything twice) is used
only from the outbox's own thread. The file target fsyncs each batch before deleting its rows,
and a run's first pass reads the file's tail so a batch a crash left is not written twice. The
webhook target retries no connection, timeouts, 408, 425, 429 and 5xx; any other answer parks
the record (refused, never dropped) until the next start. Log lines never show a record's
content: it holds callers' data.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple, ParamSpec, Protocol, TypeVar

import aiohttp
from yarl import URL

from ..call.webhook import WebhookPolicy, origin, webhook_session
from ..config import ResultsConfig
from ..errors import ConfigError

log = logging.getLogger(__name__)

TARGETS = ("file", "webhook")
# One file write (and fsync) at most: also how far back the tail is read after a crash.
BATCH_RECORDS = 100
BATCH_BYTES = 1 << 20
# A delay is cut by up to this share, so bots restarted together do not retry in step.
JITTER_SPREAD = 0.25
RETRY_STATUSES = frozenset({408, 425, 429})
RESPONSE_READ_BYTES = 64 * 1024
# How long a second process waits for the outbox before refusing to start.
LOCK_WAIT_S = 1.0
_LINE_START = b'{"key": "'
_KEY_CHARS = 36  # str(uuid4())

Verdict = Literal["delivered", "retry", "refused"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL,
    target TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    last_error TEXT NOT NULL DEFAULT '',
    refused INTEGER NOT NULL DEFAULT 0,
    UNIQUE (key, target)
);
CREATE INDEX IF NOT EXISTS outbox_by_target ON outbox (target, refused, id);
"""


def backoff_s(attempts: int, initial: float, maximum: float, jitter: float) -> float:
    """Seconds to wait after ``attempts`` failed attempts: ``initial`` doubled for each one
    after the first, at most ``maximum``, cut by ``jitter`` (0..1) times ``JITTER_SPREAD``."""
    if attempts < 1:
        return 0.0
    base = min(maximum, initial * 2.0 ** min(attempts - 1, 60))
    return base * (1.0 - JITTER_SPREAD * min(1.0, max(0.0, jitter)))


def verdict(status: int) -> Verdict:
    """What an HTTP answer means for the record sent."""
    if 200 <= status < 300:
        return "delivered"
    if status in RETRY_STATUSES or status >= 500:
        return "retry"
    return "refused"


@dataclass(frozen=True)
class Pending:
    """One record waiting for one target."""

    id: int
    key: str
    body: str
    attempts: int
    next_attempt_at: float

    @property
    def line(self) -> bytes:
        return self.body.encode() + b"\n"


class Backlog(NamedTuple):
    waiting: int
    refused: int


def file_batch(rows: Sequence[Pending]) -> list[Pending]:
    """The oldest rows written in one go: up to ``BATCH_RECORDS`` and ``BATCH_BYTES``, one row
    at least however big."""
    batch: list[Pending] = []
    size = 0
    for row in rows[:BATCH_RECORDS]:
        size += len(row.line)
        if batch and size > BATCH_BYTES:
            break
        batch.append(row)
    return batch


class ResultsObserver(Protocol):
    """What the outbox reports (``server.metrics.Metrics`` is one)."""

    def result_delivered(self, target: str) -> None: ...

    def result_retried(self, target: str) -> None: ...

    def results_backlog(self, target: str, waiting: int, refused: int) -> None: ...


# -- on the outbox's thread --------------------------------------------------------------------


class _Store:
    """The outbox table. Made, used and closed on the outbox's one thread."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=LOCK_WAIT_S, isolation_level=None)
        try:
            self._db.execute("PRAGMA locking_mode=EXCLUSIVE")
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except BaseException:
            self._db.close()
            raise

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def resume(self, now: float) -> None:
        """A new run: parked records get another chance, waiting ones are due at once."""
        with self._transaction() as db:
            db.execute("UPDATE outbox SET refused = 0, next_attempt_at = ?", (now,))

    def insert(self, key: str, targets: Sequence[str], body: str, now: float) -> None:
        with self._transaction() as db:
            db.executemany(
                "INSERT INTO outbox (key, target, body, created_at, next_attempt_at) "
                "VALUES (?, ?, ?, ?, ?)",
                [(key, target, body, now, now) for target in targets],
            )

    def head(self, target: str, limit: int) -> list[Pending]:
        rows = self._db.execute(
            "SELECT id, key, body, attempts, next_attempt_at FROM outbox "
            "WHERE target = ? AND refused = 0 ORDER BY id LIMIT ?",
            (target, limit),
        )
        return [Pending(*row) for row in rows]

    def delete(self, ids: Sequence[int]) -> None:
        with self._transaction() as db:
            db.executemany("DELETE FROM outbox WHERE id = ?", [(id_,) for id_ in ids])

    def failed(self, row: Pending, next_attempt_at: float, error: str, *, refused: bool) -> None:
        """One more failed attempt at ``row``: due again at ``next_attempt_at``, or parked."""
        with self._transaction() as db:
            db.execute(
                "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, "
                "last_error = ?, refused = ? WHERE id = ?",
                (next_attempt_at, error, int(refused), row.id),
            )

    def backlog(self) -> dict[str, Backlog]:
        counts = {target: Backlog(0, 0) for target in TARGETS}
        for target, waiting, refused in self._db.execute(
            "SELECT target, SUM(refused = 0), SUM(refused) FROM outbox GROUP BY target"
        ):
            counts[target] = Backlog(int(waiting), int(refused))
        return counts

    def close(self) -> None:
        self._db.close()


class _ResultsFile:
    """The JSON-lines file, rotated by size. Used on the outbox's thread."""

    def __init__(self, path: Path, max_bytes: int, keep: int) -> None:
        self.path = path
        self._max_bytes = max_bytes
        self._keep = keep

    def _size(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def written(self, waiting: Sequence[Pending]) -> list[Pending]:
        """Which of the oldest ``waiting`` rows are already the file's last lines (appended
        before a crash, not yet deleted); a last line cut short is cut off."""
        size = self._size()
        if not size:
            return []
        window = min(size, sum(len(row.line) for row in file_batch(waiting)) + 1)
        with self.path.open("r+b") as file:
            file.seek(size - window)
            tail = file.read(window)
            if not tail.endswith(b"\n"):
                self._repair(file, size, window, tail)
        found = {
            line[len(_LINE_START) : len(_LINE_START) + _KEY_CHARS].decode(errors="replace")
            for line in tail.split(b"\n")[:-1]
            if line.startswith(_LINE_START)
        }
        return [row for row in waiting if row.key in found]

    def _repair(self, file: Any, size: int, window: int, tail: bytes) -> None:
        cut = tail.rfind(b"\n")
        if cut >= 0 or window == size:
            file.truncate(size - window + cut + 1)  # cut == -1: the file was one torn line
            log.warning("results: the last line of %s was cut short; removed", self.path)
        else:  # longer than any batch of ours: not our line; end it rather than cut it
            file.write(b"\n")
            log.warning("results: %s did not end with a whole line; ended it", self.path)
        file.flush()
        os.fsync(file.fileno())

    def append(self, batch: Sequence[Pending]) -> int:
        """Append the oldest rows of ``batch`` that fit in the current file (one at least),
        rotating first when the first does not; fsynced. How many were written."""
        size = self._size()
        if size and size + len(batch[0].line) > self._max_bytes:
            self._rotate()
            size = 0
        created = size == 0
        lines: list[bytes] = []
        for row in batch:
            if lines and size + len(row.line) > self._max_bytes:
                break
            lines.append(row.line)
            size += len(row.line)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("ab") as file:
            file.write(b"".join(lines))
            file.flush()
            os.fsync(file.fileno())
        if created:
            _fsync_directory(self.path.parent)
        return len(lines)

    def _rotate(self) -> None:
        for number in range(self._keep, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{number}")
            newer = self.path.with_name(f"{self.path.name}.{number - 1}") if number > 1 else None
            source = newer or self.path
            if source.exists():
                os.replace(source, older)
        _fsync_directory(self.path.parent)


def _fsync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -- the outbox ----------------------------------------------------------------------------------

_P = ParamSpec("_P")
_R = TypeVar("_R")


class NoResults:
    """Results off (tests, tools): every record is let go."""

    def keep(self, record: Mapping[str, Any]) -> None:
        """Nothing to keep it in."""


NO_RESULTS = NoResults()


class ResultsOutbox:
    """Receives call result records and delivers each to every ``[results]`` target once.

    ``__init__`` does no I/O (a webhook host the allow-list refuses is a ConfigError here);
    ``start()`` opens the outbox and resumes what an earlier run left; ``put()`` stores a
    record; ``close()`` stops delivery (what waits is delivered by the next run).
    """

    def __init__(
        self,
        config: ResultsConfig,
        policy: WebhookPolicy,
        *,
        observer: ResultsObserver | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._policy = policy
        self._observer = observer
        self._random = rng or random.Random()
        self._clock = clock
        self.targets = config.targets()
        self._url: URL | None = None
        if config.webhook:
            try:
                self._url = URL(config.webhook)
            except (ValueError, TypeError):
                raise ConfigError("results.webhook: not a valid url") from None
            refusal = policy.refusal(self._url)
            if refusal is not None:
                raise ConfigError(f"results.webhook: {refusal}")
        self._file = _ResultsFile(Path(config.file), config.file_max_bytes, config.file_keep)
        self._file_unsure = True  # lines may have been appended and not yet deleted
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="results-outbox")
        self._store: _Store | None = None
        self._session: aiohttp.ClientSession | None = None
        self._wake = {target: asyncio.Event() for target in self.targets}
        self._tasks: list[asyncio.Task[None]] = []
        self._keeping: set[asyncio.Task[None]] = set()  # keep()'s puts still running
        self._state: Literal["new", "started", "closed"] = "new"

    async def _call(self, function: Callable[_P, _R], *args: _P.args, **kw: _P.kwargs) -> _R:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: function(*args, **kw))

    async def start(self) -> None:
        """Open the outbox (ConfigError naming ``results.outbox`` when it cannot be, e.g. held
        by another process) and start delivering, what an earlier run left first."""
        if self._state != "new":
            raise RuntimeError("the results outbox was started already")
        self._state = "started"
        path = Path(self._config.outbox)
        if not self.targets and not await self._call(path.exists):
            return  # nothing to deliver, now or from before: no file to create
        try:
            self._store = await self._call(_Store, path)
            await self._call(self._store.resume, self._clock())
            backlog = await self._call(self._store.backlog)
        except (sqlite3.Error, OSError) as exc:
            await self.close()
            held = "locked" in str(exc)
            hint = " (another voicebot process holds it: give each its own)" if held else ""
            raise ConfigError(f"results.outbox: cannot open {path}: {exc}{hint}") from None
        for target, counts in backlog.items():
            if counts.waiting and target not in self.targets:
                log.warning(
                    "results: %d records wait for the %s target, which is not configured; "
                    "kept until it is", counts.waiting, target,
                )  # fmt: skip
        if self._url is not None:
            self._session = webhook_session(self._policy)
        self._tasks = [
            asyncio.create_task(self._deliver(target), name=f"results-{target}")
            for target in self.targets
        ]
        await self._report()

    async def put(self, record: Mapping[str, Any]) -> str:
        """Store ``record`` for every target; its key once it is on disk. ValueError/TypeError
        when it is not JSON (or has a ``"key"`` of its own), before anything is stored."""
        if self._state != "started":
            raise RuntimeError(f"the results outbox is {self._state}, not started")
        if "key" in record:
            raise ValueError('a result record may not have a "key": the outbox gives it one')
        key = str(uuid.uuid4())
        body = json.dumps({"key": key, **record}, ensure_ascii=False, allow_nan=False)
        if self._store is not None and self.targets:
            try:
                await self._call(self._store.insert, key, self.targets, body, self._clock())
            finally:  # a put cancelled while its insert runs still stores the record
                for wake in self._wake.values():
                    wake.set()
        return key

    def keep(self, record: Mapping[str, Any]) -> None:
        """``put`` without waiting, for a caller that must not (a call's end): the outbox owns
        the task and ``close`` waits for it; a record it cannot store is logged, by call id."""
        if self._state != "started" or not self.targets:
            return

        async def store() -> None:
            try:
                await self.put(record)
            except (ValueError, TypeError, RuntimeError, sqlite3.Error) as exc:
                log.error("results: the record of call %s could not be kept: %s",
                          record.get("call_id"), exc)  # fmt: skip

        task = asyncio.create_task(store(), name=f"result-{record.get('call_id')}")
        self._keeping.add(task)
        task.add_done_callback(self._keeping.discard)

    async def backlog(self) -> dict[str, Backlog]:
        """Records waiting and refused, by target."""
        if self._store is None or self._state == "closed":
            return {target: Backlog(0, 0) for target in TARGETS}
        return await self._call(self._store.backlog)

    async def close(self) -> None:
        """Stop delivering and close the outbox; idempotent. Call it after the last put()."""
        if self._state == "closed":
            return
        await asyncio.gather(*self._keeping, return_exceptions=True)  # on disk before we go
        self._state = "closed"
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
        # A pass cancelled between its delete and its report left the gauges a step behind.
        await self._report()
        if self._store is not None:
            with contextlib.suppress(sqlite3.Error):
                await self._call(self._store.close)  # after any write still running
        self._executor.shutdown(wait=False)

    # -- delivery ----------------------------------------------------------------------------

    async def _deliver(self, target: str) -> None:
        wake = self._wake[target]
        troubles = 0
        while True:
            wake.clear()
            try:
                delay = await self._pass(target)
                troubles = 0
            except Exception as exc:  # a full or broken disk, a bug: delivery must go on
                troubles += 1
                delay = self._backoff(troubles)
                if target == "file":
                    self._file_unsure = True
                log.error(
                    "results: %s delivery stopped by %s: %s; trying again in %.1f s",
                    target, type(exc).__name__, exc, delay,
                )  # fmt: skip
            await self._report()
            if delay is None:
                await wake.wait()
            elif delay > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await wake.wait()

    async def _pass(self, target: str) -> float | None:
        """Deliver what is due; None when nothing waits, else seconds until more is due."""
        assert self._store is not None
        rows = await self._call(self._store.head, target, BATCH_RECORDS)
        if not rows:
            return None
        wait = rows[0].next_attempt_at - self._clock()
        if 0 < wait <= self._config.retry_max_s:  # further off: the clock was set back
            return wait
        if target == "file":
            await self._pass_file(rows)
        else:
            await self._pass_webhook(rows)
        return 0.0

    async def _pass_file(self, rows: list[Pending]) -> None:
        assert self._store is not None
        try:
            if self._file_unsure:  # lines of the oldest rows may be there already
                written = await self._call(self._file.written, rows)
                await self._call(self._store.delete, [row.id for row in written])
                if written:
                    log.info(
                        "results: %d records were in %s already (a crash before they were "
                        "confirmed); not written again", len(written), self._file.path,
                    )  # fmt: skip
                self._file_unsure = False
                return
            batch = file_batch(rows)
            self._file_unsure = True  # from the write until the delete
            count = await self._call(self._file.append, batch)
        except OSError as exc:
            await self._failed("file", rows[0], str(exc))
            return
        await self._call(self._store.delete, [row.id for row in batch[:count]])
        self._file_unsure = False
        if self._observer is not None:
            for _ in range(count):
                self._observer.result_delivered("file")

    async def _pass_webhook(self, rows: list[Pending]) -> None:
        assert self._store is not None
        for row in rows:
            outcome, reason = await self._post(row)
            if outcome == "delivered":
                await self._call(self._store.delete, [row.id])
                if self._observer is not None:
                    self._observer.result_delivered("webhook")
            elif outcome == "refused":
                await self._call(self._store.failed, row, 0.0, reason, refused=True)
                log.error(
                    "results: webhook refused record %s (%s); kept in %s, sent again at the "
                    "next start",
                    row.key, reason, self._config.outbox,
                )  # fmt: skip
            else:
                await self._failed("webhook", row, reason)
                return  # the oldest goes first or nothing does

    async def _post(self, row: Pending) -> tuple[Verdict, str]:
        """One POST of ``row``: its verdict and, unless delivered, why."""
        assert self._session is not None and self._url is not None
        where = origin(self._url)
        timeout_s = self._config.webhook_timeout_s
        timeout = aiohttp.ClientTimeout(
            total=timeout_s, sock_connect=self._policy.connect_timeout_s
        )
        headers = {"Idempotency-Key": row.key, "Content-Type": "application/json"}
        try:
            async with asyncio.timeout(timeout_s):
                async with self._session.post(
                    self._url,
                    data=row.body.encode(),
                    headers=headers,
                    allow_redirects=False,
                    timeout=timeout,
                ) as response:
                    await _discard(
                        response, min(RESPONSE_READ_BYTES, self._policy.max_response_bytes)
                    )
                    status = response.status
        except aiohttp.ConnectionTimeoutError:
            where_s = self._policy.connect_timeout_s
            return "retry", f"could not connect to {where} within {where_s:g} s"
        except TimeoutError:
            return "retry", f"no answer from {where} within {timeout_s:g} s"
        except aiohttp.ClientConnectorError as exc:
            return "retry", f"cannot connect to {where}: {exc.strerror or exc.os_error}"
        except aiohttp.ClientError as exc:
            # Not str(exc): some aiohttp errors quote the whole url, a token included.
            return "retry", f"request to {where} failed: {type(exc).__name__}"
        outcome = verdict(status)
        return outcome, f"HTTP {status} from {where}"

    async def _failed(self, target: str, row: Pending, reason: str) -> None:
        assert self._store is not None
        attempts = row.attempts + 1
        delay = self._backoff(attempts)
        await self._call(self._store.failed, row, self._clock() + delay, reason, refused=False)
        if self._observer is not None:
            self._observer.result_retried(target)
        log.warning(
            "results: %s delivery of record %s failed (attempt %d): %s; next attempt in %.1f s",
            target, row.key, attempts, reason, delay,
        )  # fmt: skip

    def _backoff(self, attempts: int) -> float:
        return backoff_s(
            attempts, self._config.retry_initial_s, self._config.retry_max_s, self._random.random()
        )

    async def _report(self) -> None:
        if self._observer is None or self._store is None:
            return
        with contextlib.suppress(sqlite3.Error):
            for target, counts in (await self._call(self._store.backlog)).items():
                self._observer.results_backlog(target, counts.waiting, counts.refused)


async def _discard(response: aiohttp.ClientResponse, limit: int) -> None:
    """Read and drop the answer (so the connection can serve the next record), at most
    ``limit`` bytes: past that the connection is closed instead."""
    read = 0
    async for chunk in response.content.iter_chunked(RESPONSE_READ_BYTES):
        read += len(chunk)
        if read > limit:
            return
