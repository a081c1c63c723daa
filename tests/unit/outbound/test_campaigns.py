"""Campaign policy: the CLI options' parsers and their messages, the policy's checks and its
stored form, call windows on the contact's wall clock (across DST changes in New York and
Moscow), retries per outcome, and the per-number limits per day and per week."""

from __future__ import annotations

import json
import zoneinfo
from collections.abc import Mapping
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voicebot.errors import OutboundError
from voicebot.outbound.campaigns import (
    DEFAULT_RETRY,
    NextStep,
    Policy,
    _wall_reached,
    after_attempt,
    format_days,
    format_duration,
    in_window,
    known_timezone,
    limit_allows,
    next_allowed,
    parse_days,
    parse_duration,
    parse_retry,
    parse_timezone,
    parse_window,
    plan_next,
)
from voicebot.outbound.model import Outcome

NEW_YORK = "America/New_York"
MOSCOW = "Europe/Moscow"
EVERY_DAY = frozenset(range(7))
MINUTE = timedelta(minutes=1)


def utc(text: str) -> datetime:
    """A moment written in UTC: "2026-03-09 13:00"."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def local(text: str, zone: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=zoneinfo.ZoneInfo(zone))


# --- the policy ------------------------------------------------------------------------------


def test_the_defaults_are_the_issues() -> None:
    default = Policy()
    assert (default.window_start, default.window_end) == (time(9), time(20))
    assert default.days == frozenset({0, 1, 2, 3, 4, 5})
    assert default.timezone == "UTC"
    assert default.max_attempts == 3
    assert dict(default.retry) == {
        Outcome.BUSY: timedelta(minutes=10),
        Outcome.NO_ANSWER: timedelta(hours=1),
        Outcome.FAILED: timedelta(minutes=30),
        Outcome.MACHINE: timedelta(hours=4),
    }
    assert (default.per_day, default.per_week) == (2, 4)
    assert default.to_dict() == {
        "window": "09:00-20:00",
        "days": "mon-sat",
        "timezone": "UTC",
        "max_attempts": 3,
        "retry": "busy=10m,no_answer=1h,failed=30m,machine=4h",
        "per_day": 2,
        "per_week": 4,
    }


@pytest.mark.parametrize(
    "made",
    [
        pytest.param(Policy(), id="defaults"),
        pytest.param(
            Policy(
                window_start=time(8, 30),
                window_end=time(21, 15),
                days=frozenset({0, 2, 4, 6}),
                timezone=MOSCOW,
                max_attempts=5,
                retry={Outcome.BUSY: timedelta(seconds=90), Outcome.MACHINE: timedelta(days=2)},
                per_day=3,
                per_week=10,
            ),
            id="everything-changed",
        ),
        pytest.param(Policy(days=frozenset({5, 6, 0})), id="weekend-and-monday"),
    ],
)
def test_the_stored_form_is_json_and_reads_back_the_same(made: Policy) -> None:
    stored = json.loads(json.dumps(made.to_dict()))
    assert Policy.from_dict(stored) == made


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        pytest.param({}, Policy(), id="empty-is-defaults"),
        pytest.param({"max_attempts": 5}, Policy(max_attempts=5), id="one-key"),
        pytest.param(
            {"retry": {"busy": 600, "machine": "2h"}},
            Policy(
                retry={Outcome.BUSY: timedelta(minutes=10), Outcome.MACHINE: timedelta(hours=2)}
            ),
            id="retry-as-a-mapping",
        ),
    ],
)
def test_a_stored_policy_may_leave_keys_out(stored: dict[str, Any], expected: Policy) -> None:
    assert Policy.from_dict(stored) == expected


@pytest.mark.parametrize(
    ("stored", "message"),
    [
        pytest.param({"colour": "red"}, "stored policy: unknown keys colour", id="unknown-key"),
        pytest.param([], "stored policy: expected a mapping, got list", id="not-a-mapping"),
        pytest.param({"window": 9}, "stored policy: window: expected a string, got int", id="type"),
        pytest.param({"window": "20:00-09:00"}, "stored policy: --window 20:00-09:00", id="value"),
        pytest.param({"max_attempts": "3"}, "stored policy: --max-attempts '3'", id="text-count"),
        pytest.param({"max_attempts": True}, "stored policy: --max-attempts True", id="bool"),
        pytest.param({"retry": {"answered": 5}}, "answered is not retried", id="retry-answered"),
        pytest.param({"retry": {"busy": 1e300}}, "--retry busy: 1e+300 s is no delay", id="huge"),
        pytest.param({"retry": {"busy": 1.5}}, "not a whole number of seconds", id="fraction"),
        pytest.param({"retry": {"busy": None}}, "--retry busy: None is not a duration", id="none"),
        pytest.param({"retry": 5}, "retry: expected a string or a mapping", id="retry-type"),
        pytest.param({"timezone": "Mars/Base"}, "--timezone 'Mars/Base'", id="timezone"),
    ],
)
def test_a_bad_stored_policy_is_refused(stored: Any, message: str) -> None:
    with pytest.raises(OutboundError) as error:
        Policy.from_dict(stored)
    assert str(error.value).startswith("stored policy: ")
    assert message in str(error.value)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        pytest.param(
            {"window_start": time(20), "window_end": time(9)},
            "--window 20:00-09:00: the window ends before it starts; windows that run past "
            "midnight are not supported",
            id="overnight",
        ),
        pytest.param(
            {"window_start": time(9), "window_end": time(9)},
            "--window 09:00-09:00: the window is empty",
            id="empty-window",
        ),
        pytest.param({"window_start": time(9, 0, 30)}, "give whole minutes (HH:MM)", id="seconds"),
        pytest.param({"window_start": time(9, tzinfo=UTC)}, "without a time zone", id="aware-time"),
        pytest.param({"window_end": "20:00"}, "--window: expected two times", id="text-time"),
        pytest.param({"days": frozenset()}, "--days: no day given", id="no-days"),
        pytest.param({"days": frozenset({7})}, "--days: 7 is not a weekday number", id="day-7"),
        pytest.param({"timezone": "Mars/Base"}, "--timezone 'Mars/Base': unknown", id="zone"),
        pytest.param({"timezone": "localtime"}, "--timezone 'localtime'", id="machine-zone"),
        pytest.param(
            {"max_attempts": 0}, "--max-attempts 0: expected a whole number from 1", id="0"
        ),
        pytest.param({"max_attempts": 101}, "--max-attempts 101", id="too-many"),
        pytest.param({"per_day": 0}, "--per-day 0", id="per-day"),
        pytest.param({"per_week": -1}, "--per-week -1", id="per-week"),
        pytest.param(
            {"retry": {Outcome.BUSY: timedelta(0)}},
            "--retry busy=0s: the delay must be from 1s to 30d",
            id="zero-delay",
        ),
        pytest.param(
            {"retry": {Outcome.BUSY: timedelta(days=31)}},
            "--retry busy=31d: the delay must be from 1s to 30d",
            id="long-delay",
        ),
        pytest.param(
            {"retry": {Outcome.ANSWERED: timedelta(hours=1)}},
            "--retry: answered is not retried (only busy, no_answer, failed, machine)",
            id="answered",
        ),
    ],
)
def test_an_invalid_policy_cannot_be_made(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(OutboundError) as error:
        Policy(**changes)
    assert message in str(error.value)


def test_a_policy_is_frozen_and_its_retry_read_only() -> None:
    made = Policy(retry={Outcome.BUSY: timedelta(minutes=5)})
    assert made.retry[Outcome.NO_ANSWER] == DEFAULT_RETRY[Outcome.NO_ANSWER]  # merged
    with pytest.raises(TypeError):
        made.retry[Outcome.BUSY] = timedelta(1)  # type: ignore[index]
    assert hash(made) == hash(Policy(retry={Outcome.BUSY: timedelta(minutes=5)}))


# --- the options -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "window"),
    [
        ("09:00-20:00", (time(9), time(20))),
        (" 9:30 - 17:45 ", (time(9, 30), time(17, 45))),
        ("00:00-23:59", (time(0), time(23, 59))),
    ],
)
def test_parse_window(text: str, window: tuple[time, time]) -> None:
    assert parse_window(text) == window


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("9-20", "--window '9-20': expected HH:MM-HH:MM, e.g. 09:00-20:00"),
        ("09:00", "--window '09:00': expected HH:MM-HH:MM"),
        ("09:00-20:00-21:00", "expected HH:MM-HH:MM"),
        ("09:00-24:00", "--window '09:00-24:00': 24:00 is not a time of day (00:00 to 23:59)"),
        ("09:60-20:00", "09:60 is not a time of day"),
        ("٠٩:00-20:00", "expected HH:MM-HH:MM"),
        (
            "22:00-06:00",
            "--window 22:00-06:00: the window ends before it starts; windows that run past "
            "midnight are not supported: give one within a day, e.g. 09:00-20:00",
        ),
        ("10:00-10:00", "--window 10:00-10:00: the window is empty"),
    ],
)
def test_parse_window_refuses(text: str, message: str) -> None:
    with pytest.raises(OutboundError) as error:
        parse_window(text)
    assert message in str(error.value)


@pytest.mark.parametrize(
    ("text", "days"),
    [
        ("mon-sat", {0, 1, 2, 3, 4, 5}),
        ("mon,wed,fri", {0, 2, 4}),
        ("mon-fri,sun", {0, 1, 2, 3, 4, 6}),
        ("MON - Fri", {0, 1, 2, 3, 4}),
        ("sun", {6}),
        ("fri-mon", {4, 5, 6, 0}),
        ("mon-sun", set(range(7))),
        ("tue-tue", {1}),
    ],
)
def test_parse_days(text: str, days: set[int]) -> None:
    assert parse_days(text) == frozenset(days)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "--days '': expected days such as mon-sat, mon,wed,fri or mon-fri,sun"),
        ("mon,,fri", "--days 'mon,,fri': expected days such as"),
        ("mon-tue-wed", "expected days such as"),
        ("monday", "--days 'monday': 'monday' is not a day (mon, tue, wed, thu, fri, sat, sun)"),
        ("mon-xyz", "'xyz' is not a day"),
        ("1-5", "'1' is not a day"),
    ],
)
def test_parse_days_refuses(text: str, message: str) -> None:
    with pytest.raises(OutboundError) as error:
        parse_days(text)
    assert message in str(error.value)


@given(st.frozensets(st.integers(min_value=0, max_value=6), min_size=1))
def test_days_read_back_as_written(days: frozenset[int]) -> None:
    assert parse_days(format_days(days)) == days


@pytest.mark.parametrize(
    ("days", "text"),
    [({0, 1, 2, 3, 4, 5}, "mon-sat"), ({0, 2, 4}, "mon,wed,fri"), ({5, 6}, "sat,sun")],
)
def test_format_days(days: set[int], text: str) -> None:
    assert format_days(days) == text


@pytest.mark.parametrize(
    ("text", "delay"),
    [
        ("30s", timedelta(seconds=30)),
        ("10m", timedelta(minutes=10)),
        (" 1h ", timedelta(hours=1)),
        ("2d", timedelta(days=2)),
        ("90M", timedelta(minutes=90)),
        ("0s", timedelta(0)),
    ],
)
def test_parse_duration(text: str, delay: timedelta) -> None:
    assert parse_duration(text) == delay
    assert parse_duration(format_duration(delay)) == delay


@pytest.mark.parametrize("text", ["10", "m", "1.5h", "-5m", "10 min", "1h30m", "", "1w"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(OutboundError) as error:
        parse_duration(text, option="--ring")
    assert str(error.value) == (
        f"--ring: {text!r} is not a duration (a whole number and s, m, h or d: 30s, 10m, 1h, 2d)"
    )


@pytest.mark.parametrize(
    ("text", "changed"),
    [
        (
            "busy=10m,no_answer=1h,failed=30m,machine=4h",
            {},
        ),
        ("busy=5m", {Outcome.BUSY: timedelta(minutes=5)}),
        (
            " No_Answer = 2h , machine=1d",
            {Outcome.NO_ANSWER: timedelta(hours=2), Outcome.MACHINE: timedelta(days=1)},
        ),
    ],
)
def test_parse_retry_merges_over_the_defaults(
    text: str, changed: Mapping[Outcome, timedelta]
) -> None:
    assert parse_retry(text) == {**DEFAULT_RETRY, **changed}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("busy", "--retry 'busy': expected outcome=delay pairs, e.g. busy=10m,no_answer=1h"),
        ("=10m", "expected outcome=delay pairs"),
        ("busy=10m,,failed=1m", "expected outcome=delay pairs"),
        ("answered=1h", "--retry: answered is not retried (only busy, no_answer, failed, machine)"),
        ("dnc=1h", "--retry: dnc is not retried"),
        ("voicemail=1h", "--retry: 'voicemail' is not an outcome (busy, no_answer, failed"),
        ("busy=10m,busy=5m", "--retry 'busy=10m,busy=5m': busy is given twice"),
        ("busy=10x", "--retry busy: '10x' is not a duration"),
        ("busy=0m", "--retry busy=0s: the delay must be from 1s to 30d"),
        ("machine=31d", "--retry machine=31d: the delay must be from 1s to 30d"),
    ],
)
def test_parse_retry_refuses(text: str, message: str) -> None:
    with pytest.raises(OutboundError) as error:
        parse_retry(text)
    assert message in str(error.value)


@pytest.mark.parametrize(
    ("name", "known"),
    [
        ("Europe/Moscow", True),
        ("UTC", True),
        ("Etc/GMT-3", True),
        ("", False),
        ("Mars/Base", False),
        ("America", False),
        ("../../etc/passwd", False),
        ("/tmp/an-absolute-path", False),
        ("localtime", False),
        ("Europe/Moscow\x00", False),
        ("\udcff", False),
    ],
)
def test_known_timezone(name: str, known: bool) -> None:
    assert known_timezone(name) is known
    if not known:
        with pytest.raises(OutboundError, match=r"--timezone .*: unknown time zone"):
            parse_timezone(name)


# --- call windows ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rules", "at", "tz", "inside"),
    [
        pytest.param(Policy(), utc("2026-06-10 09:00"), None, True, id="opening"),
        pytest.param(Policy(), utc("2026-06-10 08:59:59"), None, False, id="just-before"),
        pytest.param(Policy(), utc("2026-06-10 19:59:59"), None, True, id="just-inside"),
        pytest.param(Policy(), utc("2026-06-10 20:00"), None, False, id="closing-is-out"),
        pytest.param(Policy(), utc("2026-06-14 12:00"), None, False, id="sunday"),
        pytest.param(Policy(), utc("2026-06-10 07:00"), MOSCOW, True, id="contact-zone"),
        pytest.param(Policy(), utc("2026-06-10 18:00"), MOSCOW, False, id="late-in-moscow"),
        pytest.param(
            Policy(timezone=MOSCOW), utc("2026-06-10 18:00"), None, False, id="campaign-zone"
        ),
        pytest.param(
            Policy(timezone=MOSCOW), utc("2026-06-10 18:00"), "UTC", True, id="contact-wins"
        ),
        pytest.param(
            Policy(), local("2026-06-10 10:00", NEW_YORK), NEW_YORK, True, id="any-zone-in"
        ),
        pytest.param(
            Policy(), utc("2026-06-13 23:30"), "Pacific/Kiritimati", False, id="already-sunday"
        ),
    ],
)
def test_in_window(rules: Policy, at: datetime, tz: str | None, inside: bool) -> None:
    assert in_window(rules, at, tz) is inside


@pytest.mark.parametrize(
    ("rules", "after", "tz", "expected"),
    [
        pytest.param(Policy(), utc("2026-06-10 12:34:56.5"), None, "2026-06-10 12:34:56.5",
                     id="inside-is-now"),
        pytest.param(Policy(), utc("2026-06-10 06:00"), None, "2026-06-10 09:00", id="morning"),
        pytest.param(Policy(), utc("2026-06-10 20:00"), None, "2026-06-11 09:00", id="evening"),
        pytest.param(Policy(), utc("2026-06-13 20:00"), None, "2026-06-15 09:00",
                     id="saturday-night-to-monday"),
        pytest.param(Policy(), utc("2026-06-10 18:00"), MOSCOW, "2026-06-11 06:00",
                     id="moscow-contact"),
        pytest.param(Policy(days=frozenset({2})), utc("2026-06-10 20:00"), None,
                     "2026-06-17 09:00", id="a-week-later"),
        # New York springs forward on Sunday 2026-03-08 02:00 EST -> 03:00 EDT.
        pytest.param(Policy(), local("2026-03-07 21:00", NEW_YORK), NEW_YORK,
                     "2026-03-09 13:00", id="ny-spring-forward-over-sunday"),
        pytest.param(Policy(days=EVERY_DAY), local("2026-03-07 21:00", NEW_YORK), NEW_YORK,
                     "2026-03-08 13:00", id="ny-spring-forward-day"),
        pytest.param(Policy(days=EVERY_DAY, window_start=time(2, 30), window_end=time(3, 30)),
                     utc("2026-03-08 05:00"), NEW_YORK, "2026-03-08 07:00",
                     id="ny-opening-skipped-opens-at-the-jump"),
        pytest.param(Policy(days=EVERY_DAY, window_start=time(2), window_end=time(2, 30)),
                     utc("2026-03-08 05:00"), NEW_YORK, "2026-03-09 06:00",
                     id="ny-window-skipped-whole"),
        # ... and falls back on Sunday 2026-11-01 02:00 EDT -> 01:00 EST: 01:00-02:00 twice.
        pytest.param(Policy(), local("2026-10-31 20:30", NEW_YORK), NEW_YORK,
                     "2026-11-02 14:00", id="ny-fall-back-over-sunday"),
        pytest.param(Policy(days=EVERY_DAY, window_start=time(1, 15), window_end=time(1, 45)),
                     utc("2026-11-01 04:00"), NEW_YORK, "2026-11-01 05:15",
                     id="ny-repeated-hour-first"),
        pytest.param(Policy(days=EVERY_DAY, window_start=time(1), window_end=time(1, 30)),
                     utc("2026-11-01 05:40"), NEW_YORK, "2026-11-01 06:00",
                     id="ny-repeated-hour-again"),
        pytest.param(Policy(days=EVERY_DAY, window_start=time(1, 15), window_end=time(1, 30)),
                     utc("2026-11-01 05:40"), NEW_YORK, "2026-11-01 06:15",
                     id="ny-repeated-hour-again-later"),
        pytest.param(Policy(days=EVERY_DAY, window_start=time(1), window_end=time(1, 30)),
                     utc("2026-11-01 06:40"), NEW_YORK, "2026-11-02 06:00",
                     id="ny-after-the-repeat"),
        # Moscow kept summer time until 2010 (+3 -> +4 on 2010-03-28 02:00, back on 10-31
        # 03:00) and left +4 for +3 on 2014-10-26 02:00; there has been no change since.
        pytest.param(Policy(), local("2010-03-27 20:00", MOSCOW), MOSCOW, "2010-03-29 05:00",
                     id="moscow-2010-spring-forward"),
        pytest.param(Policy(days=EVERY_DAY, window_start=time(2, 30), window_end=time(4)),
                     utc("2010-03-27 21:00"), MOSCOW, "2010-03-27 23:00",
                     id="moscow-2010-opening-skipped"),
        pytest.param(Policy(days=EVERY_DAY), local("2010-10-30 20:00", MOSCOW), MOSCOW,
                     "2010-10-31 06:00", id="moscow-2010-fall-back"),
        pytest.param(Policy(), local("2014-10-25 20:00", MOSCOW), MOSCOW, "2014-10-27 06:00",
                     id="moscow-2014-for-good"),
        pytest.param(Policy(), utc("2026-03-27 18:00"), MOSCOW, "2026-03-28 06:00",
                     id="moscow-2026-no-change"),
    ],
)  # fmt: skip
def test_next_allowed(rules: Policy, after: datetime, tz: str | None, expected: str) -> None:
    found = next_allowed(rules, after, tz)
    assert found == utc(expected)
    assert found.tzinfo is UTC
    assert in_window(rules, found, tz)
    if found > after:
        assert not in_window(rules, found - timedelta(seconds=1), tz)


ZONES = [
    "UTC",
    NEW_YORK,
    MOSCOW,
    "Australia/Lord_Howe",  # changes by half an hour
    "America/Santiago",  # changes at midnight
    "Asia/Kathmandu",  # +05:45
]


@settings(max_examples=40, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    after=st.datetimes(
        min_value=datetime(2008, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
    ),
    start_minute=st.integers(min_value=0, max_value=23 * 60),
    length=st.integers(min_value=1, max_value=12 * 60),
    days=st.frozensets(st.integers(min_value=0, max_value=6), min_size=1),
)
def test_next_allowed_is_the_first_moment_inside(
    zone: str, after: datetime, start_minute: int, length: int, days: frozenset[int]
) -> None:
    end_minute = min(start_minute + length, 23 * 60 + 59)
    rules = Policy(
        window_start=time(*divmod(start_minute, 60)),
        window_end=time(*divmod(end_minute, 60)),
        days=days,
        timezone=zone,
    )
    found = next_allowed(rules, after, None)
    assert found >= after
    assert in_window(rules, found, None)
    # Windows open and shut on whole minutes of whole-minute offsets: a scan minute by minute
    # sees every one between.
    moment = after.replace(second=0, microsecond=0) + MINUTE
    while moment < found:
        assert not in_window(rules, moment, None), moment
        moment += MINUTE


@pytest.mark.parametrize(
    ("wall", "zone", "instants"),
    [
        ("2026-06-10 12:00", NEW_YORK, ["2026-06-10 16:00"]),
        ("2026-11-01 01:30", NEW_YORK, ["2026-11-01 05:30", "2026-11-01 06:30"]),
        ("2026-03-08 02:30", NEW_YORK, ["2026-03-08 07:00"]),  # skipped: the jump
        ("2010-03-28 02:15", MOSCOW, ["2010-03-27 23:00"]),
        ("2010-10-31 02:15", MOSCOW, ["2010-10-30 22:15", "2010-10-30 23:15"]),
    ],
)
def test_when_the_wall_clock_reads(wall: str, zone: str, instants: list[str]) -> None:
    reached = _wall_reached(zoneinfo.ZoneInfo(zone), datetime.fromisoformat(wall))
    assert reached == [utc(text) for text in instants]


def test_moments_must_be_aware() -> None:
    with pytest.raises(ValueError, match="has no time zone"):
        next_allowed(Policy(), datetime(2026, 6, 10, 9), None)
    with pytest.raises(ValueError, match="has no time zone"):
        in_window(Policy(), datetime(2026, 6, 10, 9), None)


def test_an_unknown_contact_zone_is_an_error() -> None:
    with pytest.raises(OutboundError, match="unknown time zone 'Mars/Base'"):
        next_allowed(Policy(), utc("2026-06-10 09:00"), "Mars/Base")


# --- retries ---------------------------------------------------------------------------------

NOW = utc("2026-06-10 10:00")


@pytest.mark.parametrize(
    ("outcome", "made", "step"),
    [
        (Outcome.ANSWERED, 1, NextStep(final=Outcome.ANSWERED)),
        (Outcome.MESSAGE_LEFT, 1, NextStep(final=Outcome.MESSAGE_LEFT)),
        (Outcome.BUSY, 1, NextStep(retry_at=NOW + timedelta(minutes=10))),
        (Outcome.NO_ANSWER, 2, NextStep(retry_at=NOW + timedelta(hours=1))),
        (Outcome.FAILED, 1, NextStep(retry_at=NOW + timedelta(minutes=30))),
        (Outcome.MACHINE, 1, NextStep(retry_at=NOW + timedelta(hours=4))),
        (Outcome.BUSY, 3, NextStep(final=Outcome.BUSY)),
        (Outcome.NO_ANSWER, 3, NextStep(final=Outcome.NO_ANSWER)),
        (Outcome.MACHINE, 3, NextStep(final=Outcome.MACHINE)),
        (Outcome.FAILED, 4, NextStep(final=Outcome.FAILED)),
    ],
)
def test_after_attempt(outcome: Outcome, made: int, step: NextStep) -> None:
    assert after_attempt(Policy(), outcome, made, NOW) == step


def test_after_attempt_follows_the_campaigns_rules() -> None:
    rules = Policy(max_attempts=1, retry=parse_retry("busy=1m"))
    assert after_attempt(rules, Outcome.BUSY, 1, NOW) == NextStep(final=Outcome.BUSY)
    rules = Policy(max_attempts=5, retry=parse_retry("busy=1m"))
    moscow_now = NOW.astimezone(zoneinfo.ZoneInfo(MOSCOW))
    step = after_attempt(rules, Outcome.BUSY, 4, moscow_now)
    assert step == NextStep(retry_at=NOW + MINUTE)
    assert step.retry_at is not None and step.retry_at.tzinfo is UTC


@pytest.mark.parametrize("outcome", [Outcome.DNC, Outcome.CANCELLED, Outcome.PENDING])
def test_after_attempt_refuses_what_no_attempt_ends_as(outcome: Outcome) -> None:
    with pytest.raises(ValueError, match="is not how an attempt ends"):
        after_attempt(Policy(), outcome, 1, NOW)


# --- per-number limits -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rules", "earlier", "at", "tz", "expected"),
    [
        pytest.param(Policy(), [], "2026-06-10 10:00", None, "2026-06-10 10:00", id="none"),
        pytest.param(Policy(), ["2026-06-10 09:00"], "2026-06-10 10:00", None,
                     "2026-06-10 10:00", id="one-today"),
        pytest.param(Policy(), ["2026-06-10 09:00", "2026-06-10 09:30"], "2026-06-10 10:00",
                     None, "2026-06-11 00:00", id="two-today"),
        pytest.param(Policy(per_day=3), ["2026-06-10 09:00", "2026-06-10 09:30"],
                     "2026-06-10 10:00", None, "2026-06-10 10:00", id="per-day-3"),
        # 01:00 and 02:00 in Moscow are the day before in UTC.
        pytest.param(Policy(), ["2026-06-09 22:00", "2026-06-09 23:00"], "2026-06-10 07:00",
                     MOSCOW, "2026-06-10 21:00", id="moscow-day"),
        pytest.param(Policy(), ["2026-06-09 22:00", "2026-06-09 23:00"], "2026-06-10 07:00",
                     None, "2026-06-10 07:00", id="the-same-in-utc"),
        pytest.param(Policy(), ["2026-06-08 10:00", "2026-06-09 10:00", "2026-06-10 10:00",
                                "2026-06-11 10:00"], "2026-06-12 10:00", None,
                     "2026-06-15 10:00", id="four-this-week"),
        pytest.param(Policy(), ["2026-06-01 10:00", "2026-06-09 10:00", "2026-06-10 10:00",
                                "2026-06-11 10:00"], "2026-06-12 10:00", None,
                     "2026-06-12 10:00", id="one-is-older-than-a-week"),
        pytest.param(Policy(per_week=2), ["2026-06-09 10:00", "2026-06-11 10:00",
                                          "2026-06-11 12:00"], "2026-06-12 10:00", None,
                     "2026-06-18 10:00", id="two-must-expire"),
        pytest.param(Policy(), ["2026-06-10 09:00", "2026-06-10 23:00"], "2026-06-10 10:00",
                     None, "2026-06-11 00:00", id="a-later-attempt-counts-too"),
        # New York's Sunday 2026-03-08 has 23 hours: the next day starts at 04:00 UTC.
        pytest.param(Policy(), ["2026-03-08 06:00", "2026-03-08 07:00"], "2026-03-08 12:00",
                     NEW_YORK, "2026-03-09 04:00", id="ny-short-day"),
        # Santiago skips from Saturday 2026-09-05 24:00 to Sunday 01:00 (04:00 UTC).
        pytest.param(Policy(), ["2026-09-05 14:00", "2026-09-05 15:00"], "2026-09-06 00:00",
                     "America/Santiago", "2026-09-06 04:00", id="santiago-no-midnight"),
    ],
)  # fmt: skip
def test_limit_allows(
    rules: Policy, earlier: list[str], at: str, tz: str | None, expected: str
) -> None:
    assert limit_allows(rules, [utc(text) for text in earlier], utc(at), tz) == utc(expected)


@pytest.mark.parametrize(
    ("rules", "earlier", "earliest", "tz", "expected"),
    [
        pytest.param(Policy(), [], "2026-06-10 10:00", None, "2026-06-10 10:00", id="now"),
        pytest.param(Policy(), ["2026-06-12 09:00", "2026-06-12 10:00"], "2026-06-12 10:10",
                     None, "2026-06-13 09:00", id="two-today-then-tomorrow-morning"),
        pytest.param(Policy(), ["2026-06-13 09:00", "2026-06-13 10:00"], "2026-06-13 10:10",
                     None, "2026-06-15 09:00", id="saturday-then-monday"),
        pytest.param(Policy(), ["2026-06-08 19:00", "2026-06-09 10:00", "2026-06-10 10:00",
                                "2026-06-11 10:00"], "2026-06-12 10:00", None,
                     "2026-06-15 19:00", id="week-expiry-inside-the-window"),
        pytest.param(Policy(), ["2026-06-08 19:30", "2026-06-09 10:00", "2026-06-10 10:00",
                                "2026-06-11 10:00"], "2026-06-13 10:00", MOSCOW,
                     "2026-06-16 06:00", id="week-expiry-after-moscow-closing"),
        pytest.param(Policy(per_week=1), ["2026-06-14 10:00"], "2026-06-14 10:00", None,
                     "2026-06-22 09:00", id="expiry-on-sunday"),
    ],
)  # fmt: skip
def test_plan_next(
    rules: Policy, earlier: list[str], earliest: str, tz: str | None, expected: str
) -> None:
    attempts = [utc(text) for text in earlier]
    found = plan_next(rules, utc(earliest), attempts, tz)
    assert found == utc(expected)
    assert in_window(rules, found, tz)
    assert limit_allows(rules, attempts, found, tz) == found
