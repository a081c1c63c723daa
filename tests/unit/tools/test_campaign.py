"""``voicebot campaign ...`` through ``voicebot.cli.main``: start refuses bad lines one by one
(with FILE:LINE) and keeps every good one, caps what it prints of a huge list, refuses a file,
script or option it cannot use with exit 2 naming it; list, status, pause, resume, cancel and
export (CSV and JSON lines, to a file) and their errors. The store is a SQLite file in
tmp_path, the scripts a directory of small ones, both given through the environment."""

from __future__ import annotations

import csv
import io
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from voicebot.cli import main
from voicebot.errors import EXIT_ERROR, EXIT_INVALID, EXIT_OK
from voicebot.tools.campaign import MAX_PROBLEMS_SHOWN

REMIND = """\
name: remind
start: greet
states:
  greet:
    say: "Hello {contact.first_name}, this is a reminder from Parcel Express. Goodbye."
    hangup: true
"""
PARCEL = """\
name: parcel
start: greet
states:
  greet:
    say: "Your parcel {contact.parcel} arrives tomorrow."
    hangup: true
"""

# A hostile list: a good line of each kind, and each kind of line to refuse.
HOSTILE = (
    "number,first_name,city\n"  # 1
    '+1 (555) 010-0199,Ann,"Springfield, IL"\n'  # 2 good: a quoted comma
    "100@evil,Bob,Nowhere\n"  # 3 injection
    "1/2&3,Eve,Nowhere\n"  # 4 injection
    "+15550100199,Dup,Nowhere\n"  # 5 duplicate of line 2
    "12,Shorty,Nowhere\n"  # 6 too few digits
    "+15550100203,Zoë,Köln\n"  # 7 good: UTF-8 beyond ASCII
    "\n"  # 8 blank: skipped
    "+15550100204,Joe,Paris,extra\n"  # 9 wrong field count
    "+15550100205,Kim\n"  # 10 wrong field count
    "555.010.0206,  Lee  ,Oslo\n"  # 11 good: spaces trimmed, dots dropped
).encode() + (
    b"+15550100207,Ren\xe9,Lyon\n"  # 12 a column not UTF-8 (Latin-1)
    b"+15550100208,Mia,Rome\n"  # 13 good
)
GOOD = {
    "+15550100199": {
        "contact_number": "+1 (555) 010-0199",
        "first_name": "Ann",
        "city": "Springfield, IL",
    },
    "+15550100203": {"contact_number": "+15550100203", "first_name": "Zoë", "city": "Köln"},
    "5550100206": {"contact_number": "555.010.0206", "first_name": "Lee", "city": "Oslo"},
    "+15550100208": {"contact_number": "+15550100208", "first_name": "Mia", "city": "Rome"},
}
REFUSED = {
    3: "number '100@evil' is not a phone number: '@' is not allowed",
    4: "number '1/2&3' is not a phone number: '/' is not allowed",
    5: "number '+15550100199' is a duplicate of line 2",
    6: "number '12' is not a phone number: it has 2 digits",
    9: "expected 3 fields (number, first_name, city), found 4",
    10: "expected 3 fields (number, first_name, city), found 2",
    12: "column 'first_name' is not UTF-8 text",
}


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with no voicebot.toml, the store and scripts set by environment."""
    for name in list(os.environ):
        if name.startswith("VOICEBOT_"):
            monkeypatch.delenv(name)
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "remind.yaml").write_text(REMIND, encoding="utf-8")
    (scripts / "parcel.yaml").write_text(PARCEL, encoding="utf-8")
    monkeypatch.setenv("VOICEBOT_OUTBOUND_STORE", str(tmp_path / "c.sqlite"))
    monkeypatch.setenv("VOICEBOT_DIALOG_SCRIPTS_DIR", str(scripts))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def campaign(*args: str) -> int:
    return main(["campaign", *args])


def contacts_file(home: Path, data: bytes | str, name: str = "contacts.csv") -> Path:
    path = home / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def export_jsonl(ref: str, capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    capsys.readouterr()
    assert campaign("export", ref, "--format", "jsonl") == EXIT_OK
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def refused_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("refused: ")]


# -- start ---------------------------------------------------------------------------------------


def test_start_refuses_bad_lines_one_by_one_and_keeps_every_good_one(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = contacts_file(home, HOSTILE)
    assert campaign("start", str(path), "--script", "remind", "--name", "parcels") == EXIT_OK
    out, err = capsys.readouterr()
    refused = refused_lines(err)
    assert len(refused) == len(REFUSED)
    for line, reason in REFUSED.items():
        assert any(r.startswith(f"refused: {path}:{line}: {reason}") for r in refused), (line, err)
    # The good lines' contents never show in what was refused.
    assert not any(name in err for name in ("Ann", "Zoë", "Lee", "Mia"))
    assert re.match(
        r"campaign 1 'parcels': 4 contacts loaded, 7 lines refused; script remind; "
        r"window 09:00-20:00 mon-sat \(UTC\), at most 3 attempts",
        out,
    ), out
    assert "outbound.endpoint is not set" in err
    rows = export_jsonl("parcels", capsys)
    assert [row["number"] for row in rows] == list(GOOD)
    for row in rows:
        assert (row["status"], row["attempts"], row["last_outcome"]) == ("pending", 0, None)
        own = {key: row[key] for key in ("contact_number", "first_name", "city")}
        assert own == GOOD[row["number"]]


def test_start_with_every_policy_option(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = contacts_file(home, "number,first_name\n+15550100199,Ann\n")
    code = campaign(
        "start",
        str(path),
        "--script",
        "remind",
        "--name",
        "night",
        "--window",
        "10:30-18:00",
        "--days",
        "mon,wed,fri",
        "--timezone",
        "Europe/Moscow",
        "--max-attempts",
        "5",
        "--retry",
        "busy=5m,machine=2h",
        "--per-day",
        "1",
        "--per-week",
        "3",
    )
    assert code == EXIT_OK
    assert campaign("status", "night") == EXIT_OK
    out = capsys.readouterr().out
    assert (
        "window 10:30-18:00 mon,wed,fri (Europe/Moscow), at most 5 attempts, "
        "retry busy=5m,no_answer=1h,failed=30m,machine=2h, per number 1/day 3/week"
    ) in out


def test_start_without_a_name_names_the_campaign_after_the_file(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = contacts_file(home, "number,first_name\n+15550100199,Ann\n", "june.csv")
    assert campaign("start", str(path), "--script", "remind") == EXIT_OK
    assert re.match(r"campaign 1 'june-\d{8}-\d{6}': 1 contacts loaded", capsys.readouterr().out)


def test_a_semicolon_list_with_a_byte_order_mark_and_the_script_by_path(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = contacts_file(home, b"\xef\xbb\xbfNumber;first_name\r\n+15550100199;Ann\r\n")
    script = home.parent / "scripts" / "remind.yaml"
    assert campaign("start", str(path), "--script", str(script), "--name", "x") == EXIT_OK
    (row,) = export_jsonl("x", capsys)
    # The column keeps its own spelling beside the normalised number.
    assert (row["number"], row["Number"], row["first_name"]) == ("+15550100199",) * 2 + ("Ann",)


def test_a_list_of_100000_lines_is_loaded_and_its_refusals_capped(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = ["number,first_name"]
    bad = 0
    for i in range(100_000):
        if i % 50 == 7:
            lines.append(f"{i}@evil,Name{i}")
            bad += 1
        else:
            lines.append(f"+1555{i:07d},Name{i}")
    path = contacts_file(home, "\n".join(lines) + "\n")
    assert campaign("start", str(path), "--script", "remind", "--name", "big") == EXIT_OK
    out, err = capsys.readouterr()
    refused = refused_lines(err)
    assert len(refused) == MAX_PROBLEMS_SHOWN + 1
    assert refused[0].startswith(f"refused: {path}:9: number '7@evil' is not a phone number")
    assert refused[-1] == f"refused: ... and {bad - MAX_PROBLEMS_SHOWN} more lines"
    assert f"{100_000 - bad} contacts loaded, {bad} lines refused" in out
    assert campaign("status", "big") == EXIT_OK
    assert f"{100_000 - bad} contacts (pending {100_000 - bad})" in capsys.readouterr().out
    assert campaign("export", "big", "--format", "csv") == EXIT_OK
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 100_000 - bad
    kept = {f"+1555{i:07d}": f"Name{i}" for i in range(100_000) if i % 50 != 7}
    assert {row["number"]: row["first_name"] for row in rows} == kept
    assert (rows[0]["number"], rows[0]["first_name"]) == ("+15550000000", "Name0")
    assert (rows[-1]["number"], rows[-1]["first_name"]) == ("+15550099999", "Name99999")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("phone,first_name\n+15550100199,Ann\n", "the header has no 'number' column"),
        ("+15550100199,Ann\n", "looks like a contact, not a header"),
        ("", "the file is empty"),
        ("number,first name\n+15550100199,Ann\n", "column name 'first name' cannot be used"),
        (b"\xff\xfen\x00u\x00m\x00", "the file is UTF-16 text"),
    ],
)
def test_a_file_that_is_no_contact_list_exits_2_naming_it(
    home: Path, capsys: pytest.CaptureFixture[str], data: str | bytes, message: str
) -> None:
    path = contacts_file(home, data)
    assert campaign("start", str(path), "--script", "remind") == EXIT_INVALID
    err = capsys.readouterr().err
    assert err.startswith(f"voicebot campaign start: {path}")
    assert message in err
    assert_no_campaign(capsys)


def assert_no_campaign(capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert campaign("list") == EXIT_OK
    assert capsys.readouterr().out == "no campaigns\n"


@pytest.mark.parametrize("kind", ["missing", "directory"])
def test_a_file_that_cannot_be_read_exits_2(
    home: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    path = home / "contacts.csv"
    if kind == "directory":
        path.mkdir()
    assert campaign("start", str(path), "--script", "remind") == EXIT_INVALID
    err = capsys.readouterr().err
    assert f"voicebot campaign start: {path}: cannot read the contact list: " in err


def test_a_list_with_no_good_line_exits_2(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = contacts_file(home, "number,first_name\n100@evil,Bob\n")
    assert campaign("start", str(path), "--script", "remind") == EXIT_INVALID
    err = capsys.readouterr().err
    assert f"refused: {path}:2: number '100@evil'" in err
    assert f"{path}: no contact to call" in err
    assert_no_campaign(capsys)


def test_a_script_using_a_column_the_list_lacks_exits_2_naming_it(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = contacts_file(home, "number,first_name\n+15550100199,Ann\n")
    assert campaign("start", str(path), "--script", "parcel") == EXIT_INVALID
    err = capsys.readouterr().err
    assert "uses {contact.parcel} but" in err
    assert f"{path} has no column 'parcel' (columns: number, first_name)" in err
    assert_no_campaign(capsys)


def test_an_unknown_script_exits_2(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = contacts_file(home, "number,first_name\n+15550100199,Ann\n")
    assert campaign("start", str(path), "--script", "nosuch") == EXIT_INVALID
    err = capsys.readouterr().err
    assert "voicebot campaign start: --script: no script named 'nosuch'" in err
    assert "(have: parcel, remind)" in err
    assert campaign("start", str(path), "--script", "gone.yaml") == EXIT_INVALID
    assert "script file not found: gone.yaml" in capsys.readouterr().err
    assert_no_campaign(capsys)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--window", "25:00-26:00", "--window '25:00-26:00': 25:00 is not a time of day"),
        ("--window", "20:00-09:00", "--window 20:00-09:00: the window ends before it starts"),
        ("--window", "9-5", "--window '9-5': expected HH:MM-HH:MM"),
        ("--days", "funday", "--days 'funday': 'funday' is not a day"),
        ("--days", "", "--days '': expected days"),
        ("--retry", "busy=xx", "--retry busy: 'xx' is not a duration"),
        ("--retry", "answered=1h", "--retry: answered is not retried"),
        ("--retry", "busy", "--retry 'busy': expected outcome=delay pairs"),
        ("--retry", "busy=0s", "--retry busy=0s: the delay must be from 1s to 30d"),
        ("--timezone", "Mars/Base", "--timezone 'Mars/Base': unknown time zone"),
        ("--timezone", "localtime", "--timezone 'localtime': unknown time zone"),
        ("--max-attempts", "0", "--max-attempts 0: expected a whole number from 1 to 100"),
        ("--max-attempts", "101", "--max-attempts 101: expected a whole number from 1 to 100"),
        ("--per-day", "0", "--per-day 0: expected a whole number"),
        ("--per-week", "-1", "--per-week -1: expected a whole number"),
    ],
)
def test_a_bad_policy_option_exits_2_naming_it(
    home: Path, capsys: pytest.CaptureFixture[str], option: str, value: str, message: str
) -> None:
    path = contacts_file(home, "number,first_name\n+15550100199,Ann\n")
    assert campaign("start", str(path), "--script", "remind", f"{option}={value}") == EXIT_INVALID
    err = capsys.readouterr().err
    assert err.startswith(f"voicebot campaign start: {message}"), err
    assert_no_campaign(capsys)


@pytest.mark.parametrize("option", ["--max-attempts", "--per-day", "--per-week"])
def test_a_count_that_is_no_number_is_refused_by_the_parser(
    home: Path, capsys: pytest.CaptureFixture[str], option: str
) -> None:
    path = contacts_file(home, "number,first_name\n+15550100199,Ann\n")
    with pytest.raises(SystemExit) as exit_:
        campaign("start", str(path), "--script", "remind", option, "three")
    assert exit_.value.code == EXIT_INVALID
    assert f"argument {option}: invalid int value: 'three'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("2024", "campaign name '2024' is only digits: it would read as an id"),
        ("  ", "a campaign needs a name"),
    ],
)
def test_a_bad_campaign_name_exits_2(
    home: Path, capsys: pytest.CaptureFixture[str], name: str, message: str
) -> None:
    path = contacts_file(home, "number,first_name\n+15550100199,Ann\n")
    assert campaign("start", str(path), "--script", "remind", "--name", name) == EXIT_INVALID
    assert message in capsys.readouterr().err


def test_a_campaign_name_taken_exits_2_and_leaves_the_first_as_it_was(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = contacts_file(home, "number,first_name\n+15550100199,Ann\n", "a.csv")
    second = contacts_file(home, "number,first_name\n+15550100200,Bob\n", "b.csv")
    assert campaign("start", str(first), "--script", "remind", "--name", "p") == EXIT_OK
    assert campaign("start", str(second), "--script", "remind", "--name", "p") == EXIT_INVALID
    assert "a campaign named 'p' exists already" in capsys.readouterr().err
    assert [row["first_name"] for row in export_jsonl("p", capsys)] == ["Ann"]


# -- list, status, pause, resume, cancel ---------------------------------------------------------


def started(home: Path, name: str, *numbers: str) -> None:
    text = "number,first_name\n" + "".join(f"{n},N{i}\n" for i, n in enumerate(numbers))
    path = contacts_file(home, text, f"{name}.csv")
    assert campaign("start", str(path), "--script", "remind", "--name", name) == EXIT_OK


def test_list_and_status(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert_no_campaign(capsys)
    started(home, "parcels", "+15550100199", "+15550100200")
    started(home, "surveys", "+15550100201")
    capsys.readouterr()
    assert campaign("list") == EXIT_OK
    assert capsys.readouterr().out.splitlines() == [
        "   1  parcels  running  2 contacts (pending 2); 0 attempts, 0 dialling",
        "   2  surveys  running  1 contacts (pending 1); 0 attempts, 0 dialling",
    ]
    for ref in ("surveys", "2"):
        assert campaign("status", ref) == EXIT_OK
        lines = capsys.readouterr().out.splitlines()
        assert lines[0] == "   2  surveys  running  1 contacts (pending 1); 0 attempts, 0 dialling"
        assert lines[1].startswith("      script remind; window 09:00-20:00 mon-sat (UTC)")
        assert re.fullmatch(r"      created \S+, changed \S+", lines[2])


def test_pause_resume_and_cancel(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    started(home, "parcels", "+15550100199", "+15550100200")
    capsys.readouterr()
    assert campaign("pause", "parcels") == EXIT_OK
    assert "  parcels  paused  2 contacts (pending 2)" in capsys.readouterr().out
    assert campaign("pause", "1") == EXIT_OK  # again: nothing changes
    assert "  parcels  paused  " in capsys.readouterr().out
    assert campaign("resume", "parcels") == EXIT_OK
    assert "  parcels  running  2 contacts (pending 2)" in capsys.readouterr().out
    assert campaign("cancel", "parcels") == EXIT_OK
    assert "  parcels  cancelled  2 contacts (cancelled 2)" in capsys.readouterr().out
    rows = export_jsonl("parcels", capsys)
    assert [row["status"] for row in rows] == ["cancelled", "cancelled"]
    assert campaign("resume", "parcels") == EXIT_INVALID
    err = capsys.readouterr().err
    assert (
        err == "voicebot campaign resume: campaign 'parcels' is cancelled: it cannot be resumed\n"
    )
    assert campaign("pause", "parcels") == EXIT_INVALID
    assert "campaign 'parcels' is cancelled: it cannot be paused" in capsys.readouterr().err
    assert campaign("cancel", "parcels") == EXIT_OK  # cancelled already: nothing changes


@pytest.mark.parametrize("command", ["status", "pause", "resume", "cancel", "export"])
@pytest.mark.parametrize("ref", ["nope", "7"])
def test_an_unknown_campaign_exits_2(
    home: Path, capsys: pytest.CaptureFixture[str], command: str, ref: str
) -> None:
    started(home, "parcels", "+15550100199")
    capsys.readouterr()
    assert campaign(command, ref) == EXIT_INVALID
    out, err = capsys.readouterr()
    assert err == f"voicebot campaign {command}: no campaign '{ref}'\n"
    assert out == ""


# -- export --------------------------------------------------------------------------------------


def test_export_as_csv_and_json_lines(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = contacts_file(home, HOSTILE)
    assert campaign("start", str(path), "--script", "remind", "--name", "parcels") == EXIT_OK
    capsys.readouterr()
    assert campaign("export", "parcels") == EXIT_OK  # CSV by default
    text = capsys.readouterr().out
    rows = list(csv.DictReader(io.StringIO(text)))
    assert text.splitlines()[0] == (
        "number,status,attempts,last_outcome,last_attempt_at,amd,result,"
        "contact_number,first_name,city"
    )
    assert [row["number"] for row in rows] == list(GOOD)
    for row in rows:
        assert (row["status"], row["attempts"], row["last_outcome"], row["result"]) == (
            "pending",
            "0",
            "",
            "",
        )
        own = {key: row[key] for key in ("contact_number", "first_name", "city")}
        assert own == GOOD[row["number"]]
    jsonl = export_jsonl("1", capsys)
    assert [{k: str(v) for k, v in row.items() if v is not None} for row in jsonl] == [
        {k: v for k, v in row.items() if v != ""} for row in rows
    ]


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_export_to_a_file(home: Path, capsys: pytest.CaptureFixture[str], fmt: str) -> None:
    started(home, "parcels", "+15550100199", "+15550100200")
    capsys.readouterr()
    target = home / f"out.{fmt}"
    assert campaign("export", "parcels", "--format", fmt, "-o", str(target)) == EXIT_OK
    assert capsys.readouterr() == ("", "")
    text = target.read_text(encoding="utf-8")
    if fmt == "csv":
        rows: list[dict[str, Any]] = list(csv.DictReader(io.StringIO(text)))
    else:
        rows = [json.loads(line) for line in text.splitlines()]
    assert [(row["number"], row["first_name"]) for row in rows] == [
        ("+15550100199", "N0"),
        ("+15550100200", "N1"),
    ]
    assert campaign("export", "parcels", "--output", "-") == EXIT_OK  # "-": standard output
    assert capsys.readouterr().out.startswith("number,status,")


def test_export_to_a_file_that_cannot_be_written_exits_1(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    started(home, "parcels", "+15550100199")
    capsys.readouterr()
    target = home / "no" / "such" / "dir" / "out.csv"
    assert campaign("export", "parcels", "-o", str(target)) == EXIT_ERROR
    assert f"voicebot campaign export: cannot write {target}: " in capsys.readouterr().err


def test_an_unknown_export_format_is_refused_by_the_parser(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    started(home, "parcels", "+15550100199")
    with pytest.raises(SystemExit) as exit_:
        campaign("export", "parcels", "--format", "xml")
    assert exit_.value.code == EXIT_INVALID
    assert "argument --format: invalid choice: 'xml'" in capsys.readouterr().err
