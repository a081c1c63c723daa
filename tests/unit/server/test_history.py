"""The console's call history: query parsing, the WHERE builder and per-state counts as tables;
the store on real SQLite files (search, retention, restart, file mode, a keep after close, 500
calls). Calls are built with the real ``result_record`` over the shipped bank script."""

from __future__ import annotations

import logging
import sqlite3
import stat
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from voicebot.call.results import MASK, result_record
from voicebot.call.session import TranscriptLine
from voicebot.dialog.model import Script
from voicebot.dialog.parser import load_script, parse_script
from voicebot.errors import ConfigError, VoicebotError
from voicebot.server.history import (
    COUNT_RULE,
    MAX_LIMIT,
    CallHistory,
    HistoryQuery,
    HistoryQueryError,
    StateCounts,
    count_states,
    mask_private,
    where_clause,
)

ROOT = Path(__file__).resolve().parents[3]
BANK_FILE = ROOT / "prompts" / "bank.yaml"
BANK = load_script(BANK_FILE)
PRIVATE_BANK = parse_script(
    BANK_FILE.read_text().replace(
        "length: 4, goto: confirm", "length: 4, private: true, goto: confirm"
    )
)
CALLER = "+15550100"
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC).timestamp()
GREETING = "Hello, you've reached Demo Bank. Say balance or operator, or press 1 or 0."
ASK_ACCOUNT = "Please say or type your four digit account number."
CONFIRM = "You said 1 2 3 4. Is that right?"
NOT_HEARD = "Sorry, I didn't hear anything."
NOT_UNDERSTOOD = "Sorry, I didn't get that."
TRANSFERRING = "Transferring you to an operator."

Line = tuple[str, str, str, str | None]  # who, text, state, intent


def transcript(lines: Sequence[Line]) -> list[dict[str, Any]]:
    return [
        TranscriptLine(who=who, text=text, t=float(n), state=state, intent=intent).as_dict()
        for n, (who, text, state, intent) in enumerate(lines)
    ]


# A real call through the controller (tests/support/controller.py harness, bank.yaml with a
# 1 s no-input timeout and max_retries 5): a wrong key, 4 silences in main; 1, then 2 silences,
# "12" too short, 2 silences in account; 1234; 3 silences in confirm; then the caller hung up.
HARNESS_CALL: list[Line] = [
    ("bot", GREETING, "main", None),
    ("caller", "#9", "main", None),
    ("bot", NOT_UNDERSTOOD, "main", None),
    ("bot", GREETING, "main", None),
    *[("bot", text, "main", None) for _ in range(4) for text in (NOT_HEARD, GREETING)],
    ("caller", "#1", "main", "balance"),
    ("bot", ASK_ACCOUNT, "account", None),
    *[("bot", text, "account", None) for _ in range(2) for text in (NOT_HEARD, ASK_ACCOUNT)],
    ("caller", "#1", "account", None),
    ("caller", "#2", "account", None),
    ("bot", NOT_UNDERSTOOD, "account", None),
    ("bot", ASK_ACCOUNT, "account", None),
    *[("bot", text, "account", None) for _ in range(2) for text in (NOT_HEARD, ASK_ACCOUNT)],
    *[("caller", f"#{digit}", "account", None) for digit in "123"],
    ("caller", "#4", "account", "account"),
    ("bot", CONFIRM, "confirm", None),
    *[("bot", text, "confirm", None) for _ in range(3) for text in (NOT_HEARD, CONFIRM)],
]
# Said, not keyed: a no-match, the account by voice, yes; the bot hangs up after the report.
SPOKEN_CALL: list[Line] = [
    ("bot", GREETING, "main", None),
    ("caller", "what time do you open", "main", None),
    ("bot", NOT_UNDERSTOOD, "main", None),
    ("bot", GREETING, "main", None),
    ("caller", "balance", "main", "balance"),
    ("bot", ASK_ACCOUNT, "account", None),
    ("caller", "one two three four", "account", "account"),
    ("bot", CONFIRM, "confirm", None),
    ("caller", "yes", "confirm", "yes"),
    ("bot", "The balance on account 1 2 3 4 is 42 dollars. Goodbye.", "report", None),
]
# Keys one by one, the entry finished by the silence after them: no no-match.
KEYED_BY_TIMEOUT: list[Line] = [
    ("bot", ASK_ACCOUNT, "account", None),
    *[("caller", f"#{digit}", "account", None) for digit in "123"],
    ("bot", "You said 1 2 3. Is that right?", "confirm", None),
]


def turn(n: int, text: str) -> dict[str, Any]:
    return {"turn": n, "text": text, "total_ms": 640.0, "pause_ms": 300.0, "asr_ms": 120.0,
            "wait_ms": 420.0, "dialog_ms": 1.0, "tts_ms": 150.0, "send_ms": 2.0}  # fmt: skip


def finished_call(
    n: int,
    *,
    started: float = T0,
    lines: Sequence[Line] = SPOKEN_CALL,
    path: Sequence[str] = ("main", "account", "confirm", "report"),
    outcome: str = "completed",
    end_reason: str = "bot-hangup",
    caller: str = CALLER,
    script_name: str = "bank",
    script: Script = BANK,
    variables: dict[str, Any] | None = None,
    recording: str | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """What CallController._forget hands the history: the summary and the result record."""
    said = transcript(lines)
    turns = [turn(i, line["text"]) for i, line in enumerate(said) if line["who"] == "caller"]
    record = result_record(
        call_id=f"call-{n}", script_name=script_name, script=script, started=started,
        ended=started + 42.5, outcome=outcome, end_reason=end_reason, caller_id=caller,
        called="100", path=path, variables=variables or {"account": "1234"}, transcript=said,
        turns=turns, recording=recording,
    )  # fmt: skip
    summary = {
        "call_id": f"call-{n}", "caller": caller, "script": script_name, "app": "voicebot",
        "asterisk": "", "started": started, "end_reason": end_reason, "result": outcome,
        "transcript": said, "turns": turns, "rtp_port": 41000,
        "rtp": {"packets_in": 2100, "lost": 0}, "pacer": {"late": 0}, "recording": recording,
    }  # fmt: skip
    return summary, record


# -- query parameters ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, HistoryQuery()),
        ({"since": "1714564800"}, HistoryQuery(since=1714564800.0)),
        ({"since": "1714564800.5"}, HistoryQuery(since=1714564800.5)),
        ({"since": "2024-05-01"}, HistoryQuery(since=1714521600.0)),
        ({"until": "2024-05-01"}, HistoryQuery(until=1714521600.0 + 86400)),  # the whole day
        ({"since": "2024-05-01T12:00:00"}, HistoryQuery(since=T0)),  # no zone: UTC
        ({"since": "2024-05-01T12:00:00Z"}, HistoryQuery(since=T0)),
        ({"since": "2024-05-01T14:00+02:00"}, HistoryQuery(since=T0)),
        (
            {"script": " bank ", "outcome": "transferred"},
            HistoryQuery(script="bank", outcome="transferred"),
        ),
        (
            {"caller": "0100", "limit": "500", "offset": "50"},
            HistoryQuery(caller="0100", limit=500, offset=50),
        ),
        ({"script": "", "since": " ", "limit": ""}, HistoryQuery()),  # a form's blank fields
        ({"page": "3"}, HistoryQuery()),
    ],
)
def test_query_parameters_are_parsed(params: dict[str, str], expected: HistoryQuery) -> None:
    assert HistoryQuery.from_params(params) == expected


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"since": "yesterday"}, "since: 'yesterday' is neither epoch seconds nor an ISO 8601"),
        ({"until": "2024-13-01"}, "until: '2024-13-01' is neither epoch seconds nor an ISO 8601"),
        ({"since": "nan"}, "since: 'nan' is not a time"),
        ({"until": "inf"}, "until: 'inf' is not a time"),
        ({"limit": "ten"}, "limit: 'ten' is not a whole number"),
        ({"limit": "0"}, f"limit: 0 must be from 1 to {MAX_LIMIT}"),
        ({"limit": "501"}, f"limit: 501 must be from 1 to {MAX_LIMIT}"),
        ({"offset": "-1"}, "offset: -1 must be from 0 to"),
        ({"offset": "1.5"}, "offset: '1.5' is not a whole number"),
    ],
)
def test_bad_query_parameters_name_the_parameter_and_value(
    params: dict[str, str], message: str
) -> None:
    with pytest.raises(HistoryQueryError) as raised:
        HistoryQuery.from_params(params)
    assert str(raised.value).startswith(message)
    assert isinstance(raised.value, VoicebotError)


@pytest.mark.parametrize(
    ("query", "sql", "values"),
    [
        (HistoryQuery(), "", ()),
        (HistoryQuery(since=10.0), "WHERE started >= ?", (10.0,)),
        (HistoryQuery(since=10.0, until=20.0), "WHERE started >= ? AND started < ?", (10.0, 20.0)),
        (
            HistoryQuery(script="bank", outcome="busy"),
            "WHERE script = ? AND outcome = ?",
            ("bank", "busy"),
        ),
        (HistoryQuery(caller="0100"), "WHERE instr(caller, ?) > 0", ("0100",)),
        (HistoryQuery(caller="%_"), "WHERE instr(caller, ?) > 0", ("%_",)),  # no wildcards
    ],
)
def test_where_clause(query: HistoryQuery, sql: str, values: tuple[Any, ...]) -> None:
    assert where_clause(query) == (sql, values)


# -- per-state counts ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "path", "outcome", "end_reason", "expected"),
    [
        (
            HARNESS_CALL,
            ["main", "account", "confirm"],
            "caller_hangup",
            "caller hangup",
            {
                "main": StateCounts(1, 1, 4, 0),
                "account": StateCounts(1, 1, 4, 0),
                "confirm": StateCounts(1, 0, 3, 1),
            },
        ),
        (
            SPOKEN_CALL,
            ["main", "account", "confirm", "report"],
            "completed",
            "bot-hangup",
            {
                "main": StateCounts(1, 1, 0, 0),
                "account": StateCounts(1, 0, 0, 0),
                "confirm": StateCounts(1, 0, 0, 0),
                "report": StateCounts(1, 0, 0, 0),
            },
        ),
        (
            KEYED_BY_TIMEOUT,
            ["account", "confirm"],
            "completed",
            "bot-hangup",
            {"account": StateCounts(1, 0, 0, 0), "confirm": StateCounts(1, 0, 0, 0)},
        ),
        # A state entered twice counts once; two lines of one prompt are not a re-prompt.
        (
            [
                ("bot", "Welcome.", "main", None),
                ("bot", GREETING, "main", None),
                ("caller", "#2", "main", "balance"),
                ("bot", "Welcome.", "main", None),
                ("bot", GREETING, "main", None),
            ],
            ["main", "main"],
            "transferred",
            "transfer to PJSIP/operator",
            {"main": StateCounts(1, 0, 0, 0)},
        ),
        # The outcome or the end reason says the caller hung up.
        (
            [("bot", GREETING, "main", None)],
            ["main"],
            "completed",
            "caller hangup",
            {"main": StateCounts(1, 0, 0, 1)},
        ),
        ([], [], "busy", "calls.max_active reached", {}),  # refused: no dialog at all
    ],
)
def test_count_states(
    lines: list[Line],
    path: list[str],
    outcome: str,
    end_reason: str,
    expected: dict[str, StateCounts],
) -> None:
    assert count_states(path, transcript(lines), outcome, end_reason) == expected


def test_the_sessions_no_input_events_count_exactly() -> None:
    # Two silences in main, the second re-prompt said differently (no repeated line to infer
    # from), then one in confirm whose reaction went on to goodbye (no re-ask at all).
    lines = [
        ("bot", GREETING, "main", None), ("bot", "Still there?", "main", None),
        ("bot", "Say hours or goodbye.", "main", None), ("caller", "hours", "main", "hours"),
        ("bot", "Is that right?", "confirm", None), ("bot", "Goodbye.", "goodbye", None),
    ]  # fmt: skip
    events = [{"t": 5.0, "kind": "no-input", "state": "main"},
              {"t": 9.0, "kind": "no-input", "state": "main"},
              {"t": 12.0, "kind": "barge-in", "state": "main"},
              {"t": 20.0, "kind": "no-input", "state": "confirm"}]  # fmt: skip
    counts = count_states(["main", "confirm", "goodbye"], transcript(lines), "completed",
                          "bot-hangup", events)  # fmt: skip
    assert counts == {"main": StateCounts(1, 0, 2, 0), "confirm": StateCounts(1, 0, 1, 0),
                      "goodbye": StateCounts(1, 0, 0, 0)}  # fmt: skip


def test_what_the_caller_said_in_a_private_state_is_masked() -> None:
    summary, record = finished_call(1, script=PRIVATE_BANK)
    assert record["slots"] == {"account": MASK}
    said, turns = mask_private(summary["transcript"], summary["turns"], record)
    assert [line["text"] for line in said if line["who"] == "caller"] == [
        "what time do you open", "balance", MASK, "yes",
    ]  # fmt: skip
    assert [t["text"] for t in turns] == ["what time do you open", "balance", MASK, "yes"]
    keyed = transcript(KEYED_BY_TIMEOUT)
    keys_record = {"slots": {}, "keys": [MASK] * 3}
    assert [line["text"] for line in mask_private(keyed, [], keys_record)[0]][1:4] == [MASK] * 3
    # record.keys = false: every key is "#" and masked in the record; no state is private.
    hidden = [{**line, "text": "#"} if line["who"] == "caller" else line for line in keyed]
    assert mask_private(hidden, [], keys_record)[0] == hidden


# -- the store -----------------------------------------------------------------------------------


async def test_search_filters_newest_first_with_pages_and_total(tmp_path: Path) -> None:
    history = await CallHistory.open(tmp_path / "history.sqlite", 100)
    calls = [
        finished_call(1, started=T0, outcome="transferred", end_reason="transfer to operator"),
        finished_call(2, started=T0 + 60, caller="+15550199", recording="/rec/call-2.pcap"),
        finished_call(3, started=T0 + 120, script_name="clinic"),
        finished_call(4, started=T0 - 86400, outcome="caller_hangup"),
    ]
    for summary, record in calls:
        history.keep(summary, record)

    async def ids(**params: str) -> list[str]:
        page = await history.search(HistoryQuery.from_params(params))
        assert page.total == len(page.rows)
        return [row.call_id for row in page.rows]

    assert await ids() == ["call-3", "call-2", "call-1", "call-4"]
    assert await ids(since=str(T0)) == ["call-3", "call-2", "call-1"]
    assert await ids(until="2024-04-30") == ["call-4"]
    assert await ids(since="2024-05-01T12:01:00Z", until=str(T0 + 120)) == ["call-2"]
    assert await ids(script="bank") == ["call-2", "call-1", "call-4"]
    assert await ids(script="ban") == []  # exact
    assert await ids(outcome="transferred") == ["call-1"]
    assert await ids(caller="0199") == ["call-2"]
    assert await ids(caller="555", outcome="caller_hangup") == ["call-4"]

    page = await history.search(HistoryQuery(limit=2, offset=1))
    assert page.total == 4 and [row.call_id for row in page.rows] == ["call-2", "call-1"]
    row = page.rows[0]
    assert (row.started, row.duration_s, row.script, row.outcome, row.end_reason, row.caller,
            row.turns, row.has_recording) == (
        T0 + 60, 42.5, "bank", "completed", "bot-hangup", "+15550199", 4, True,
    )  # fmt: skip
    assert page.rows[1].has_recording is False
    assert page.as_dict()["rows"][0]["call_id"] == "call-2"
    assert history.status() == {"calls": 4, "queued": 0}
    await history.close()


async def test_a_call_comes_back_whole_and_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite"
    history = await CallHistory.open(path, 10)
    summary, record = finished_call(7, recording="/rec/call-7.pcap")
    history.keep(summary, record)
    await history.close()

    reopened = await CallHistory.open(path, 10)
    assert reopened.status()["calls"] == 1
    stored = await reopened.call("call-7")
    assert stored is not None
    assert stored["record"] == record and stored["started"] == T0
    assert stored["transcript"] == summary["transcript"] and stored["turns"] == summary["turns"]
    assert stored["recording"] == "/rec/call-7.pcap"
    assert stored["rtp"] == summary["rtp"] and stored["pacer"] == summary["pacer"]
    assert stored["app"] == "voicebot" and stored["caller"] == CALLER  # the summary's others
    assert await reopened.call("call-8") is None
    await reopened.close()


async def test_a_refused_caller_is_kept_from_its_record_alone(tmp_path: Path) -> None:
    from voicebot.call.results import refused_record

    history = await CallHistory.open(tmp_path / "history.sqlite", 10)
    history.keep({}, refused_record("call-9", "busy", "calls.max_active reached", T0))
    page = await history.search(HistoryQuery(outcome="busy"))
    assert [(r.call_id, r.started, r.script, r.caller, r.turns) for r in page.rows] == [
        ("call-9", T0, "", "", 0)
    ]
    stored = await history.call("call-9")
    assert stored is not None and stored["transcript"] == [] and stored["recording"] is None
    await history.close()


async def test_private_lines_are_stored_masked(tmp_path: Path) -> None:
    history = await CallHistory.open(tmp_path / "history.sqlite", 10)
    history.keep(*finished_call(1, script=PRIVATE_BANK))
    stored = await history.call("call-1")
    await history.close()
    assert stored is not None
    assert "one two three four" not in (tmp_path / "history.sqlite").read_text(errors="replace")
    assert MASK in [line["text"] for line in stored["transcript"]]
    assert MASK in [t["text"] for t in stored["record"]["turns"]]


async def test_only_the_newest_max_calls_are_kept(tmp_path: Path) -> None:
    history = await CallHistory.open(tmp_path / "history.sqlite", 3)
    for n in range(6):
        history.keep(*finished_call(n, started=T0 + n))
    page = await history.search(HistoryQuery())
    assert [row.call_id for row in page.rows] == ["call-5", "call-4", "call-3"]
    assert page.total == 3 and history.status()["calls"] == 3
    assert await history.call("call-0") is None
    counts = await history.state_counts("bank")
    assert counts["main"].entered == 3  # the dropped calls' counts went with them
    await history.close()


async def test_state_counts_sum_the_calls_of_one_script(tmp_path: Path) -> None:
    history = await CallHistory.open(tmp_path / "history.sqlite", 100)
    history.keep(*finished_call(1, started=T0, lines=HARNESS_CALL,
                                path=("main", "account", "confirm"), outcome="caller_hangup",
                                end_reason="caller hangup"))  # fmt: skip
    history.keep(*finished_call(2, started=T0 + 60))
    history.keep(*finished_call(3, started=T0 + 120, lines=KEYED_BY_TIMEOUT,
                                path=("main", "account"), outcome="caller_hangup",
                                end_reason="caller hangup"))  # fmt: skip
    history.keep(*finished_call(4, started=T0, script_name="clinic"))
    assert await history.state_counts("bank") == {
        "account": StateCounts(entered=3, no_match=1, no_input=4, hangups=1),
        "confirm": StateCounts(entered=2, no_match=0, no_input=3, hangups=1),
        "main": StateCounts(entered=3, no_match=2, no_input=4, hangups=0),
        "report": StateCounts(entered=1, no_match=0, no_input=0, hangups=0),
    }
    assert await history.state_counts("bank", since=T0 + 60) == {
        "account": StateCounts(2, 0, 0, 1),
        "confirm": StateCounts(1, 0, 0, 0),
        "main": StateCounts(2, 1, 0, 0),
        "report": StateCounts(1, 0, 0, 0),
    }
    assert await history.state_counts("nobody") == {}
    await history.close()


async def test_counts_made_by_another_rule_are_made_again_on_opening(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite"
    history = await CallHistory.open(path, 10)
    summary, record = finished_call(1)
    summary["events"] = [{"t": 9.0, "kind": "no-input", "state": "account"}]
    history.keep(summary, record)
    before = await history.state_counts("bank")
    assert before["account"].no_input == 1  # from the session's events, not inferred
    await history.close()
    with sqlite3.connect(path) as db:  # as a database of an older COUNT_RULE would be
        db.execute("UPDATE states SET no_match = 7")
        db.execute(f"PRAGMA user_version = {COUNT_RULE - 1}")
    db.close()
    history = await CallHistory.open(path, 10)
    assert await history.state_counts("bank") == before
    await history.close()


async def test_turn_latencies_of_the_calls_since(tmp_path: Path) -> None:
    history = await CallHistory.open(tmp_path / "history.sqlite", 10)
    history.keep(*finished_call(1, started=T0 - 3600))
    summary, record = finished_call(2, started=T0)
    summary["turns"][1]["total_ms"] = None  # a turn the caller hung up on before the answer
    history.keep(summary, record)
    assert await history.turn_latencies(T0) == [640.0, 640.0, 640.0]
    assert len(await history.turn_latencies(T0 - 3600)) == 7
    assert await history.turn_latencies(T0 + 1) == []
    await history.close()


async def test_the_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "state" / "history.sqlite"
    history = await CallHistory.open(path, 10)
    history.keep(*finished_call(1))
    await history.search(HistoryQuery())
    for made in [path, *path.parent.glob("history.sqlite-*")]:
        assert stat.S_IMODE(made.stat().st_mode) == 0o600, made
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    await history.close()
    path.chmod(0o644)  # loosened by hand: tightened again on opening
    await (await CallHistory.open(path, 10)).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


async def test_a_history_that_cannot_be_opened_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "a-directory").mkdir()
    (tmp_path / "a-file").write_text("a text file, not a database\n" * 100)
    for path in ("a-directory", "a-file/history.sqlite", "a-file"):
        with pytest.raises(ConfigError, match=rf"^console\.history: cannot open .*{path}: "):
            await CallHistory.open(tmp_path / path, 10)


async def test_a_keep_after_close_is_ignored_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    history = await CallHistory.open(tmp_path / "history.sqlite", 10)
    history.keep(*finished_call(1))
    await history.close()  # waits for the write queued before it
    await history.close()
    with caplog.at_level(logging.WARNING, logger="voicebot.server.history"):
        history.keep(*finished_call(2))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ["history: call call-2 ended after the history closed; not kept"]
    assert CALLER not in caplog.text
    reopened = await CallHistory.open(tmp_path / "history.sqlite", 10)
    assert [r.call_id for r in (await reopened.search(HistoryQuery())).rows] == ["call-1"]
    await reopened.close()


async def test_a_call_that_cannot_be_stored_is_logged_by_id_only(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    history = await CallHistory.open(tmp_path / "history.sqlite", 10)
    summary, record = finished_call(1)
    with caplog.at_level(logging.WARNING, logger="voicebot.server.history"):
        history.keep(summary, {**record, "slots": {"account": object()}})  # not JSON
    await history.close()
    assert [r.getMessage() for r in caplog.records] == ["history: call call-1 not kept: TypeError"]
    assert CALLER not in caplog.text


async def test_five_hundred_calls_are_searched_and_read(tmp_path: Path) -> None:
    history = await CallHistory.open(tmp_path / "history.sqlite", 10_000)
    for n in range(500):
        outcome = "transferred" if n % 5 == 0 else "completed"
        history.keep(*finished_call(n, started=T0 + n, caller=f"+1555{n:07d}", outcome=outcome))
    page = await history.search(HistoryQuery(limit=MAX_LIMIT))
    assert page.total == 500 and len(page.rows) == 500 and page.rows[0].call_id == "call-499"
    transferred = await history.search(HistoryQuery(outcome="transferred", offset=90))
    assert transferred.total == 100 and [r.call_id for r in transferred.rows] == [
        f"call-{n}" for n in (45, 40, 35, 30, 25, 20, 15, 10, 5, 0)
    ]
    assert [r.call_id for r in (await history.search(HistoryQuery(caller="0000123"))).rows] == [
        "call-123"
    ]
    stored = await history.call("call-250")
    assert stored is not None and stored["record"]["caller_id"] == "+15550000250"
    assert (await history.state_counts("bank"))["main"] == StateCounts(500, 500, 0, 0)
    assert history.status() == {"calls": 500, "queued": 0}
    await history.close()
