"""Branches and business hours in scripts: ``branch:`` arms with conditions, ``calendars:``
and ``open("NAME")``, parsed with file:line errors and taken by the engine."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from tests.support.dialog_scripts import write
from voicebot.dialog.engine import CallStarted, DialogEngine, Say, WebhookDone
from voicebot.dialog.parser import parse_script
from voicebot.errors import ScriptError

DELIVERY = """\
start: lookup
calendars:
  office:
    timezone: Europe/Moscow
    open: {mon-fri: "09:00-18:00", sat: "10:00-14:00"}
    closed: ["2026-12-31"]
states:
  lookup:
    webhook: {url: "https://api.example/parcel", save_as: parcel, goto: route}
  route:
    branch:
      - {if: 'parcel.status == "delivered"', goto: delivered}
      - {if: 'parcel.days_late > 2 or caller_id in ["+100", "+200"]', goto: agent}
      - {if: 'open("office")', goto: menu}
      - {else: closed}
  delivered: {say: delivered, hangup: true}
  agent: {say: agent, hangup: true}
  menu: {say: menu, hangup: true}
  closed: {say: closed, hangup: true}
"""

MONDAY_NOON_MOSCOW = datetime.fromisoformat("2026-12-07T12:00+03:00")
MONDAY_NIGHT_MOSCOW = datetime.fromisoformat("2026-12-07T21:00+03:00")
NEW_YEARS_EVE_NOON = datetime.fromisoformat("2026-12-31T09:00+00:00")  # 12:00 in Moscow


@pytest.mark.parametrize(
    ("parcel", "caller_id", "now", "said"),
    [
        ({"status": "delivered"}, "+1", MONDAY_NIGHT_MOSCOW, "delivered"),
        ({"status": "late", "days_late": 3}, "+1", MONDAY_NOON_MOSCOW, "agent"),
        ({"status": "late", "days_late": "5"}, "+1", MONDAY_NOON_MOSCOW, "agent"),  # text 5 > 2
        ({"status": "late", "days_late": 1}, "+200", MONDAY_NIGHT_MOSCOW, "agent"),
        ({"status": "late", "days_late": 1}, "+1", MONDAY_NOON_MOSCOW, "menu"),
        ({"status": "late", "days_late": 1}, "+1", MONDAY_NIGHT_MOSCOW, "closed"),
        ({"status": "late", "days_late": 1}, "+1", NEW_YEARS_EVE_NOON, "closed"),
        ({}, "+1", MONDAY_NOON_MOSCOW, "menu"),  # missing fields compare false
        ("not an object", "+1", MONDAY_NIGHT_MOSCOW, "closed"),
    ],
)
def test_a_branch_takes_the_first_arm_that_holds(
    parcel: object, caller_id: str, now: datetime, said: str
) -> None:
    engine = DialogEngine(parse_script(DELIVERY, "d.yaml"))
    engine.handle(CallStarted({"caller_id": caller_id}), now)
    actions = engine.handle(WebhookDone(parcel), now)
    assert [a.text for a in actions if isinstance(a, Say)] == [said]


def test_a_branch_at_the_start_sees_the_call_variables() -> None:
    script = """\
start: route
states:
  route:
    branch:
      - {if: 'matches(caller_id, "^\\\\+7495")', goto: moscow}
      - {else: other}
  moscow: {say: moscow, hangup: true}
  other: {say: other, hangup: true}
"""
    for caller, said in (("+74951234567", "moscow"), ("+15551234", "other")):
        engine = DialogEngine(parse_script(script, "s.yaml"))
        actions = engine.handle(CallStarted({"caller_id": caller}))
        assert [a.text for a in actions if isinstance(a, Say)] == [said]


def broken(branch: str, calendars: str = "") -> str:
    return f"""start: a
{calendars}states:
  a:
    branch:
{branch}
  b:
    hangup: true
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            broken("      - {if: 'x ==', goto: b}\n      - {else: b}"),
            "s.yaml:5: states.a.branch.0.if: ",
        ),
        (
            broken("      - {if: 'caller_id == \"1\"', goto: b}"),
            "s.yaml:5: states.a.branch.0: a branch must end with {else: STATE}",
        ),
        (
            broken("      - {if: 'opne(\"office\")', goto: b}\n      - {else: b}"),
            "s.yaml:5: states.a.branch.0.if: unknown function 'opne'",
        ),
        (
            broken("      - {if: 'open(\"office\")', goto: b}\n      - {else: b}"),
            "s.yaml:5: states.a.branch.0.if: unknown calendar 'office'",
        ),
        (
            broken("      - {if: 'acount == \"1\"', goto: b}\n      - {else: b}"),
            "s.yaml:5: states.a.branch.0.if: undefined variable 'acount'",
        ),
        (
            broken("      - {else: b}\n      - {if: 'caller_id == \"1\"', goto: b}"),
            "s.yaml:5: states.a.branch.0: {else: STATE} must be the branch's last arm",
        ),
        (
            broken("      - {if: 'caller_id == \"1\"', goto: c}\n      - {else: b}"),
            "s.yaml:5: states.a.branch.0.goto: unknown state 'c'",
        ),
        (
            broken(
                "      - {if: 'open(\"office\")', goto: b}\n      - {else: b}",
                "calendars:\n  office:\n    timezone: Europe/Moskow\n",
            ),
            "s.yaml:4: calendars.office.timezone: unknown time zone 'Europe/Moskow'",
        ),
    ],
)
def test_a_broken_branch_or_calendar_names_file_line_and_key(
    tmp_path: Path, text: str, expected: str
) -> None:
    from voicebot.dialog.parser import load_script

    with pytest.raises(ScriptError) as info:
        load_script(write(tmp_path, text))
    assert expected in str(info.value).replace(str(tmp_path) + "/", ""), str(info.value)
