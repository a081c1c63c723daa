"""`voicebot check`: every problem of a script, each as ``file:line: key.path: problem``.

One file in broken_scripts/ per class of error; the expected lines are exact.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from voicebot.cli import main
from voicebot.dialog.fields import ScriptErrors
from voicebot.dialog.parser import load_script, parse_script, validate_file
from voicebot.errors import ScriptError

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"

EXPECTED: dict[str, list[str]] = {
    "end_of_turn.yaml": [
        "5: defaults.end_of_turn.pause: unknown key 'pause' (expected one of digit_timeout,"
        " max_silence, silence, turn_model)",
        "9: states.a.end_of_turn.turn_model: expected true or false, got 'maybe'",
        "9: states.a.end_of_turn: silence (2 s) is longer than max_silence (1.2 s)",
    ],
    "bad_record.yaml": ["2: record: expected true or false, got 'yes'"],
    "unknown_keys.yaml": [
        "3: title: unknown key 'title' (expected one of calendars, defaults, language, name,"
        " on_machine, record, start, states)",
        "6: states.main.sya: unknown key 'sya' (expected one of barge_in, branch, collect,"
        " dnc, end_of_turn, expect, goto, grammar, hangup, max_retries, no_input_timeout,"
        " on_max_retries, on_no_input, on_no_match, say, transfer, understand, webhook)",
        "7: states.main.collect.retries: unknown key 'retries' (expected one of goto, length,"
        " max, max_length, min, min_length, private, slot, type)",
        "12: states.lookup.webhook.header: unknown key 'header' (expected one of body,"
        " follow_redirects, goto, method, on_error, save_as, timeout, url)",
        "13: states.lookup.webhook.on_error.then: unknown key 'then' (expected one of goto,"
        " hangup, say)",
        "15: states.bye.transfer.prio: unknown key 'prio' (expected one of context, endpoint,"
        " extension, label, priority, set)",
    ],
    "missing_start.yaml": ["1: missing 'start'"],
    "missing_states.yaml": ["1: missing 'states'"],
    "unknown_goto.yaml": [
        "4: defaults.on_max_retries.goto: unknown state 'operatr'",
        "9: states.main.expect.yes.goto: unknown state 'reprot'",
        "12: states.ask.collect.goto: unknown state 'lokup'",
        "13: states.ask.on_no_match.goto: unknown state 'nowhere'",
        "14: states.lookup: state 'lookup' is unreachable from 'main'",
        "15: states.lookup.webhook.on_error.goto: unknown state 'fail'",
        "16: states.report: state 'report' is unreachable from 'main'",
    ],
    "unreachable.yaml": ["6: states.orphan: state 'orphan' is unreachable from 'main'"],
    "dead_end.yaml": [
        "3: states.main: has no next step: a state needs exactly one of expect, collect, goto,"
        " branch, hangup, transfer, webhook (a dead end must say hangup: true)"
    ],
    "several_steps.yaml": [
        "3: states.main: has several next steps (goto, hangup): a state needs exactly one of"
        " expect, collect, goto, branch, hangup, transfer, webhook (a dead end must say"
        " hangup: true)"
    ],
    "bad_duration.yaml": [
        "3: defaults.no_input_timeout: bad duration 'soon' (use e.g. 5s or 1500ms)",
        "6: states.main.webhook.timeout: bad duration '-2s' (use e.g. 5s or 1500ms)",
    ],
    "collect_options.yaml": [
        "6: states.a.collect.type: unknown type 'date' (expected one of digits, number, text,"
        " yes_no)",
        "8: states.b.collect.length: use either 'length' or 'min_length'/'max_length', not both",
        "10: states.c.collect.min_length: min_length 6 is greater than max_length 4",
        "12: states.d.collect.length: expected a whole number ≥ 1, got 0",
        "14: states.e.collect.length: 'length' is not an option of type yes_no (none)",
        "16: states.f.collect.min: min 10 is greater than max 1",
    ],
    "transfer_forms.yaml": [
        "13: states.a.transfer: use either context/extension/priority or endpoint, not both",
        "15: states.b.transfer: missing 'context'",
        "15: states.b.transfer: missing 'extension'",
        "17: states.c.transfer.endpoint: bad endpoint 'operator' (expected TECH/resource,"
        " e.g. PJSIP/operator)",
        "19: states.d.transfer: missing 'extension'",
        "21: states.e.transfer: use either 'priority' or 'label', not both",
    ],
    "webhook_fields.yaml": [
        "10: states.a.webhook: missing 'url'",
        "10: states.a.webhook: missing 'goto'",
        "12: states.b.webhook.method: bad method 'FETCH' (expected one of GET, POST, PUT,"
        " PATCH, DELETE)",
        "14: states.c.webhook.url: bad url 'bank.example' (expected http:// or https://)",
        "14: states.c.webhook.on_error: needs 'goto' or 'hangup: true'",
    ],
    "undefined_variable.yaml": [
        "8: states.lookup.webhook.url: undefined variable 'acount' (known: account, called,"
        " caller_id, channel.*, contact.*, result.*)",
        "9: states.lookup.webhook.body.caller: undefined variable 'caller' (known: account,"
        " called, caller_id, channel.*, contact.*, result.*)",
        "13: states.report.say: undefined variable 'name' (known: account, called, caller_id,"
        " channel.*, contact.*, result.*)",
    ],
    "unknown_filter.yaml": [
        "4: states.a.say: unknown template filter 'spell' (expected one of digits, lower, upper)"
    ],
    "unbalanced_braces.yaml": [
        "6: states.a.say.1: unbalanced braces: '{' without '}' in 'Hello {caller_id.'"
        " (write {{ for a literal brace)",
        "7: states.a.say.2: unbalanced braces: '}' without '{' in 'Closing } alone.'",
    ],
    "goto_loop.yaml": ["5: states.a.goto: goto loop a → b → a never waits for the caller"],
    "duplicate_dtmf.yaml": [
        "6: states.a.expect.support.dtmf: DTMF key '1' is already used by intent 'sales'"
    ],
}

CLEAN = """\
name: Everything
language: en-US
start: main
defaults:
  on_max_retries: {say: "Let me get someone.", goto: operator}
states:
  main:
    say: ["Hello {caller_id}.", "Line {channel.LINE|upper}: say yes or no, {{or}} press 1."]
    expect:
      yes: {phrases: [yes, sure], dtmf: "1", goto: ask}
      no: {phrases: [no], dtmf: ["2", "#"], goto: bye}
  ask:
    say: "Your PIN?"
    no_input_timeout: 1500ms
    max_retries: 1
    collect: {slot: pin, type: digits, min_length: 4, max_length: 6, goto: amount}
  amount:
    collect: {slot: amount, type: number, min: 1, max: 500, goto: reason}
  reason:
    barge_in: false
    collect: {slot: reason, type: text, goto: sure}
  sure:
    collect: {slot: sure, type: yes_no, goto: lookup}
    on_no_input: {goto: bye}
  lookup:
    webhook:
      url: "https://bank.example/{pin}"
      method: patch
      body: {amount: "{amount}", tags: ["{reason|lower}", 1, true], who: "{called}"}
      save_as: result
      timeout: 2.5s
      goto: report
      on_error: {say: "Sorry {result.message}.", hangup: true}
  report:
    say: "{result.account.owner}, you have {result.balance} dollars."
    goto: operator
  operator:
    transfer: {endpoint: "PJSIP/operator"}
  bye:
    transfer: {context: default, extension: 100, priority: 2}
"""


@pytest.fixture(autouse=True)
def _in_tests_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(FIXTURES)


def test_every_broken_script_has_expectations() -> None:
    assert sorted(p.name for p in (FIXTURES / "broken_scripts").glob("*.yaml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_broken_script_errors(name: str) -> None:
    file = f"broken_scripts/{name}"
    expected = [f"{file}:{line}" for line in EXPECTED[name]]
    assert [str(e) for e in validate_file(Path(file))] == expected
    with pytest.raises(ScriptError) as info:
        load_script(Path(file))
    assert str(info.value) == "\n".join(expected)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_check_command_reports_all_errors_and_exits_2(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    file = f"broken_scripts/{name}"
    assert main(["check", file]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [f"{file}:{line}" for line in EXPECTED[name]]


def test_check_command_accepts_a_clean_script(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "clean.yaml"
    path.write_text(CLEAN)
    assert validate_file(path) == []
    assert main(["check", str(path)]) == 0
    assert capsys.readouterr().out == f"{path}: ok (9 states, start 'main')\n"


def test_check_command_with_clean_and_broken_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "clean.yaml"
    path.write_text(CLEAN)
    assert main(["check", str(path), "broken_scripts/unreachable.yaml"]) == 2
    captured = capsys.readouterr()
    assert "ok (9 states" in captured.out
    assert "unreachable.yaml:6: states.orphan:" in captured.err


def test_script_errors_carries_each_error() -> None:
    with pytest.raises(ScriptErrors) as info:
        load_script(Path("broken_scripts/webhook_fields.yaml"))
    errors = info.value.errors
    assert [(e.line, e.key_path) for e in errors][:2] == [
        (10, "states.a.webhook"),
        (10, "states.a.webhook"),
    ]
    assert info.value.line == 10 and info.value.problem == "missing 'url'"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("start: a\nstates:\n  a:\n    hangup: false\n", "4: states.a.hangup: hangup: false is"),
        ("start: a\nstates:\n  a:\n    hangup: yes\n", "4: states.a.hangup: expected true or"),
        ("start: a\nlanguage: English\nstates:\n  a: {hangup: true}\n", "2: language: bad lang"),
        (
            "start: a\nstates:\n  a:\n    collect: {slot: caller_id, type: text, goto: a}\n",
            "4: states.a.collect.slot: bad slot name 'caller_id'",
        ),
        (
            "start: a\nstates:\n  a:\n    webhook: {url: 'http://x', goto: a, save_as: 'r.x'}\n",
            "4: states.a.webhook.save_as: bad save_as name 'r.x'",
        ),
        ("start: a\nstates:\n  a:\n    expect: {}\n", "4: states.a.expect: expects no intent"),
        ("start: a\nstates:\n  a:\n  a: {hangup: true}\n", "4: states.a: duplicate key"),
        ("start: [a\n", "2: invalid YAML"),
    ],
)
def test_other_problems(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    errors = validate_file(path)
    assert str(errors[0]).startswith(f"{path}:{expected}")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("start: a\non_machine: nowhere\nstates:\n  a:\n    hangup: true\n",
         "2: on_machine: unknown state 'nowhere'"),
        ("start: a\nstates:\n  a:\n    dnc: maybe\n    hangup: true\n",
         "4: states.a.dnc: expected true or false, got 'maybe'"),
    ],
)  # fmt: skip
def test_outbound_keys_are_checked(text: str, problem: str) -> None:
    with pytest.raises(ScriptErrors) as caught:
        parse_script(text, file="s.yaml")
    assert [str(e) for e in caught.value.errors] == [f"s.yaml:{problem}"]


def test_the_on_machine_state_counts_as_reachable() -> None:
    text = "start: a\non_machine: m\nstates:\n  a:\n    hangup: true\n  m:\n    hangup: true\n"
    assert parse_script(text).on_machine == "m"
