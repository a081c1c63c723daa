"""Campaign policy: when a contact may be called, and what follows an attempt.

A campaign calls inside a daily window (default 09:00-20:00, Monday to Saturday) on the
contact's own wall clock: the contact's time zone, else the campaign's. The window is local
wall-clock time, as a shop sign means it: on a spring-forward day the skipped hour never comes,
on a fall-back day the repeated hour comes twice. A busy, unanswered, failed or machine-answered
attempt is tried again after that outcome's delay, until ``max_attempts``; and no number is
tried more than ``per_day`` times on one of its local calendar days, or ``per_week`` times in
any 7 days (counted over every campaign that calls it).

The CLI's options are parsed here (:func:`parse_window`, :func:`parse_days`,
:func:`parse_retry`, :func:`parse_duration`, :func:`parse_timezone`), each raising
:class:`~voicebot.errors.OutboundError` that names the option and the bad value.

Pure: moments are aware datetimes given by the caller (any zone in, UTC out); nothing here
reads a clock. Time zones come from :mod:`zoneinfo` (the system's database, else ``tzdata``).
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from types import MappingProxyType
from typing import Any

from ..errors import OutboundError
from .model import ATTEMPT_OUTCOMES, Outcome

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # index = date.weekday()
RETRIED = (Outcome.BUSY, Outcome.NO_ANSWER, Outcome.FAILED, Outcome.MACHINE)
FINAL = frozenset({Outcome.ANSWERED, Outcome.MESSAGE_LEFT})
DEFAULT_RETRY: Mapping[Outcome, timedelta] = MappingProxyType(
    {
        Outcome.BUSY: timedelta(minutes=10),
        Outcome.NO_ANSWER: timedelta(minutes=60),
        Outcome.FAILED: timedelta(minutes=30),
        Outcome.MACHINE: timedelta(hours=4),
    }
)
MAX_ATTEMPTS = 100
MAX_PER_DAY = 100
MAX_PER_WEEK = 700
MIN_RETRY_DELAY = timedelta(seconds=1)
MAX_RETRY_DELAY = timedelta(days=30)
WEEK = timedelta(days=7)

# Keys zoneinfo finds on some machines only, that stand for the machine's own zone.
_MACHINE_ZONES = ("localtime", "posixrules")
_ZONE_EXAMPLE = "an IANA name such as Europe/Moscow"
_DAYS_EXAMPLE = "days such as mon-sat, mon,wed,fri or mon-fri,sun"
_DURATION = re.compile(r"\s*([0-9]{1,9})\s*([smhd])\s*", re.IGNORECASE)
_UNITS = {
    "d": timedelta(days=1),
    "h": timedelta(hours=1),
    "m": timedelta(minutes=1),
    "s": timedelta(seconds=1),
}
_WINDOW = re.compile(r"\s*([0-9]{1,2}):([0-9]{2})\s*-\s*([0-9]{1,2}):([0-9]{2})\s*")
# Each step of a search moves to the next window opening, day start, offset change or the
# expiry of an attempt: a week of them is a few dozen at most.
_MAX_STEPS = 64
_ONE_SECOND = timedelta(seconds=1)
_POLICY_KEYS = ("window", "days", "timezone", "max_attempts", "retry", "per_day", "per_week")


@dataclass(frozen=True)
class Policy:
    """A campaign's calling rules. Checked when made: OutboundError if any is invalid."""

    window_start: time = time(9, 0)
    window_end: time = time(20, 0)  # the window is [start, end) of one local day
    days: frozenset[int] = frozenset(range(6))  # 0 = Monday ... 6 = Sunday
    timezone: str = "UTC"  # the campaign's; a contact's own zone wins
    max_attempts: int = 3
    # The delay before the next attempt after each outcome that is retried; outcomes not
    # given keep DEFAULT_RETRY's.
    retry: Mapping[Outcome, timedelta] = field(default_factory=lambda: DEFAULT_RETRY, hash=False)
    per_day: int = 2  # attempts on one number per local calendar day, over all campaigns
    per_week: int = 4  # ... and in any 7 days

    def __post_init__(self) -> None:
        object.__setattr__(self, "days", frozenset(self.days))
        object.__setattr__(self, "retry", MappingProxyType({**DEFAULT_RETRY, **self.retry}))
        self.validate()

    def validate(self) -> None:
        """OutboundError naming the option and value of the first invalid rule."""
        _check_window(self.window_start, self.window_end)
        _check_days(self.days)
        parse_timezone(self.timezone)
        _check_count("--max-attempts", self.max_attempts, MAX_ATTEMPTS)
        _check_retry(self.retry)
        _check_count("--per-day", self.per_day, MAX_PER_DAY)
        _check_count("--per-week", self.per_week, MAX_PER_WEEK)

    def to_dict(self) -> dict[str, Any]:
        """The policy as JSON-safe values, each in its CLI option's syntax."""
        return {
            "window": format_window(self.window_start, self.window_end),
            "days": format_days(self.days),
            "timezone": self.timezone,
            "max_attempts": self.max_attempts,
            "retry": format_retry(self.retry),
            "per_day": self.per_day,
            "per_week": self.per_week,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Policy:
        """The policy :meth:`to_dict` wrote; keys left out keep their defaults. OutboundError
        ("stored policy: ...") for anything else."""
        try:
            if not isinstance(data, Mapping):
                raise OutboundError(f"expected a mapping, got {type(data).__name__}")
            unknown = sorted(str(key) for key in data if key not in _POLICY_KEYS)
            if unknown:
                raise OutboundError(f"unknown keys {', '.join(unknown)}")
            values: dict[str, Any] = {}
            if "window" in data:
                values["window_start"], values["window_end"] = parse_window(_text(data, "window"))
            if "days" in data:
                values["days"] = parse_days(_text(data, "days"))
            if "timezone" in data:
                values["timezone"] = parse_timezone(_text(data, "timezone"))
            if "retry" in data:
                values["retry"] = _stored_retry(data["retry"])
            for key in ("max_attempts", "per_day", "per_week"):
                if key in data:
                    values[key] = data[key]
            return cls(**values)
        except OutboundError as exc:
            raise OutboundError(f"stored policy: {exc}") from None


@dataclass(frozen=True)
class NextStep:
    """What follows an attempt: a contact's ``final`` outcome, or a retry not before
    ``retry_at`` (to pass through :func:`plan_next`). Exactly one of them is set."""

    final: Outcome | None = None
    retry_at: datetime | None = None


# --- the options ---------------------------------------------------------------------------


def parse_window(text: str) -> tuple[time, time]:
    """``"09:00-20:00"`` as (start, end); the end must come after the start the same day."""
    match = _WINDOW.fullmatch(text)
    if not match:
        raise OutboundError(f"--window {_shown(text)}: expected HH:MM-HH:MM, e.g. 09:00-20:00")
    hour_1, minute_1, hour_2, minute_2 = (int(group) for group in match.groups())
    times = []
    for hour, minute in ((hour_1, minute_1), (hour_2, minute_2)):
        if hour > 23 or minute > 59:
            raise OutboundError(
                f"--window {_shown(text)}: {hour:02d}:{minute:02d} is not a time of day "
                "(00:00 to 23:59)"
            )
        times.append(time(hour, minute))
    _check_window(times[0], times[1])
    return times[0], times[1]


def parse_days(text: str) -> frozenset[int]:
    """``"mon-sat"``, ``"mon,wed,fri"``, ``"mon-fri,sun"`` as weekday numbers (0 = Monday).
    A range may wrap past Sunday: ``fri-mon`` is Friday to Monday."""
    days: set[int] = set()
    for part in text.split(","):
        first_text, dash, last_text = part.partition("-")
        if not part.strip() or "-" in last_text:
            raise OutboundError(f"--days {_shown(text)}: expected {_DAYS_EXAMPLE}")
        first = _day(first_text, text)
        last = _day(last_text, text) if dash else first
        days.update((first + offset) % 7 for offset in range((last - first) % 7 + 1))
    return frozenset(days)


def parse_retry(
    text: str, base: Mapping[Outcome, timedelta] = DEFAULT_RETRY
) -> dict[Outcome, timedelta]:
    """``"busy=10m,no_answer=1h"`` merged over ``base``: the delay before the next attempt
    after each outcome given (busy, no_answer, failed, machine)."""
    merged = dict(base)
    given: set[Outcome] = set()
    for part in text.split(","):
        name, equals, delay_text = (piece.strip() for piece in part.partition("="))
        if not equals or not name:
            raise OutboundError(
                f"--retry {_shown(text)}: expected outcome=delay pairs, "
                "e.g. busy=10m,no_answer=1h,failed=30m,machine=4h"
            )
        outcome = _retried_outcome(name.lower())
        if outcome in given:
            raise OutboundError(f"--retry {_shown(text)}: {outcome} is given twice")
        given.add(outcome)
        merged[outcome] = parse_duration(delay_text, option=f"--retry {outcome}")
    _check_retry(merged)
    return merged


def parse_duration(text: str, *, option: str = "duration") -> timedelta:
    """``"30s"``, ``"10m"``, ``"1h"``, ``"2d"``: a whole number and one unit."""
    match = _DURATION.fullmatch(text)
    if not match:
        raise OutboundError(
            f"{option}: {_shown(text)} is not a duration "
            "(a whole number and s, m, h or d: 30s, 10m, 1h, 2d)"
        )
    return int(match.group(1)) * _UNITS[match.group(2).lower()]


def parse_timezone(text: str) -> str:
    """``text`` if it names a time zone zoneinfo knows, else OutboundError."""
    if not known_timezone(text):
        raise OutboundError(f"--timezone {_shown(text)}: unknown time zone ({_ZONE_EXAMPLE})")
    return text


def known_timezone(name: str) -> bool:
    """Whether ``name`` is an IANA time zone (not one that depends on the machine)."""
    if not name or name in _MACHINE_ZONES:
        return False
    try:
        zoneinfo.ZoneInfo(name)
    # ValueError: keys like "../etc" or absolute paths, files that are not zones ("zone.tab");
    # OSError: directories ("America"), names too long.
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def format_window(start: time, end: time) -> str:
    return f"{start:%H:%M}-{end:%H:%M}"


def format_days(days: Iterable[int]) -> str:
    """Weekday numbers as :func:`parse_days` reads them: runs of three or more as a range."""
    ordered = sorted(set(days))
    runs: list[list[int]] = []
    for day in ordered:
        if runs and runs[-1][-1] == day - 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    parts: list[str] = []
    for run in runs:
        if len(run) >= 3:
            parts.append(f"{DAY_NAMES[run[0]]}-{DAY_NAMES[run[-1]]}")
        else:
            parts.extend(DAY_NAMES[day] for day in run)
    return ",".join(parts)


def format_duration(delay: timedelta) -> str:
    """A whole number of seconds in the largest unit that holds it exactly: 600 s is "10m"."""
    if not delay:
        return "0s"
    for unit in ("d", "h", "m", "s"):
        count, rest = divmod(delay, _UNITS[unit])
        if not rest:
            return f"{count}{unit}"
    raise ValueError(f"{delay} is not a whole number of seconds")


def format_retry(retry: Mapping[Outcome, timedelta]) -> str:
    return ",".join(f"{outcome}={format_duration(retry[outcome])}" for outcome in RETRIED)


# --- scheduling ----------------------------------------------------------------------------


def in_window(policy: Policy, at: datetime, tz: str | None) -> bool:
    """Whether ``at`` (aware) is inside a window on the wall clock of ``tz`` (a contact's
    zone; None: the campaign's)."""
    return _inside(policy, _utc(at).astimezone(_zone(policy, tz)))


def next_allowed(policy: Policy, after: datetime, tz: str | None) -> datetime:
    """The earliest moment at or after ``after`` inside a window of ``tz``'s wall clock (None:
    the campaign's zone), in UTC."""
    zone = _zone(policy, tz)
    moment = _utc(after)
    for _ in range(_MAX_STEPS):
        local = moment.astimezone(zone)
        if _inside(policy, local):
            return moment
        # At one offset the clock first enters a window at the next opening; an offset change
        # before it may put the clock inside at once (a skipped opening, the repeated hour),
        # so the search stops there too. Steps of a day at most never hold two changes.
        target = min(_next_opening(policy, local, moment, zone), moment + timedelta(days=1))
        change = _offset_change(zone, moment, target)
        moment = change if change is not None else target
    raise OutboundError(f"no call window found after {after.isoformat()} in {zone.key}")


def after_attempt(policy: Policy, outcome: Outcome, attempts_made: int, now: datetime) -> NextStep:
    """What follows an attempt that ended ``outcome``, the contact's ``attempts_made``-th."""
    if outcome not in ATTEMPT_OUTCOMES:
        raise ValueError(f"{outcome} is not how an attempt ends")
    if outcome in FINAL or attempts_made >= policy.max_attempts:
        return NextStep(final=outcome)
    return NextStep(retry_at=_utc(now) + policy.retry[outcome])


def limit_allows(
    policy: Policy, earlier_attempts: Sequence[datetime], at: datetime, tz: str | None
) -> datetime:
    """The earliest moment at or after ``at`` when the number's ``earlier_attempts`` (over all
    campaigns) leave room for one more under ``per_day`` (calendar days of ``tz``) and
    ``per_week`` (any 7 days), in UTC."""
    zone = _zone(policy, tz)
    attempts = sorted(_utc(attempt) for attempt in earlier_attempts)
    days = [attempt.astimezone(zone).date() for attempt in attempts]
    moment = _utc(at)
    for _ in range(_MAX_STEPS):
        later = moment
        today = moment.astimezone(zone).date()
        if days.count(today) >= policy.per_day:
            later = _day_start(zone, today + timedelta(days=1))
        recent = [attempt for attempt in attempts if attempt > moment - WEEK]
        if len(recent) >= policy.per_week:
            # The attempt whose expiry brings the count below the limit.
            later = max(later, recent[len(recent) - policy.per_week] + WEEK)
        if later == moment:
            return moment
        moment = later
    raise OutboundError(f"no room under the per-number limits after {at.isoformat()}")


def plan_next(
    policy: Policy, earliest: datetime, earlier_attempts: Sequence[datetime], tz: str | None
) -> datetime:
    """The earliest moment at or after ``earliest`` inside a window and under the per-number
    limits, in UTC: when the contact's next attempt is due."""
    moment = _utc(earliest)
    for _ in range(_MAX_STEPS):
        moment = next_allowed(policy, moment, tz)
        allowed = limit_allows(policy, earlier_attempts, moment, tz)
        if allowed == moment:
            return moment
        moment = allowed
    raise OutboundError(f"no moment inside a window and the limits after {earliest.isoformat()}")


# --- helpers -------------------------------------------------------------------------------


def _inside(policy: Policy, local: datetime) -> bool:
    return (
        local.weekday() in policy.days and policy.window_start <= local.time() < policy.window_end
    )


def _next_opening(
    policy: Policy, local: datetime, moment: datetime, zone: zoneinfo.ZoneInfo
) -> datetime:
    """The first instant after ``moment`` at which ``local``'s wall clock, going on at its
    present offset, reaches the next window opening."""
    day = local.date()
    if local.time() >= policy.window_start or day.weekday() not in policy.days:
        day += timedelta(days=1)
        while day.weekday() not in policy.days:
            day += timedelta(days=1)
    later = [
        i for i in _wall_reached(zone, datetime.combine(day, policy.window_start)) if i > moment
    ]
    # Nothing later only if the clock went back over it: an hour on is progress all the same.
    return later[0] if later else moment + timedelta(hours=1)


def _day_start(zone: zoneinfo.ZoneInfo, day: date) -> datetime:
    return _wall_reached(zone, datetime.combine(day, time()))[0]


def _wall_reached(zone: zoneinfo.ZoneInfo, wall: datetime) -> list[datetime]:
    """The instants (UTC, in order) at which ``zone``'s clock reads ``wall`` (naive): one, two
    in a repeated hour; for a skipped one, the offset change that jumps over it."""
    readings = []
    for fold in (0, 1):
        instant = wall.replace(tzinfo=zone, fold=fold).astimezone(UTC)
        if instant.astimezone(zone).replace(tzinfo=None) == wall and instant not in readings:
            readings.append(instant)
    if readings:
        return sorted(readings)
    # In a gap fold=1 reads the time with the offset after the change, an instant before it;
    # fold=0 with the one before, an instant after it.
    before = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    after = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    change = _offset_change(zone, before, after)
    return [change if change is not None else after]


def _offset_change(zone: zoneinfo.ZoneInfo, start: datetime, end: datetime) -> datetime | None:
    """The instant in (start, end] at which ``zone``'s UTC offset changes from the one it has
    at ``start``, if it has another at ``end``."""
    first = start.astimezone(zone).utcoffset()
    if end <= start or end.astimezone(zone).utcoffset() == first:
        return None
    low, high = start, end
    while high - low > _ONE_SECOND:
        middle = low + (high - low) / 2
        if middle.astimezone(zone).utcoffset() == first:
            low = middle
        else:
            high = middle
    # Offsets change on whole seconds: the one second in (low, high].
    return low.replace(microsecond=0) + _ONE_SECOND


def _zone(policy: Policy, tz: str | None) -> zoneinfo.ZoneInfo:
    name = tz or policy.timezone
    if not known_timezone(name):
        raise OutboundError(f"unknown time zone {_shown(name)} ({_ZONE_EXAMPLE})")
    return zoneinfo.ZoneInfo(name)


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{moment.isoformat()} has no time zone: give an aware datetime")
    return moment.astimezone(UTC)


def _check_window(start: object, end: object) -> None:
    if not isinstance(start, time) or not isinstance(end, time):
        raise OutboundError(f"--window: expected two times of day, got {start!r} and {end!r}")
    shown = format_window(start, end)
    if start.tzinfo is not None or end.tzinfo is not None:
        raise OutboundError(f"--window {shown}: give wall-clock times without a time zone")
    if (start.second, start.microsecond, end.second, end.microsecond) != (0, 0, 0, 0):
        raise OutboundError(f"--window {start}-{end}: give whole minutes (HH:MM)")
    if end == start:
        raise OutboundError(f"--window {shown}: the window is empty")
    if end < start:
        raise OutboundError(
            f"--window {shown}: the window ends before it starts; windows that run past "
            "midnight are not supported: give one within a day, e.g. 09:00-20:00"
        )


def _check_days(days: frozenset[object]) -> None:
    if not days:
        raise OutboundError(f"--days: no day given ({_DAYS_EXAMPLE})")
    for day in sorted(days, key=repr):
        if isinstance(day, bool) or not isinstance(day, int) or not 0 <= day <= 6:
            raise OutboundError(f"--days: {day!r} is not a weekday number (0 = Monday ... 6)")


def _check_count(option: str, value: object, highest: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= highest:
        raise OutboundError(f"{option} {value!r}: expected a whole number from 1 to {highest}")


def _check_retry(retry: Mapping[Outcome, timedelta]) -> None:
    for outcome, delay in retry.items():
        if outcome not in RETRIED:
            _retried_outcome(str(outcome))
        if not isinstance(delay, timedelta):
            raise OutboundError(f"--retry {outcome}: {delay!r} is not a duration")
        if delay % _ONE_SECOND:
            raise OutboundError(f"--retry {outcome}: {delay} is not a whole number of seconds")
        if not MIN_RETRY_DELAY <= delay <= MAX_RETRY_DELAY:
            raise OutboundError(
                f"--retry {outcome}={format_duration(delay)}: the delay must be from "
                f"{format_duration(MIN_RETRY_DELAY)} to {format_duration(MAX_RETRY_DELAY)}"
            )


def _retried_outcome(name: str) -> Outcome:
    choices = ", ".join(RETRIED)
    for outcome in RETRIED:
        if name == outcome.value:
            return outcome
    if name in {outcome.value for outcome in Outcome}:
        raise OutboundError(f"--retry: {name} is not retried (only {choices})")
    raise OutboundError(f"--retry: {_shown(name)} is not an outcome ({choices})")


def _day(name: str, text: str) -> int:
    key = name.strip().lower()
    if key not in DAY_NAMES:
        raise OutboundError(
            f"--days {_shown(text)}: {_shown(name.strip())} is not a day ({', '.join(DAY_NAMES)})"
        )
    return DAY_NAMES.index(key)


def _stored_retry(value: Any) -> dict[Outcome, timedelta]:
    """``retry`` as :meth:`Policy.to_dict` writes it (the option's text), or as a mapping of
    outcomes to seconds or duration texts, over the defaults."""
    if isinstance(value, str):
        return parse_retry(value)
    if not isinstance(value, Mapping):
        raise OutboundError(f"retry: expected a string or a mapping, got {type(value).__name__}")
    merged = dict(DEFAULT_RETRY)
    for name, delay in value.items():
        outcome = _retried_outcome(str(name).lower())
        if isinstance(delay, str):
            merged[outcome] = parse_duration(delay, option=f"--retry {outcome}")
        elif isinstance(delay, int | float) and not isinstance(delay, bool):
            try:
                merged[outcome] = timedelta(seconds=delay)
            except (OverflowError, ValueError):  # 1e300, nan
                raise OutboundError(f"--retry {outcome}: {delay!r} s is no delay") from None
        else:
            raise OutboundError(f"--retry {outcome}: {delay!r} is not a duration")
    return merged


def _text(data: Mapping[str, Any], key: str) -> str:
    value = data[key]
    if not isinstance(value, str):
        raise OutboundError(f"{key}: expected a string, got {type(value).__name__}")
    return value


def _shown(value: str) -> str:
    return repr(value if len(value) <= 60 else value[:60] + "…")
