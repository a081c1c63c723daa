"""The dialler: places the calls of running campaigns through ARI and records how each ended.

A thin task around pure policy (``campaigns``) and the store. Every call it places is claimed
in the store first (an attempt marked as dialling), so a crash never calls anyone twice for
one attempt: on start, attempts left dialling are closed as ``failed`` (interrupted) and
retried by the campaign's rules. The store is used from one worker thread; the event loop
never waits on SQLite.

The calls themselves are the controller's: an answered call enters Stasis like an inbound
one (the controller asks ``attempt_for`` its channel), and the controller reports its end
(``call_ended``). A call that is never answered only ends (``channel_ended``, with its
hangup cause).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from ..ari.client import AriClient
from ..config import OutboundConfig
from ..errors import AriError, OutboundError
from ..logtext import caller_text
from .campaigns import Policy, after_attempt, plan_next
from .contacts import normalise_number
from .model import CampaignState, Outcome
from .store import CampaignInfo, CampaignStore, Claim

log = logging.getLogger(__name__)

# Outbound channels are named so that their events are known for ours at a glance.
CHANNEL_PREFIX = "vb-out-"
# The longest the loop sleeps: campaigns changed by the CLI (another process) are seen then.
POLL_S = 2.0
WEEK = timedelta(days=7)

# Q.850 causes of a call that was never answered.
_BUSY_CAUSES = frozenset({17})  # user busy
_NO_ANSWER_CAUSES = frozenset({16, 18, 19, 21})  # no reply, rejected, or the ring timed out

T = TypeVar("T")


# Dial statuses that say how an unanswered call ended (a Local channel's own hangup cause is
# 0 then: the callee's cause is on its other half).
_DIAL_STATUS_OUTCOMES = {
    "BUSY": Outcome.BUSY,
    "NOANSWER": Outcome.NO_ANSWER,
    "CONGESTION": Outcome.FAILED,
    "CHANUNAVAIL": Outcome.FAILED,
}


def outcome_of_cause(cause: int | None, dial_status: str = "") -> Outcome:
    """How an attempt that was never answered ended, from its last dial status (when it
    says) or its hangup cause."""
    if dial_status in _DIAL_STATUS_OUTCOMES:
        return _DIAL_STATUS_OUTCOMES[dial_status]
    if cause in _BUSY_CAUSES:
        return Outcome.BUSY
    if cause in _NO_ANSWER_CAUSES:
        return Outcome.NO_ANSWER
    return Outcome.FAILED


def outcome_of_call(verdict: str | None, end_reason: str, message_played: bool) -> Outcome:
    """How an answered attempt ended: ``verdict`` is the answering-machine detector's (None
    when the call ended before it decided), ``end_reason`` the call's (leg.EndReason)."""
    if verdict == "machine":
        return Outcome.MESSAGE_LEFT if message_played else Outcome.MACHINE
    if verdict is None and end_reason in ("error", "internal error"):
        return Outcome.FAILED
    return Outcome.ANSWERED


def dial_string(endpoint: str, number: str) -> str:
    """The endpoint with the contact's number in its placeholder; the number is checked
    again (it was at import) so nothing but "+" and digits can ever reach Asterisk."""
    return endpoint.replace("{number}", normalise_number(number))


@dataclass
class Attempt:
    """One call placed and not yet ended."""

    claim: Claim
    channel_id: str
    placed_at: float = field(default_factory=time.monotonic)
    answered: bool = False
    dial_status: str = ""
    # The greeting being synthesized while the phone rings (the session waits for it).
    prepared: asyncio.Task[None] | None = None

    @property
    def variables(self) -> dict[str, str]:
        """What the script may template: ``contact.NAME`` for each column of the contact."""
        contact = self.claim.contact
        values = {f"contact.{name}": value for name, value in contact.fields.items()}
        values["contact.number"] = contact.number
        return values


class Dialler:
    def __init__(
        self,
        config: OutboundConfig,
        store_path: Path,
        ari: AriClient,
        app: str,
        room: Callable[[], int],
        *,
        on_outcome: Callable[[str], None] | None = None,
        keep_record: Callable[[dict[str, Any]], None] | None = None,
        prepare: Callable[[Attempt], Awaitable[None]] | None = None,
    ) -> None:
        self.config = config
        self.store_path = store_path
        self.ari = ari
        self.app = app
        self._room = room
        self._on_outcome = on_outcome or (lambda outcome: None)
        self._keep_record = keep_record or (lambda record: None)
        self._prepare = prepare
        self.store: CampaignStore | None = None
        self.active: dict[str, Attempt] = {}
        # One thread: SQLite calls run one at a time, in order, off the event loop.
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="campaign-store")
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._last_placed = 0.0

    # -- life -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the store, close what a crash left dialling, load the do-not-call file and
        start the loop."""
        self.store = await self._run(CampaignStore, self.store_path)
        now = _now()
        for claim in await self._store(CampaignStore.interrupted, now):
            log.warning("campaign %s: attempt %d was dialling when the bot stopped: failed",
                        claim.campaign_name, claim.attempt_id)  # fmt: skip
            await self._finish(claim, Outcome.FAILED, {"reason": "interrupted"})
        if self.config.dnc_file:
            numbers = await self._run(read_dnc_file, Path(self.config.dnc_file))
            added = await self._store(CampaignStore.load_dnc, numbers, "dnc_file", now)
            log.info("do-not-call list: %d numbers from %s (%d new)", len(numbers),
                     self.config.dnc_file, added)  # fmt: skip
        self._task = asyncio.create_task(self._loop(), name="dialler")

    async def close(self) -> None:
        """Stop placing calls. Calls in progress are the controller's to end; their attempts
        are recorded as they end, or closed as interrupted on the next start."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        for attempt in self.active.values():
            if attempt.prepared is not None:
                attempt.prepared.cancel()  # a speed-up only: not worth waiting for at the end
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.store is not None:
            store, self.store = self.store, None
            await self._run(store.close)
        self._executor.shutdown(wait=True)

    def wake(self) -> None:
        """Look for due contacts now (a campaign was started or resumed)."""
        self._wake.set()

    # -- the controller's side ------------------------------------------------------------

    def attempt_for(self, channel_id: str) -> Attempt | None:
        """The attempt whose call this channel is (it entered Stasis: answered)."""
        attempt = self.active.get(channel_id)
        if attempt is not None:
            attempt.answered = True
        return attempt

    def dial_status(self, channel_id: str, status: str) -> None:
        """How the dialling of an attempt's call goes (ARI Dial events)."""
        attempt = self.active.get(channel_id)
        if attempt is not None and status:
            attempt.dial_status = status

    def channel_ended(self, channel_id: str, cause: int | None) -> bool:
        """A channel is gone. True if it was an attempt's call that was never answered (then
        its outcome comes from the cause); an answered one ends through ``call_ended``."""
        attempt = self.active.get(channel_id)
        if attempt is None or attempt.answered:
            return False
        del self.active[channel_id]
        outcome = outcome_of_cause(cause, attempt.dial_status)
        detail = {"cause": cause, "dial_status": attempt.dial_status}
        self._spawn(self._finish(attempt.claim, outcome, detail), f"finish-{channel_id}")
        return True

    def call_ended(
        self,
        channel_id: str,
        *,
        verdict: str | None,
        end_reason: str,
        message_played: bool,
        do_not_call: bool,
        record: Mapping[str, Any],
    ) -> None:
        """An answered attempt's call is over (``record``: the call's result record)."""
        attempt = self.active.pop(channel_id, None)
        if attempt is None:
            return
        outcome = outcome_of_call(verdict, end_reason, message_played)
        claim = attempt.claim
        if do_not_call:
            adding = self._store(
                CampaignStore.add_dnc, claim.contact.number, "asked in a call", _now()
            )
            self._spawn(adding, f"dnc-{channel_id}")
        result = {key: record[key] for key in ("call_id", "path", "slots", "amd") if key in record}
        self._spawn(self._finish(claim, outcome, result), f"finish-{channel_id}")

    # -- the loop -------------------------------------------------------------------------

    async def _loop(self) -> None:
        while True:
            try:
                await self._place_due()
            except OutboundError as exc:
                log.error("dialler: %s", exc)
            delay = POLL_S
            due = await self._store(CampaignStore.next_due, _now())
            if due is not None:
                delay = min(delay, max(0.05, (due - _now()).total_seconds()))
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), delay)
            except TimeoutError:
                pass

    def free(self) -> int:
        """How many more calls may be placed now."""
        # room() counts the calls in progress, which ours become only once answered: the
        # ones still ringing take their places in it already.
        ringing = sum(1 for attempt in self.active.values() if not attempt.answered)
        return max(0, min(self.config.max_active - len(self.active), self._room() - ringing))

    async def _place_due(self) -> None:
        while (free := self.free()) > 0:
            now = _now()
            claims = await self._store(CampaignStore.claim_due, now, free)
            if not claims:
                return
            for claim in claims:
                if not await self._allowed_now(claim, now):
                    continue
                await self._pace()
                await self._place(claim)

    async def _allowed_now(self, claim: Claim, now: datetime) -> bool:
        """Inside the contact's window and its number's limits; otherwise the claim is given
        back, due when they allow."""
        policy = Policy.from_dict(claim.policy)
        number = claim.contact.number
        earlier = await self._store(CampaignStore.attempt_times, number, now - WEEK)
        earlier = _without_one(earlier, now)  # the claim just made is no earlier attempt
        at = plan_next(policy, now, earlier, claim.contact.timezone)
        if at <= now:
            return True
        await self._store(CampaignStore.release, claim.attempt_id, at)
        log.info("campaign %s: contact on line %d waits until %s (window or limits)",
                 claim.campaign_name, claim.contact.line, at.isoformat())  # fmt: skip
        return False

    async def _pace(self) -> None:
        gap = 1.0 / self.config.calls_per_second
        wait = self._last_placed + gap - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        self._last_placed = time.monotonic()

    async def _place(self, claim: Claim) -> None:
        channel_id = f"{CHANNEL_PREFIX}{claim.attempt_id}"
        attempt = Attempt(claim, channel_id)
        self.active[channel_id] = attempt
        try:
            endpoint = dial_string(self.config.endpoint, claim.contact.number)
            await self._store(CampaignStore.set_channel, claim.attempt_id, channel_id)
            await self.ari.originate(
                endpoint,
                app=self.app,
                app_args=[claim.script, "outbound"],
                caller_id=self.config.caller_id or None,
                timeout_s=round(self.config.ring_timeout_s),
                channel_id=channel_id,
            )
        except (AriError, ValueError) as exc:
            self.active.pop(channel_id, None)
            log.warning("campaign %s: the call of line %d could not be placed: %s",
                        claim.campaign_name, claim.contact.line, exc)  # fmt: skip
            await self._finish(claim, Outcome.FAILED, {"reason": str(exc)})
            return
        if self._prepare is not None:
            attempt.prepared = asyncio.create_task(
                self._quietly(self._prepare(attempt), f"greeting of {channel_id}"),
                name=f"dialler-prepare-{channel_id}",
            )
            self._tasks.add(attempt.prepared)
            attempt.prepared.add_done_callback(self._tasks.discard)
        log.info("campaign %s: calling line %d (%s), attempt %d", claim.campaign_name,
                 claim.contact.line, caller_text(claim.contact.number, log),
                 claim.attempt_number)  # fmt: skip

    async def _finish(self, claim: Claim, outcome: Outcome, result: dict[str, Any]) -> None:
        """Record how an attempt ended and when (or whether) the contact is called again."""
        now = _now()
        policy = Policy.from_dict(claim.policy)
        step = after_attempt(policy, outcome, claim.attempt_number, now)
        next_at = None
        if step.final is None:
            assert step.retry_at is not None
            number = claim.contact.number
            earlier = await self._store(CampaignStore.attempt_times, number, now - WEEK)
            next_at = plan_next(policy, step.retry_at, earlier, claim.contact.timezone)
        await self._store(
            CampaignStore.finish_attempt,
            claim.attempt_id,
            outcome,
            now,
            result=result,
            final=step.final,
            next_at=next_at,
        )
        self._on_outcome(outcome.value)
        self._keep_record(attempt_record(claim, outcome, now, result, next_at))
        self.wake()

    async def campaigns(self) -> list[CampaignInfo]:
        """Every campaign and how far it got (the console's campaigns page)."""
        return await self._store(CampaignStore.campaigns)

    async def set_campaign_state(self, ref: int | str, action: str) -> CampaignInfo:
        """Pause or resume a campaign (the console's buttons); a resumed one is dialled at
        once. OutboundError for an unknown campaign or a change its state does not allow."""
        states = {"pause": CampaignState.PAUSED, "resume": CampaignState.RUNNING}
        if action not in states:
            raise OutboundError(f"campaign: {action!r} is not pause or resume")
        info = await self._store(CampaignStore.set_state, ref, states[action], _now())
        self.wake()
        return info

    # -- helpers --------------------------------------------------------------------------

    async def _run(self, function: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    async def _store(self, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``method`` of the store (``CampaignStore.claim_due``), run on its thread."""
        store = self.store
        if store is None:
            raise OutboundError("the campaign store is closed")
        return await self._run(partial(method, store, *args, **kwargs))

    @staticmethod
    async def _quietly(coro: Awaitable[None], what: str) -> None:
        """Preparing a call is a speed-up: failing, it is logged, and the call goes on."""
        try:
            await coro
        except Exception as exc:
            log.warning("dialler: could not prepare the %s: %s", what, exc)

    def _spawn(self, coro: Awaitable[Any], name: str) -> None:
        async def run() -> None:
            await coro

        task = asyncio.create_task(run(), name=f"dialler-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s failed", task.get_name(), exc_info=task.exception())


_RECORDED_DETAILS = ("cause", "dial_status", "reason", "call_id")


def attempt_record(
    claim: Claim,
    outcome: Outcome,
    now: datetime,
    result: Mapping[str, Any],
    next_at: datetime | None,
) -> dict[str, Any]:
    """The result record of one attempt (``[results]``), beside the call's own record."""
    return {
        "kind": "outbound-attempt",
        "campaign": claim.campaign_name,
        "attempt": claim.attempt_number,
        "line": claim.contact.line,
        "number": claim.contact.number,
        "outcome": outcome.value,
        "at": now.isoformat(),
        "next_at": next_at.isoformat() if next_at else None,
        **{key: value for key, value in result.items() if key in _RECORDED_DETAILS},
    }


def read_dnc_file(path: Path) -> list[str]:
    """Numbers of a do-not-call file: one per line, ``#`` comments and blank lines skipped.
    A line that is no phone number is an error naming it."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise OutboundError(f"outbound.dnc_file: cannot read {path}: {exc}") from exc
    numbers = []
    for number, line in enumerate(text.splitlines(), start=1):
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        try:
            numbers.append(normalise_number(entry))
        except ValueError as exc:
            raise OutboundError(f"{path}:{number}: {exc}") from None
    return numbers


def _now() -> datetime:
    return datetime.now(UTC)


def _without_one(times: list[datetime], moment: datetime) -> list[datetime]:
    out = list(times)
    if moment in out:
        out.remove(moment)
    return out
