"""call.results: one record per call, private slots and keys masked."""

from __future__ import annotations

import json

from voicebot.call.results import MASK, refused_record, result_record
from voicebot.dialog.parser import parse_script

SCRIPT = parse_script(
    """\
start: account
states:
  account:
    collect: {slot: account, type: digits, length: 4, goto: pin}
  pin:
    collect: {slot: pin, type: digits, length: 4, goto: done, private: true}
  done:
    say: "Thanks."
    hangup: true
""",
    "s.yaml",
)

TRANSCRIPT = [
    {"who": "bot", "text": "Your account?", "t": 0.1, "state": "account"},
    {"who": "caller", "text": "#1", "t": 2.0, "state": "account"},
    {"who": "caller", "text": "#2", "t": 2.2, "state": "account"},
    {"who": "caller", "text": "#5", "t": 3.0, "state": "pin"},
    {"who": "caller", "text": "one two", "t": 4.0, "state": "pin"},
]


def record(**changes: object) -> dict[str, object]:
    given: dict[str, object] = dict(
        call_id="c1", script_name="s", script=SCRIPT, started=1_796_600_000.0,
        ended=1_796_600_012.5, outcome="completed", end_reason="bot hangup",
        caller_id="+100", called="300", path=("account", "pin", "done"),
        variables={"account": "1234", "pin": "9876", "caller_id": "+100", "hook": {"a": 1}},
        transcript=TRANSCRIPT, turns=[{"latency_ms": 400}], keys_recorded=True,
        recording="/rec/c1.pcap",
    )  # fmt: skip
    given.update(changes)
    return result_record(**given)  # type: ignore[arg-type]


def test_a_record_holds_the_call_and_masks_a_private_slot() -> None:
    made = record()
    assert made["slots"] == {"account": "1234", "pin": MASK}  # collected slots only
    assert made["path"] == ["account", "pin", "done"]
    assert made["outcome"] == "completed" and made["duration_s"] == 12.5
    assert made["started"] == "2026-12-06T23:33:20.000+00:00"
    assert made["recording"] == "/rec/c1.pcap" and made["turns"] == [{"latency_ms": 400}]
    json.dumps(made, allow_nan=False)  # JSON as it is


def test_keys_pressed_for_a_private_slot_or_unrecorded_keys_are_masked() -> None:
    assert record()["keys"] == ["#1", "#2", MASK]  # the PIN state's keys are the PIN
    assert record(keys_recorded=False)["keys"] == [MASK, MASK, MASK]


def test_a_call_that_never_got_a_dialog_still_has_a_record() -> None:
    made = record(script=None, path=(), variables=None, transcript=[], turns=[])
    assert made["slots"] == {} and made["path"] == [] and made["keys"] == []
    busy = refused_record("c2", "busy", "24 calls active", 1_796_600_000.0)
    assert busy["outcome"] == "busy" and busy["end_reason"] == "24 calls active"
    assert busy["duration_s"] == 0.0
