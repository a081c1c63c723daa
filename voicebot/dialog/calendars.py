"""Business hours: the script's ``calendars:`` and whether one of them is open at a moment.

A calendar, as a script writes it::

    calendars:
      office:
        timezone: Europe/Moscow               # required: an IANA time zone
        open:                                 # optional: without it the calendar is never open
          mon-fri: "09:00-18:00"
          sat: "10:00-14:00"
          sun: closed
        closed: ["2026-12-31", "2027-01-01"]  # optional: dates, or "FIRST..LAST" (inclusive)

``open`` maps days to hours. A day key is ``mon`` … ``sun``, a range ``mon-fri``, or a list
``mon,wed,fri`` (``mon-wed, fri`` too). A range may wrap past Sunday: ``fri-mon`` is Friday,
Saturday, Sunday and Monday. A day may be given only once, and a day not given is closed.
Hours are one range ``"09:00-18:00"``, several ``"09:00-13:00, 14:00-18:00"``, a YAML list of
such strings, or ``closed`` (or ``[]``). Times are ``HH:MM``; ``24:00`` may end a range. Each
range starts on its own day and is open from its start up to (not including) its end; ranges
of one day may touch but not overlap. A range that ends at or before its start runs past
midnight: ``fri: "22:00-02:00"`` is open from Friday 22:00 until Saturday 02:00 (a night
shift); ``"22:00-00:00"`` is the same as ``"22:00-24:00"``.

Times are wall-clock times in the calendar's zone, whatever zone the moment is given in: the
local date and time of the moment decide. Across a DST change this is what a sign on a shop's
door means: on a spring-forward day the skipped hour never comes (``"02:00-03:00"`` is not
open at all that day, ``"01:00-04:00"`` is open for two real hours); on a fall-back day the
repeated hour comes twice, and both are inside ``"02:00-03:00"``.

``closed`` dates are local dates in the calendar's zone. A closed date cancels the hours that
start on it, including a night shift's hours after the next midnight. The tail of the
previous evening's night shift stays open on it, as a bar that closes at 02:00 does on the
morning of a holiday. ``"2026-12-31..2027-01-08"`` closes every date from the first to the
last, both included; a calendar may close at most :data:`MAX_CLOSED_DAYS` dates in all.

Pure, besides looking time zones up with :mod:`zoneinfo` (the system's database, else the
``tzdata`` package).
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import pairwise
from typing import Any

# Index = date.weekday().
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
KEYS = ("timezone", "open", "closed")
MINUTES_PER_DAY = 24 * 60
# Years of holidays; the bound keeps a hostile "0001-01-01..9999-12-31" from filling memory.
MAX_CLOSED_DAYS = 10_000
# Keys zoneinfo finds on some machines only, that stand for the machine's own zone.
_MACHINE_ZONES = ("localtime", "posixrules")
_ZONE_EXAMPLE = "an IANA name such as Europe/Moscow"
_HOURS_EXAMPLE = "hours like '09:00-18:00' or 'closed'"
_DATE_EXAMPLE = "dates like '2026-12-31' or ranges like '2026-12-31..2027-01-08'"
# ASCII digits only: int() would also take other scripts' digits.
_TIME = re.compile(r"([0-9]{1,2}):([0-9]{2})")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_RANGE = re.compile(r"\s*([^-\s]+)\s*-\s*([^-\s]+)\s*")

# Where in the calendar's mapping a problem is: keys, and indexes into lists.
CalendarPath = tuple[str | int, ...]
# (start, end) in minutes after the local midnight of the day they belong to, sorted; an end
# above MINUTES_PER_DAY runs into the next day (a night shift).
Hours = tuple[tuple[int, int], ...]


class CalendarError(ValueError):
    """A calendar a script may not use. ``str()`` is the problem; ``path`` says where it is,
    as keys and list indexes inside the calendar's own mapping: ``("open", "mon-fri")``,
    ``("open", "mon", 1)``, ``("closed", 0)``, or ``()`` for the mapping itself."""

    def __init__(self, path: CalendarPath, problem: str) -> None:
        super().__init__(problem)
        self.path = path
        self.problem = problem


@dataclass(frozen=True)
class Calendar:
    """One parsed calendar: what :func:`is_open` needs, nothing of the YAML."""

    name: str
    timezone: str  # the IANA key, e.g. "Europe/Moscow"
    weekly: tuple[Hours, ...]  # seven entries, Monday first
    closed: frozenset[date]  # local dates in ``timezone``


def parse_calendar(name: str, spec: Any) -> Calendar:
    """The calendar ``spec`` (a script's plain YAML data) describes; raises :class:`CalendarError`.

    ``name`` is only carried along: the caller checks it and reports errors under it.
    """
    if not isinstance(spec, Mapping):
        raise CalendarError((), f"expected a mapping with {', '.join(KEYS)}, got {_kind(spec)}")
    for key in spec:
        if key not in KEYS:
            raise CalendarError((str(key),), f"unknown key {_shown(key)} ({', '.join(KEYS)})")
    if "timezone" not in spec:
        raise CalendarError((), f"missing 'timezone' ({_ZONE_EXAMPLE})")
    return Calendar(
        name=name,
        timezone=_parse_timezone(spec["timezone"]),
        weekly=_parse_open(spec["open"]) if "open" in spec else ((),) * len(DAYS),
        closed=_parse_closed(spec["closed"]) if "closed" in spec else frozenset(),
    )


def is_open(calendar: Calendar, now: datetime) -> bool:
    """Whether ``calendar`` is open at ``now``, which must be timezone-aware (ValueError if
    not); any zone will do, ``now`` is converted to the calendar's."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"{now.isoformat()} has no time zone: give an aware datetime")
    try:
        local = now.astimezone(zoneinfo.ZoneInfo(calendar.timezone))
    except OverflowError:
        raise ValueError(f"{now.isoformat()} is out of range") from None
    today = local.date()
    second = local.hour * 3600 + local.minute * 60 + local.second
    if _open_on(calendar, today, second):
        return True
    # The tail of a night shift that started the evening before.
    return today > date.min and _open_on(calendar, today - timedelta(days=1), second + 86_400)


def _open_on(calendar: Calendar, day: date, second: int) -> bool:
    """Whether hours starting on ``day`` cover ``second`` (counted from ``day``'s midnight)."""
    if day in calendar.closed:
        return False
    return any(start * 60 <= second < end * 60 for start, end in calendar.weekly[day.weekday()])


def _parse_timezone(value: Any) -> str:
    path: CalendarPath = ("timezone",)
    if not isinstance(value, str):
        raise CalendarError(path, f"expected {_ZONE_EXAMPLE}, got {_kind(value)}")
    if value in _MACHINE_ZONES:
        raise CalendarError(path, f"'{value}' depends on the machine: use {_ZONE_EXAMPLE}")
    try:
        zoneinfo.ZoneInfo(value)
    # ValueError: keys like "../etc" or "/etc/passwd", files that are not zones ("zone.tab");
    # OSError: directories ("America"), names too long.
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise CalendarError(path, f"unknown time zone {_shown(value)} ({_ZONE_EXAMPLE})") from None
    return value


def _parse_open(value: Any) -> tuple[Hours, ...]:
    if not isinstance(value, Mapping):
        raise CalendarError(
            ("open",),
            f"expected days and their hours, e.g. {{mon-fri: '09:00-18:00'}}, got {_kind(value)}",
        )
    weekly: list[Hours] = [()] * len(DAYS)
    given_in: dict[int, str] = {}
    for raw_key, hours_value in value.items():
        key = str(raw_key)
        path: CalendarPath = ("open", key)
        days = _parse_days(key, path)
        hours = _parse_hours(hours_value, path)
        for day in days:
            if day in given_in:
                raise CalendarError(
                    path,
                    f"{DAYS[day]} is given twice (in {_shown(given_in[day])} and {_shown(key)})",
                )
            given_in[day] = key
            weekly[day] = hours
    return tuple(weekly)


def _parse_days(key: str, path: CalendarPath) -> list[int]:
    """Weekday numbers of ``mon``, ``mon-fri``, ``fri-mon``, ``mon,wed,fri``, in order."""
    days: list[int] = []
    for part in key.split(","):
        part = part.strip()
        if part.count("-") > 1:
            raise CalendarError(path, f"{_shown(part)} is not a day or a range of days (mon-fri)")
        if "-" in part:
            first_text, _, last_text = part.partition("-")
            first, last = _day(first_text, path), _day(last_text, path)
            if first == last:
                raise CalendarError(path, f"{_shown(part)} is one day: write '{DAYS[first]}'")
            span = [
                (first + offset) % len(DAYS) for offset in range((last - first) % len(DAYS) + 1)
            ]
        else:
            span = [_day(part, path)]
        for day in span:
            if day in days:
                raise CalendarError(path, f"{DAYS[day]} is given twice in {_shown(key)}")
            days.append(day)
    return days


def _day(text: str, path: CalendarPath) -> int:
    name = text.strip().lower()
    if name not in DAYS:
        raise CalendarError(path, f"unknown day {_shown(text.strip())} ({', '.join(DAYS)})")
    return DAYS.index(name)


def _parse_hours(value: Any, path: CalendarPath) -> Hours:
    items: list[tuple[CalendarPath, Any]]
    if isinstance(value, str):
        items = [(path, value)]
    elif isinstance(value, list):
        items = [((*path, index), item) for index, item in enumerate(value)]
    else:
        hint = " (quote times: '10:00' unquoted is a number in YAML)" if _is_number(value) else ""
        raise CalendarError(path, f"expected {_HOURS_EXAMPLE}, got {_kind(value)}{hint}")
    # (start, end, text, path), to name both ranges when two overlap.
    ranges: list[tuple[int, int, str, CalendarPath]] = []
    for item_path, item in items:
        if not isinstance(item, str):
            raise CalendarError(item_path, f"expected {_HOURS_EXAMPLE}, got {_kind(item)}")
        text = item.strip()
        if text.lower() == "closed":
            if len(items) > 1:
                raise CalendarError(item_path, "'closed' cannot be listed with hours")
            return ()
        if not text:
            raise CalendarError(item_path, f"no hours: expected {_HOURS_EXAMPLE}")
        for piece in text.split(","):
            start, end = _parse_range(piece.strip(), item_path)
            ranges.append((start, end, piece.strip(), item_path))
    ranges.sort()
    for earlier, later in pairwise(ranges):
        if later[0] < earlier[1]:
            raise CalendarError(later[3], f"{_shown(later[2])} overlaps {_shown(earlier[2])}")
    return tuple((start, end) for start, end, _, _ in ranges)


def _parse_range(text: str, path: CalendarPath) -> tuple[int, int]:
    match = _RANGE.fullmatch(text)
    if match is None:
        raise CalendarError(path, f"{_shown(text)} is not a range of times (HH:MM-HH:MM)")
    start, end = _minute(match[1], path), _minute(match[2], path)
    if start == MINUTES_PER_DAY:
        raise CalendarError(path, f"{_shown(text)} starts at 24:00: 24:00 can only end a range")
    if end == start:
        raise CalendarError(
            path, f"{_shown(text)} starts and ends at the same time (the whole day is 00:00-24:00)"
        )
    if end < start:
        end += MINUTES_PER_DAY  # a night shift, open into the next day
    return start, end


def _minute(text: str, path: CalendarPath) -> int:
    match = _TIME.fullmatch(text)
    if match is not None:
        hour, minute = int(match[1]), int(match[2])
        if (hour < 24 and minute < 60) or (hour, minute) == (24, 0):
            return hour * 60 + minute
    raise CalendarError(path, f"{_shown(text)} is not a time (HH:MM, 00:00-24:00)")


def _parse_closed(value: Any) -> frozenset[date]:
    if not isinstance(value, list):
        raise CalendarError(("closed",), f"expected a list of {_DATE_EXAMPLE}, got {_kind(value)}")
    dates: set[date] = set()
    for index, item in enumerate(value):
        path: CalendarPath = ("closed", index)
        first, last = _parse_dates(item, path)
        days = (last - first).days + 1
        if len(dates) + days > MAX_CLOSED_DAYS:
            raise CalendarError(path, f"closes more than {MAX_CLOSED_DAYS} days in all")
        dates.update(first + timedelta(days=offset) for offset in range(days))
    return frozenset(dates)


def _parse_dates(item: Any, path: CalendarPath) -> tuple[date, date]:
    """First and last date of one ``closed`` entry (the same for a single date)."""
    # YAML reads an unquoted 2026-12-31 as a date; a datetime is a date too, but not one.
    if isinstance(item, date) and not isinstance(item, datetime):
        return item, item
    if not isinstance(item, str):
        raise CalendarError(path, f"expected {_DATE_EXAMPLE}, got {_kind(item)}")
    first_text, dots, last_text = item.partition("..")
    first = _date(first_text.strip(), path)
    if not dots:
        return first, first
    last = _date(last_text.strip(), path)
    if last < first:
        raise CalendarError(path, f"{_shown(item)} ends before it starts")
    return first, last


def _date(text: str, path: CalendarPath) -> date:
    # The pattern first: fromisoformat also takes "20261231" and "2026-W53-4".
    if _DATE.fullmatch(text):
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
    raise CalendarError(path, f"{_shown(text)} is not a date (YYYY-MM-DD)")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _kind(value: Any) -> str:
    """What a YAML value is, in a script writer's words."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true/false"
    if _is_number(value):
        return "a number"
    if isinstance(value, datetime):
        return "a date and time"
    if isinstance(value, date):
        return "a date"
    if isinstance(value, str):
        return f"the text {_shown(value)}"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def _shown(value: Any) -> str:
    """``value`` quoted for a message, cut short: script text may be long or hostile."""
    text = str(value)
    if len(text) > 40:
        return repr(f"{text[:20]}…") + f" ({len(text)} characters)"
    return repr(text)
