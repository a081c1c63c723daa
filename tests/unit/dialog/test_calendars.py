"""Business-hours calendars: parsing with precise error paths, and is_open in the calendar's
own wall-clock time across midnight, night shifts, closed dates and DST changes."""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voicebot.dialog.calendars import (
    MAX_CLOSED_DAYS,
    Calendar,
    CalendarError,
    is_open,
    parse_calendar,
)

NEVER: tuple[tuple[int, int], ...] = ()
NINE_TO_SIX = ((9 * 60, 18 * 60),)


def calendar(timezone: str = "UTC", **open_hours: Any) -> Calendar:
    """A calendar open on the days given as keyword arguments (``mon_fri`` for ``mon-fri``)."""
    hours = {day.replace("_", "-"): value for day, value in open_hours.items()}
    return parse_calendar("test", {"timezone": timezone, "open": hours})


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


# --- parsing ---------------------------------------------------------------------------------


def test_the_issue_example() -> None:
    office = parse_calendar(
        "office",
        {
            "timezone": "Europe/Moscow",
            "open": {"mon-fri": "09:00-18:00", "sat": "10:00-14:00"},
            "closed": ["2026-12-31", "2027-01-01"],
        },
    )
    assert office == Calendar(
        name="office",
        timezone="Europe/Moscow",
        weekly=(NINE_TO_SIX,) * 5 + (((600, 840),), NEVER),
        closed=frozenset({date(2026, 12, 31), date(2027, 1, 1)}),
    )


@pytest.mark.parametrize(
    ("days", "open_on"),
    [
        pytest.param("mon", {0}, id="one-day"),
        pytest.param("mon-fri", {0, 1, 2, 3, 4}, id="range"),
        pytest.param("fri-mon", {4, 5, 6, 0}, id="range-wrapping-past-sunday"),
        pytest.param("sat-sun", {5, 6}, id="weekend"),
        pytest.param("mon-sun", set(range(7)), id="whole-week"),
        pytest.param("tue-mon", set(range(7)), id="whole-week-wrapping"),
        pytest.param("mon,wed,fri", {0, 2, 4}, id="list"),
        pytest.param(" Mon - Wed , FRI ", {0, 1, 2, 4}, id="spaces-and-case"),
    ],
)
def test_day_keys(days: str, open_on: set[int]) -> None:
    weekly = calendar(**{days.replace("-", "_"): "09:00-18:00"}).weekly
    assert {day for day, hours in enumerate(weekly) if hours} == open_on
    assert all(hours == NINE_TO_SIX for hours in weekly if hours)


@pytest.mark.parametrize(
    ("value", "hours"),
    [
        pytest.param("09:00-18:00", NINE_TO_SIX, id="one-range"),
        pytest.param("9:00 - 17:30", ((540, 1050),), id="one-digit-hour-and-spaces"),
        pytest.param("09:00-13:00, 14:00-18:00", ((540, 780), (840, 1080)), id="comma-list"),
        pytest.param(["14:00-18:00", "09:00-13:00"], ((540, 780), (840, 1080)), id="yaml-list"),
        pytest.param(
            ["09:00-10:00, 11:00-12:00", "13:00-14:00"],
            ((540, 600), (660, 720), (780, 840)),
            id="yaml-list-of-comma-lists",
        ),
        pytest.param("09:00-13:00, 13:00-18:00", ((540, 780), (780, 1080)), id="touching"),
        pytest.param("00:00-24:00", ((0, 1440),), id="whole-day"),
        pytest.param("22:00-24:00", ((1320, 1440),), id="until-midnight"),
        pytest.param("22:00-00:00", ((1320, 1440),), id="until-00:00-is-until-24:00"),
        pytest.param("22:00-02:00", ((1320, 1560),), id="night-shift"),
        pytest.param("09:00-08:00", ((540, 1920),), id="night-shift-23-hours"),
        pytest.param(
            "01:00-03:00, 22:00-02:00",
            ((60, 180), (1320, 1560)),
            id="night-shift-tail-is-the-next-days",
        ),
        pytest.param("closed", NEVER, id="closed"),
        pytest.param(" Closed ", NEVER, id="closed-any-case"),
        pytest.param(["closed"], NEVER, id="closed-in-a-list"),
        pytest.param([], NEVER, id="empty-list"),
    ],
)
def test_hours(value: Any, hours: tuple[tuple[int, int], ...]) -> None:
    assert calendar(mon=value).weekly == (hours, *[NEVER] * 6)


def test_without_open_never_open() -> None:
    never = parse_calendar("never", {"timezone": "UTC"})
    assert never.weekly == (NEVER,) * 7
    assert never.closed == frozenset()
    assert not is_open(never, at("2026-12-07T10:00Z"))


@pytest.mark.parametrize(
    ("closed", "dates"),
    [
        pytest.param(["2026-12-31"], {date(2026, 12, 31)}, id="one"),
        pytest.param([date(2026, 12, 31)], {date(2026, 12, 31)}, id="unquoted-yaml-date"),
        pytest.param(
            ["2026-12-30..2027-01-02"],
            {date(2026, 12, 30), date(2026, 12, 31), date(2027, 1, 1), date(2027, 1, 2)},
            id="range-inclusive",
        ),
        pytest.param([" 2026-12-31 .. 2026-12-31 "], {date(2026, 12, 31)}, id="one-day-range"),
        pytest.param(
            ["2026-12-31", "2026-12-31..2027-01-01"],
            {date(2026, 12, 31), date(2027, 1, 1)},
            id="overlapping-entries",
        ),
        pytest.param(
            ["2028-02-28..2028-03-01"],
            {date(2028, 2, 28), date(2028, 2, 29), date(2028, 3, 1)},
            id="leap-day",
        ),
        pytest.param([], set(), id="empty"),
    ],
)
def test_closed(closed: list[Any], dates: set[date]) -> None:
    assert parse_calendar("c", {"timezone": "UTC", "closed": closed}).closed == dates


def test_closed_days_up_to_the_limit() -> None:
    first = date(2026, 1, 1)
    last = first + timedelta(days=MAX_CLOSED_DAYS - 1)
    spec = {"timezone": "UTC", "closed": [f"{first}..{last}"]}
    assert len(parse_calendar("c", spec).closed) == MAX_CLOSED_DAYS


MON_OPEN = {"timezone": "UTC", "open": {"mon": "09:00-18:00"}}


@pytest.mark.parametrize(
    ("spec", "path", "problem"),
    [
        # The calendar's own mapping.
        pytest.param(
            None, (), "expected a mapping with timezone, open, closed, got nothing", id="no-mapping"
        ),
        pytest.param(
            {"timezone": "UTC", "opne": {}},
            ("opne",),
            "unknown key 'opne' (timezone, open, closed)",
            id="unknown-key",
        ),
        pytest.param(
            {"open": {}},
            (),
            "missing 'timezone' (an IANA name such as Europe/Moscow)",
            id="no-timezone",
        ),
        # Time zones.
        *[
            pytest.param(
                {"timezone": zone},
                ("timezone",),
                f"unknown time zone {zone!r} (an IANA name such as Europe/Moscow)",
                id=f"zone-{ident}",
            )
            for ident, zone in [
                ("misspelt", "Europe/Moskow"),
                ("wrong-case", "europe/moscow"),
                ("climbing", "../etc"),
                ("absolute", "/etc/passwd"),
                ("empty", ""),
                ("a-directory", "America"),
                ("not-a-zone-file", "zone.tab"),
                ("nul", "Europe/Mos\0cow"),
                ("trailing-space", "Europe/Moscow "),
            ]
        ],
        pytest.param(
            {"timezone": "a" * 300},
            ("timezone",),
            "unknown time zone 'aaaaaaaaaaaaaaaaaaaa…' (300 characters) "
            "(an IANA name such as Europe/Moscow)",
            id="zone-too-long",
        ),
        pytest.param(
            {"timezone": "localtime"},
            ("timezone",),
            "'localtime' depends on the machine: use an IANA name such as Europe/Moscow",
            id="zone-of-the-machine",
        ),
        pytest.param(
            {"timezone": 3},
            ("timezone",),
            "expected an IANA name such as Europe/Moscow, got a number",
            id="zone-a-number",
        ),
        # Days.
        pytest.param(
            {"timezone": "UTC", "open": ["mon"]},
            ("open",),
            "expected days and their hours, e.g. {mon-fri: '09:00-18:00'}, got a list",
            id="open-not-a-mapping",
        ),
        pytest.param(
            {"timezone": "UTC", "open": None},
            ("open",),
            "expected days and their hours, e.g. {mon-fri: '09:00-18:00'}, got nothing",
            id="open-empty",
        ),
        pytest.param(
            {"timezone": "UTC", "open": {"mnn": "09:00-18:00"}},
            ("open", "mnn"),
            "unknown day 'mnn' (mon, tue, wed, thu, fri, sat, sun)",
            id="unknown-day",
        ),
        pytest.param(
            {"timezone": "UTC", "open": {"monday": "09:00-18:00"}},
            ("open", "monday"),
            "unknown day 'monday' (mon, tue, wed, thu, fri, sat, sun)",
            id="day-in-full",
        ),
        pytest.param(
            {"timezone": "UTC", "open": {"mon-frx": "09:00-18:00"}},
            ("open", "mon-frx"),
            "unknown day 'frx' (mon, tue, wed, thu, fri, sat, sun)",
            id="unknown-day-in-range",
        ),
        pytest.param(
            {"timezone": "UTC", "open": {"mon,,fri": "09:00-18:00"}},
            ("open", "mon,,fri"),
            "unknown day '' (mon, tue, wed, thu, fri, sat, sun)",
            id="empty-day-in-list",
        ),
        pytest.param(
            {"timezone": "UTC", "open": {"mon-wed-fri": "09:00-18:00"}},
            ("open", "mon-wed-fri"),
            "'mon-wed-fri' is not a day or a range of days (mon-fri)",
            id="two-dashes",
        ),
        pytest.param(
            {"timezone": "UTC", "open": {"mon-mon": "09:00-18:00"}},
            ("open", "mon-mon"),
            "'mon-mon' is one day: write 'mon'",
            id="range-of-one-day",
        ),
        pytest.param(
            {"timezone": "UTC", "open": {"mon-fri": "09:00-18:00", "mon": "closed"}},
            ("open", "mon"),
            "mon is given twice (in 'mon-fri' and 'mon')",
            id="day-twice",
        ),
        pytest.param(
            {"timezone": "UTC", "open": {"sat-mon": "09:00-18:00", "fri-sun": "10:00-11:00"}},
            ("open", "fri-sun"),
            "sat is given twice (in 'sat-mon' and 'fri-sun')",
            id="day-twice-in-ranges",
        ),
        pytest.param(
            {"timezone": "UTC", "open": {"mon,tue,mon": "09:00-18:00"}},
            ("open", "mon,tue,mon"),
            "mon is given twice in 'mon,tue,mon'",
            id="day-twice-in-one-key",
        ),
        # Hours.
        *[
            pytest.param(
                {"timezone": "UTC", "open": {"mon-fri": hours}},
                ("open", "mon-fri"),
                f"{bad!r} is not a time (HH:MM, 00:00-24:00)",
                id=f"time-{ident}",
            )
            for ident, hours, bad in [
                ("hour-25", "09:00-25:00", "25:00"),
                ("minute-60", "09:60-18:00", "09:60"),
                ("past-24:00", "09:00-24:01", "24:01"),
                ("no-colon", "0900-1800", "0900"),
                ("seconds", "09:00:00-18:00", "09:00:00"),
                ("one-digit-minute", "09:0-18:00", "09:0"),
                ("other-digits", "٠٩:٠٠-18:00", "٠٩:٠٠"),
                ("am-pm", "9am-6pm", "9am"),
            ]
        ],
        pytest.param(
            {"timezone": "UTC", "open": {"mon": "09:00"}},
            ("open", "mon"),
            "'09:00' is not a range of times (HH:MM-HH:MM)",
            id="no-range",
        ),
        pytest.param(
            {"timezone": "UTC", "open": {"mon": "09:00 18:00"}},
            ("open", "mon"),
            "'09:00 18:00' is not a range of times (HH:MM-HH:MM)",
            id="no-dash",
        ),
        pytest.param(
            {"timezone": "UTC", "open": {"mon": "09:00-12:00, closed"}},
            ("open", "mon"),
            "'closed' is not a range of times (HH:MM-HH:MM)",
            id="closed-among-hours",
        ),
        pytest.param(
            {"timezone": "UTC", "open": {"mon": "09:00-12:00,"}},
            ("open", "mon"),
            "'' is not a range of times (HH:MM-HH:MM)",
            id="trailing-comma",
        ),
        pytest.param(
            {"timezone": "UTC", "open": {"mon": "24:00-02:00"}},
            ("open", "mon"),
            "'24:00-02:00' starts at 24:00: 24:00 can only end a range",
            id="starts-at-24:00",
        ),
        pytest.param(
            {"timezone": "UTC", "open": {"mon": "09:00-09:00"}},
            ("open", "mon"),
            "'09:00-09:00' starts and ends at the same time (the whole day is 00:00-24:00)",
            id="empty-range",
        ),
        pytest.param(
            {"timezone": "UTC", "open": {"mon": "00:00-00:00"}},
            ("open", "mon"),
            "'00:00-00:00' starts and ends at the same time (the whole day is 00:00-24:00)",
            id="midnight-to-midnight",
        ),
        pytest.param(
            {"timezone": "UTC", "open": {"mon": "09:00-13:00, 12:00-18:00"}},
            ("open", "mon"),
            "'12:00-18:00' overlaps '09:00-13:00'",
            id="overlap",
        ),
        pytest.param(
            {"timezone": "UTC", "open": {"mon": ["12:00-18:00", "09:00-12:30"]}},
            ("open", "mon", 0),
            "'12:00-18:00' overlaps '09:00-12:30'",
            id="overlap-in-a-list",
        ),
        pytest.param(
            {"timezone": "UTC", "open": {"mon": "20:00-02:00, 23:00-23:30"}},
            ("open", "mon"),
            "'23:00-23:30' overlaps '20:00-02:00'",
            id="overlap-with-night-shift",
        ),
        pytest.param(
            {"timezone": "UTC", "open": {"mon": ["09:00-12:00", "13:00-25:00"]}},
            ("open", "mon", 1),
            "'25:00' is not a time (HH:MM, 00:00-24:00)",
            id="bad-list-item",
        ),
        pytest.param(
            {"timezone": "UTC", "open": {"mon": ["09:00-12:00", "closed"]}},
            ("open", "mon", 1),
            "'closed' cannot be listed with hours",
            id="closed-listed-with-hours",
        ),
        pytest.param(
            {"timezone": "UTC", "open": {"mon": ["09:00-12:00", 13]}},
            ("open", "mon", 1),
            "expected hours like '09:00-18:00' or 'closed', got a number",
            id="list-item-a-number",
        ),
        pytest.param(
            {"timezone": "UTC", "open": {"mon": ""}},
            ("open", "mon"),
            "no hours: expected hours like '09:00-18:00' or 'closed'",
            id="empty-text",
        ),
        pytest.param(
            {"timezone": "UTC", "open": {"mon": None}},
            ("open", "mon"),
            "expected hours like '09:00-18:00' or 'closed', got nothing",
            id="nothing",
        ),
        pytest.param(
            {"timezone": "UTC", "open": {"sat": 600}},
            ("open", "sat"),
            "expected hours like '09:00-18:00' or 'closed', got a number (quote "
            "times: '10:00' unquoted is a number in YAML)",
            id="sexagesimal",
        ),
        pytest.param(
            {"timezone": "UTC", "open": {"mon": False}},
            ("open", "mon"),
            "expected hours like '09:00-18:00' or 'closed', got true/false",
            id="false",
        ),
        pytest.param(
            {"timezone": "UTC", "open": {"mon": {"from": "09:00"}}},
            ("open", "mon"),
            "expected hours like '09:00-18:00' or 'closed', got a mapping",
            id="mapping",
        ),
        # Closed dates.
        pytest.param(
            {**MON_OPEN, "closed": "2026-12-31"},
            ("closed",),
            "expected a list of dates like '2026-12-31' or ranges like "
            "'2026-12-31..2027-01-08', got the text '2026-12-31'",
            id="closed-not-a-list",
        ),
        pytest.param(
            {**MON_OPEN, "closed": ["2026-12-31", "2026-02-30"]},
            ("closed", 1),
            "'2026-02-30' is not a date (YYYY-MM-DD)",
            id="no-such-date",
        ),
        pytest.param(
            {**MON_OPEN, "closed": ["20261231"]},
            ("closed", 0),
            "'20261231' is not a date (YYYY-MM-DD)",
            id="basic-format",
        ),
        pytest.param(
            {**MON_OPEN, "closed": ["2026-W53-4"]},
            ("closed", 0),
            "'2026-W53-4' is not a date (YYYY-MM-DD)",
            id="week-date",
        ),
        pytest.param(
            {**MON_OPEN, "closed": ["31.12.2026"]},
            ("closed", 0),
            "'31.12.2026' is not a date (YYYY-MM-DD)",
            id="dotted",
        ),
        pytest.param(
            {**MON_OPEN, "closed": ["2026-12-31..2027-13-01"]},
            ("closed", 0),
            "'2027-13-01' is not a date (YYYY-MM-DD)",
            id="range-bad-end",
        ),
        pytest.param(
            {**MON_OPEN, "closed": ["2026-12-31.."]},
            ("closed", 0),
            "'' is not a date (YYYY-MM-DD)",
            id="range-no-end",
        ),
        pytest.param(
            {**MON_OPEN, "closed": ["2027-01-08..2026-12-31"]},
            ("closed", 0),
            "'2027-01-08..2026-12-31' ends before it starts",
            id="range-backwards",
        ),
        pytest.param(
            {**MON_OPEN, "closed": ["0001-01-01..9999-12-31"]},
            ("closed", 0),
            f"closes more than {MAX_CLOSED_DAYS} days in all",
            id="range-too-long",
        ),
        pytest.param(
            {**MON_OPEN, "closed": ["2026-01-01..2040-01-01", "2050-01-01..2070-01-01"]},
            ("closed", 1),
            f"closes more than {MAX_CLOSED_DAYS} days in all",
            id="too-many-days-in-all",
        ),
        pytest.param(
            {**MON_OPEN, "closed": [datetime(2026, 12, 31, 10, 0)]},
            ("closed", 0),
            "expected dates like '2026-12-31' or ranges like '2026-12-31..2027-01-08', "
            "got a date and time",
            id="datetime",
        ),
        pytest.param(
            {**MON_OPEN, "closed": [20261231]},
            ("closed", 0),
            "expected dates like '2026-12-31' or ranges like '2026-12-31..2027-01-08', "
            "got a number",
            id="number",
        ),
    ],
)
def test_errors(spec: Any, path: tuple[str | int, ...], problem: str) -> None:
    with pytest.raises(CalendarError) as caught:
        parse_calendar("office", spec)
    assert (caught.value.path, str(caught.value)) == (path, problem)
    assert isinstance(caught.value, ValueError)


def test_long_text_is_cut_short_in_messages() -> None:
    with pytest.raises(CalendarError) as caught:
        calendar(mon="x" * 10_000)
    assert (
        str(caught.value)
        == "'xxxxxxxxxxxxxxxxxxxx…' (10000 characters) is not a range of times (HH:MM-HH:MM)"
    )


# --- is_open ---------------------------------------------------------------------------------

CALENDARS = {
    "office": parse_calendar(
        "office",
        {
            "timezone": "Europe/Moscow",
            "open": {"mon-fri": "09:00-18:00", "sat": "10:00-14:00"},
            "closed": ["2026-12-31", "2027-01-01"],
        },
    ),
    # Open around the clock but on 2027-01-01 (Moscow's date).
    "moscow-all-day": parse_calendar(
        "all-day",
        {"timezone": "Europe/Moscow", "open": {"mon-sun": "00:00-24:00"}, "closed": ["2027-01-01"]},
    ),
    "monday": calendar(mon="00:00-24:00"),
    "late": calendar(mon="22:00-24:00"),
    "friday-night": calendar(fri="22:00-02:00"),
    "sunday-night": calendar(sun="22:00-02:00"),
    "nightly": parse_calendar(
        "nightly",
        {"timezone": "UTC", "open": {"mon-sun": "22:00-02:00"}, "closed": ["2026-12-31"]},
    ),
    "berlin-gap": calendar("Europe/Berlin", sun="02:00-03:00"),
    "berlin-around-gap": calendar("Europe/Berlin", sun="01:00-04:00"),
    "berlin-day": calendar("Europe/Berlin", mon_sun="09:00-18:00"),
    "berlin-night": calendar("Europe/Berlin", sat="22:00-06:00"),
    "ny-early": calendar("America/New_York", sun="01:00-04:00"),
    "ny-one-to-two": calendar("America/New_York", sun="01:00-02:00"),
    "ny-day": calendar("America/New_York", mon_sun="09:00-17:00"),
}


@pytest.mark.parametrize(
    ("name", "now", "expected"),
    [
        # The issue's office, 2026-12-07 is a Monday; `now` in Moscow's offset, in UTC, elsewhere.
        pytest.param("office", "2026-12-07T10:00+03:00", True, id="office-msk"),
        pytest.param("office", "2026-12-07T07:00Z", True, id="office-utc"),
        pytest.param("office", "2026-12-07T02:00-05:00", True, id="office-new-york-offset"),
        pytest.param("office", "2026-12-07T08:59:59+03:00", False, id="office-before-opening"),
        pytest.param("office", "2026-12-07T05:59:59Z", False, id="office-before-opening-utc"),
        pytest.param("office", "2026-12-07T06:00Z", True, id="office-opens-at-9"),
        pytest.param("office", "2026-12-07T14:59:59.999999Z", True, id="office-last-moment"),
        pytest.param("office", "2026-12-07T15:00Z", False, id="office-closes-at-18"),
        pytest.param("office", "2026-12-07T18:00+03:00", False, id="office-closes-at-18-msk"),
        pytest.param("office", "2026-12-07T12:00-05:00", False, id="office-20-msk"),
        # Monday 22:00 UTC is Tuesday 01:00 in Moscow.
        pytest.param("office", "2026-12-07T22:00Z", False, id="office-utc-evening-is-night"),
        pytest.param("office", "2026-12-12T11:00+03:00", True, id="office-saturday"),
        pytest.param("office", "2026-12-12T14:00+03:00", False, id="office-saturday-closes"),
        pytest.param("office", "2026-12-13T12:00+03:00", False, id="office-sunday"),
        # 2026-12-31 is a Thursday, 2027-01-01 a Friday: both closed.
        pytest.param("office", "2026-12-31T12:00+03:00", False, id="office-closed-thursday"),
        pytest.param("office", "2027-01-01T12:00+03:00", False, id="office-closed-friday"),
        pytest.param("office", "2026-12-30T12:00+03:00", True, id="office-day-before"),
        # Closed dates are Moscow's: 2026-12-31T22:30Z is already 2027-01-01 there.
        pytest.param("moscow-all-day", "2026-12-31T20:59:59Z", True, id="msk-dec-31-23:59:59"),
        pytest.param("moscow-all-day", "2026-12-31T21:00Z", False, id="msk-jan-1-00:00"),
        pytest.param("moscow-all-day", "2026-12-31T22:30Z", False, id="utc-dec-31-is-msk-jan-1"),
        pytest.param("moscow-all-day", "2027-01-01T20:59:59Z", False, id="msk-jan-1-23:59:59"),
        pytest.param("moscow-all-day", "2027-01-01T21:00Z", True, id="msk-jan-2-00:00"),
        pytest.param("moscow-all-day", "2027-01-01T22:30+01:00", True, id="cet-jan-1-is-msk-jan-2"),
        # Midnight boundaries (2026-12-07 is a Monday).
        pytest.param("monday", "2026-12-06T23:59:59Z", False, id="sunday-23:59:59"),
        pytest.param("monday", "2026-12-06T23:59:59.999999Z", False, id="sunday-last-microsecond"),
        pytest.param("monday", "2026-12-07T00:00Z", True, id="monday-00:00"),
        pytest.param("monday", "2026-12-07T23:59:59.999999Z", True, id="monday-last-microsecond"),
        pytest.param("monday", "2026-12-08T00:00Z", False, id="tuesday-00:00"),
        pytest.param("late", "2026-12-07T21:59:59Z", False, id="24:00-end-before-start"),
        pytest.param("late", "2026-12-07T22:00Z", True, id="24:00-end-start"),
        pytest.param("late", "2026-12-07T23:59:59Z", True, id="24:00-end-23:59:59"),
        pytest.param("late", "2026-12-08T00:00Z", False, id="24:00-end-is-exclusive"),
        # Night shifts: Friday 2026-12-11 22:00 until Saturday 02:00.
        pytest.param("friday-night", "2026-12-11T01:00Z", False, id="night-thursday-had-none"),
        pytest.param("friday-night", "2026-12-11T21:59:59Z", False, id="night-before"),
        pytest.param("friday-night", "2026-12-11T22:00Z", True, id="night-starts"),
        pytest.param("friday-night", "2026-12-11T23:59:59Z", True, id="night-before-midnight"),
        pytest.param("friday-night", "2026-12-12T00:00Z", True, id="night-midnight"),
        pytest.param("friday-night", "2026-12-12T01:59:59Z", True, id="night-tail"),
        pytest.param("friday-night", "2026-12-12T02:00Z", False, id="night-ends"),
        pytest.param("friday-night", "2026-12-12T22:00Z", False, id="night-not-saturday"),
        pytest.param("friday-night", "2026-12-12T03:00+03:00", True, id="night-in-another-zone"),
        pytest.param("sunday-night", "2026-12-14T01:00Z", True, id="night-wraps-into-monday"),
        pytest.param("sunday-night", "2026-12-14T23:00Z", False, id="night-not-monday"),
        # Closed 2026-12-31 (Thursday): its own shift is cancelled, tail included; the shift
        # that started on the 30th still ends at 02:00 on the 31st.
        pytest.param("nightly", "2026-12-31T01:00Z", True, id="closed-keeps-previous-tail"),
        pytest.param("nightly", "2026-12-31T23:00Z", False, id="closed-cancels-its-shift"),
        pytest.param("nightly", "2027-01-01T01:00Z", False, id="closed-cancels-its-tail"),
        pytest.param("nightly", "2027-01-01T23:00Z", True, id="day-after-closed"),
        # Berlin springs forward on Sunday 2026-03-29 at 01:00Z: 02:00 CET becomes 03:00 CEST.
        pytest.param("berlin-gap", "2026-03-29T00:59:59Z", False, id="berlin-spring-01:59:59"),
        pytest.param("berlin-gap", "2026-03-29T01:00Z", False, id="berlin-spring-gap-never-opens"),
        pytest.param("berlin-gap", "2026-04-05T00:30Z", True, id="berlin-gap-hour-next-week"),
        pytest.param("berlin-around-gap", "2026-03-28T23:59:59Z", False, id="berlin-around-00:59"),
        pytest.param("berlin-around-gap", "2026-03-29T00:00Z", True, id="berlin-around-01:00"),
        pytest.param("berlin-around-gap", "2026-03-29T01:00Z", True, id="berlin-around-03:00"),
        pytest.param("berlin-around-gap", "2026-03-29T01:59:59Z", True, id="berlin-around-03:59"),
        pytest.param("berlin-around-gap", "2026-03-29T02:00Z", False, id="berlin-around-04:00"),
        pytest.param("berlin-day", "2026-03-28T08:00Z", True, id="berlin-9-is-8z-in-winter"),
        pytest.param("berlin-day", "2026-03-29T06:59Z", False, id="berlin-spring-08:59-cest"),
        pytest.param("berlin-day", "2026-03-29T07:00Z", True, id="berlin-9-is-7z-in-summer"),
        pytest.param("berlin-day", "2026-03-29T16:00Z", False, id="berlin-spring-18:00-cest"),
        # A night shift across the change: Saturday 22:00 CET until Sunday 06:00 CEST.
        pytest.param("berlin-night", "2026-03-28T21:00Z", True, id="berlin-night-22:00-cet"),
        pytest.param("berlin-night", "2026-03-29T03:59Z", True, id="berlin-night-05:59-cest"),
        pytest.param("berlin-night", "2026-03-29T04:00Z", False, id="berlin-night-06:00-cest"),
        # Berlin falls back on Sunday 2026-10-25 at 01:00Z: 03:00 CEST becomes 02:00 CET, so
        # 02:00-03:00 happens twice and both are in the range.
        pytest.param("berlin-gap", "2026-10-24T23:59:59Z", False, id="berlin-fall-01:59:59"),
        pytest.param("berlin-gap", "2026-10-25T00:00Z", True, id="berlin-fall-02:00-cest"),
        pytest.param("berlin-gap", "2026-10-25T00:30Z", True, id="berlin-fall-02:30-cest"),
        pytest.param("berlin-gap", "2026-10-25T00:59:59Z", True, id="berlin-fall-02:59-cest"),
        pytest.param("berlin-gap", "2026-10-25T01:00Z", True, id="berlin-fall-02:00-cet"),
        pytest.param("berlin-gap", "2026-10-25T01:30Z", True, id="berlin-fall-02:30-cet"),
        pytest.param("berlin-gap", "2026-10-25T02:30+01:00", True, id="berlin-fall-local-cet"),
        pytest.param("berlin-gap", "2026-10-25T02:30+02:00", True, id="berlin-fall-local-cest"),
        pytest.param("berlin-gap", "2026-10-25T02:00Z", False, id="berlin-fall-03:00-cet"),
        pytest.param("berlin-day", "2026-10-25T07:00Z", False, id="berlin-fall-08:00-cet"),
        pytest.param("berlin-day", "2026-10-25T08:00Z", True, id="berlin-fall-09:00-cet"),
        # New York springs forward on Sunday 2026-03-08 at 07:00Z: 02:00 EST becomes 03:00 EDT.
        pytest.param("ny-early", "2026-03-08T05:59Z", False, id="ny-spring-00:59-est"),
        pytest.param("ny-early", "2026-03-08T06:00Z", True, id="ny-spring-01:00-est"),
        pytest.param("ny-early", "2026-03-08T06:59:59Z", True, id="ny-spring-01:59-est"),
        pytest.param("ny-early", "2026-03-08T07:00Z", True, id="ny-spring-03:00-edt"),
        pytest.param("ny-early", "2026-03-08T07:59:59Z", True, id="ny-spring-03:59-edt"),
        pytest.param("ny-early", "2026-03-08T08:00Z", False, id="ny-spring-04:00-edt"),
        pytest.param("ny-one-to-two", "2026-03-08T07:00Z", False, id="ny-spring-no-02:00"),
        pytest.param("ny-day", "2026-03-07T13:59Z", False, id="ny-08:59-est"),
        pytest.param("ny-day", "2026-03-07T14:00Z", True, id="ny-9-is-14z-in-winter"),
        pytest.param("ny-day", "2026-03-09T12:59Z", False, id="ny-08:59-edt"),
        pytest.param("ny-day", "2026-03-09T13:00Z", True, id="ny-9-is-13z-in-summer"),
        pytest.param("ny-day", "2026-03-09T21:00Z", False, id="ny-17:00-edt"),
        # New York falls back on Sunday 2026-11-01 at 06:00Z: 02:00 EDT becomes 01:00 EST.
        pytest.param("ny-one-to-two", "2026-11-01T04:59:59Z", False, id="ny-fall-00:59-edt"),
        pytest.param("ny-one-to-two", "2026-11-01T05:00Z", True, id="ny-fall-01:00-edt"),
        pytest.param("ny-one-to-two", "2026-11-01T05:30Z", True, id="ny-fall-01:30-edt"),
        pytest.param("ny-one-to-two", "2026-11-01T06:00Z", True, id="ny-fall-01:00-est"),
        pytest.param("ny-one-to-two", "2026-11-01T06:30Z", True, id="ny-fall-01:30-est"),
        pytest.param("ny-one-to-two", "2026-11-01T06:59:59Z", True, id="ny-fall-01:59-est"),
        pytest.param("ny-one-to-two", "2026-11-01T07:00Z", False, id="ny-fall-02:00-est"),
    ],
)
def test_is_open(name: str, now: str, expected: bool) -> None:
    assert is_open(CALENDARS[name], at(now)) is expected


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        is_open(CALENDARS["office"], datetime(2026, 12, 7, 10, 0))


def test_extreme_moments() -> None:
    # The first day has no day before it; a moment that does not fit in the calendar's zone.
    assert is_open(CALENDARS["monday"], datetime(1, 1, 1, tzinfo=UTC))
    with pytest.raises(ValueError, match="out of range"):
        is_open(CALENDARS["ny-day"], datetime(1, 1, 1, tzinfo=UTC))


@settings(max_examples=300, deadline=None)
@given(
    moment=st.datetimes(
        min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
    ),
    offset_minutes=st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59),
    name=st.sampled_from(sorted(CALENDARS)),
)
def test_the_zone_now_is_given_in_does_not_matter(
    moment: datetime, offset_minutes: int, name: str
) -> None:
    elsewhere = moment.astimezone(timezone(timedelta(minutes=offset_minutes)))
    assert is_open(CALENDARS[name], elsewhere) == is_open(CALENDARS[name], moment)


@settings(max_examples=300, deadline=None)
@given(
    moment=st.datetimes(
        min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
    )
)
def test_wall_clock_reference(moment: datetime) -> None:
    """is_open agrees with a plain reading of the rules on the local wall clock."""
    berlin = CALENDARS["berlin-night"]  # Saturday 22:00 until Sunday 06:00
    local = moment.astimezone(zoneinfo.ZoneInfo("Europe/Berlin"))
    expected = (local.weekday() == 5 and local.hour >= 22) or (
        local.weekday() == 6 and local.hour < 6
    )
    assert is_open(berlin, moment) is expected


@pytest.fixture
def no_system_zones() -> Iterator[None]:
    """As on a machine without /usr/share/zoneinfo: only the tzdata package has zones."""
    saved = zoneinfo.TZPATH
    zoneinfo.reset_tzpath(to=[])
    zoneinfo.ZoneInfo.clear_cache()
    try:
        yield
    finally:
        zoneinfo.reset_tzpath(to=saved)
        zoneinfo.ZoneInfo.clear_cache()


@pytest.mark.usefixtures("no_system_zones")
def test_zones_come_from_tzdata_without_system_zones() -> None:
    assert zoneinfo.TZPATH == ()
    office = parse_calendar("office", {"timezone": "Europe/Moscow", "open": {"mon": "09:00-18:00"}})
    assert is_open(office, at("2026-12-07T06:00Z"))
    assert not is_open(office, at("2026-12-07T05:59Z"))
