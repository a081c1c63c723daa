"""Contact lists: numbers that can only be digits in a dial string, hostile lines refused one
by one with their line numbers (injection, duplicates, bytes that are not UTF-8, unclosed
quotes, long fields), good lines kept whole, file-level refusals naming the problem, and a
100,000-line list."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voicebot.errors import ContactsError
from voicebot.outbound import contacts
from voicebot.outbound.contacts import (
    MAX_FIELD_CHARS,
    ContactList,
    ContactProblem,
    normalise_number,
    parse_contacts,
    read_contacts,
)
from voicebot.outbound.model import Contact

DIALLABLE = re.compile(r"\+?[0-9]{3,15}")
HEADER = b"number,name\n"
GOOD_BEFORE = b"+7 900 000-00-01,Before\n"
GOOD_AFTER = b"+7 900 000-00-02,After\n"


def parse(text: str | bytes) -> ContactList:
    data = text.encode() if isinstance(text, str) else text
    return parse_contacts(data, source="contacts.csv")


def problems(result: ContactList) -> list[str]:
    return [str(problem) for problem in result.problems]


def numbers(result: ContactList) -> list[tuple[int, str]]:
    return [(contact.line, contact.number) for contact in result.contacts]


# --- numbers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "number"),
    [
        pytest.param("+1 (555) 010-0199", "+15550100199", id="us-formatted"),
        pytest.param("8 (900) 123-45-67", "89001234567", id="ru-national"),
        pytest.param("  +7 900 1234567 ", "+79001234567", id="spaces-around"),
        pytest.param("555.0100", "5550100", id="dots"),
        pytest.param("100", "100", id="three-digits"),
        pytest.param("+123456789012345", "+123456789012345", id="fifteen-digits"),
        pytest.param("(((12)))3", "123", id="brackets-are-only-separators"),
    ],
)
def test_a_phone_number_becomes_digits(text: str, number: str) -> None:
    assert normalise_number(text) == number


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        pytest.param("100@evil", "'@' is not allowed", id="at-sign"),
        pytest.param("1/2&3", "'/' is not allowed", id="slash"),
        pytest.param("12&34", "'&' is not allowed", id="ampersand"),
        pytest.param("123;456", "';' is not allowed", id="semicolon"),
        pytest.param("123,456", "',' is not allowed", id="comma"),
        pytest.param("'123'", '"\'" is not allowed', id="single-quotes"),
        pytest.param('"123"', "'\"' is not allowed", id="double-quotes"),
        pytest.param("123\x00", "'\\x00' is not allowed", id="nul"),
        pytest.param("123\n456", "'\\n' is not allowed", id="newline"),
        pytest.param("12\t34", "'\\t' is not allowed", id="tab"),
        pytest.param("12*34", "'*' is not allowed", id="star"),
        pytest.param("#123", "'#' is not allowed", id="hash"),
        pytest.param("PJSIP/100", "'P' is not allowed", id="letters"),
        pytest.param("１２３", "'１' is not allowed", id="fullwidth-digits"),
        pytest.param("٣٣٣", "'٣' is not allowed", id="arabic-digits"),
        pytest.param("++123", "'+' may only lead the number", id="two-pluses"),
        pytest.param("1+23", "'+' may only lead the number", id="inner-plus"),
        pytest.param("12", "it has 2 digits (3 to 15 needed)", id="too-short"),
        pytest.param("+1234567890123456", "it has 16 digits", id="too-long"),
        pytest.param("+ ( ) - .", "it has 0 digits", id="no-digits"),
        pytest.param("   ", "it is empty", id="empty"),
    ],
)
def test_anything_else_is_refused_with_its_reason(text: str, reason: str) -> None:
    with pytest.raises(ValueError) as error:
        normalise_number(text)
    assert reason in str(error.value)


@given(st.text())
def test_normalise_number_gives_nothing_but_a_plus_and_digits(text: str) -> None:
    try:
        number = normalise_number(text)
    except ValueError:
        return
    assert DIALLABLE.fullmatch(number)


@given(st.text(alphabet="0123456789 ().-+@/&;,*#\"'\x00\n"))
def test_the_digits_are_those_of_the_input_in_order(text: str) -> None:
    try:
        number = normalise_number(text)
    except ValueError:
        return
    assert number.lstrip("+") == "".join(char for char in text if char.isdigit())
    assert number.startswith("+") == text.strip().startswith("+")


# --- lines refused one by one ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        pytest.param(
            b"100@evil,Mallory",
            "contacts.csv:3: number '100@evil' is not a phone number: '@' is not allowed "
            "(only digits, spaces, '-', '.', '(', ')' and a leading '+')",
            id="injection-at",
        ),
        pytest.param(
            b"1/2&3,Mallory",
            "contacts.csv:3: number '1/2&3' is not a phone number: '/' is not allowed",
            id="injection-slash",
        ),
        pytest.param(
            b'"100,Local/1@x",Mallory',
            "contacts.csv:3: number '100,Local/1@x' is not a phone number: ',' is not allowed",
            id="injection-quoted-comma",
        ),
        pytest.param(
            b",Nobody",
            "contacts.csv:3: number '' is not a phone number: it is empty",
            id="no-number",
        ),
        pytest.param(
            b"+7 900 000-00-01,Again",
            "contacts.csv:3: number '+7 900 000-00-01' is a duplicate of line 2",
            id="duplicate",
        ),
        pytest.param(
            b"+79000000001,Again",
            "contacts.csv:3: number '+79000000001' is a duplicate of line 2",
            id="duplicate-written-otherwise",
        ),
        pytest.param(
            b"+7 900 000-00-03,Caf\xe9",
            "contacts.csv:3: column 'name' is not UTF-8 text (save the file as UTF-8)",
            id="latin-1-name",
        ),
        pytest.param(
            b"+7 900 \xff00-00-03,Caf\xe9",
            "contacts.csv:3: columns 'number', 'name' are not UTF-8 text",
            id="two-columns-not-utf8",
        ),
        pytest.param(
            b"+7 900 000-00-03",
            "contacts.csv:3: expected 2 fields (number, name), found 1",
            id="too-few-fields",
        ),
        pytest.param(
            b"+7 900 000-00-03,Ann,extra",
            "contacts.csv:3: expected 2 fields (number, name), found 3",
            id="too-many-fields",
        ),
        pytest.param(
            b"+7 900 000-00-03," + b"x" * (MAX_FIELD_CHARS + 1),
            f"contacts.csv:3: column 'name' is longer than {MAX_FIELD_CHARS} characters",
            id="long-field",
        ),
        pytest.param(
            b"+7 900 000-00-03," + b"x" * 200_000,
            f"contacts.csv:3: a field is longer than {MAX_FIELD_CHARS} characters",
            id="field-over-the-csv-limit",
        ),
        pytest.param(
            b'+7 900 000-00-03,"Ann"x',
            "contacts.csv:3: not valid CSV: ',' expected after '\"'",
            id="junk-after-quote",
        ),
    ],
)
def test_a_bad_line_is_refused_and_its_neighbours_kept(line: bytes, problem: str) -> None:
    result = parse(HEADER + GOOD_BEFORE + line + b"\n" + GOOD_AFTER)
    assert len(result.problems) == 1
    assert str(result.problems[0]).startswith(problem)
    assert [contact.fields["name"] for contact in result.contacts] == ["Before", "After"]
    assert numbers(result) == [(2, "+79000000001"), (4, "+79000000002")]


def test_the_problem_reads_file_line_message() -> None:
    problem = ContactProblem(7, "number '100@evil' is not a phone number: x", "contacts.csv")
    assert str(problem) == "contacts.csv:7: number '100@evil' is not a phone number: x"
    assert (problem.line, problem.message) == (7, "number '100@evil' is not a phone number: x")


@pytest.mark.parametrize(
    ("text", "problem", "kept"),
    [
        pytest.param(
            'number,name\n1001,"Ann\n1002,Bob\n1003,Cid\n',
            "contacts.csv:2: a quoted field is not closed (an unclosed '\"' on this line? "
            "lines 3-4 are read separately)",
            [(3, "1002"), (4, "1003")],
            id="unclosed-to-the-end",
        ),
        pytest.param(
            'number,name\n1001,"Ann\n1002,Bob\n1003,"Cid"\n1004,Dan\n',
            "contacts.csv:2: not valid CSV: ',' expected after '\"' (an unclosed '\"' on this "
            "line? lines 3-4 are read separately)",
            [(3, "1002"), (4, "1003"), (5, "1004")],
            id="unclosed-until-the-next-quote",
        ),
        pytest.param(
            'number,name\n1001,"Ann\n1002,"Bob\n1003,Cid\n',
            "contacts.csv:2: not valid CSV: ',' expected after '\"' (an unclosed '\"' on this "
            "line? line 3 is read separately)",
            [(4, "1003")],
            id="two-unclosed",
        ),
    ],
)
def test_an_unclosed_quote_costs_its_own_line_only(
    text: str, problem: str, kept: list[tuple[int, str]]
) -> None:
    result = parse(text)
    assert problems(result)[0] == problem
    assert numbers(result) == kept


def test_a_quoted_line_break_is_kept_and_lines_stay_physical() -> None:
    text = 'number,address\r\n\r\n1001,"Main St 1\r\nFlat 2"\r\n\r\n1002,Side St\r\n'
    result = parse(text)
    assert result.problems == []
    assert numbers(result) == [(3, "1001"), (6, "1002")]
    assert result.contacts[0].fields["address"] == "Main St 1\r\nFlat 2"


@pytest.mark.parametrize(
    ("value", "timezone", "problem"),
    [
        pytest.param("Europe/Moscow", "Europe/Moscow", None, id="iana"),
        pytest.param("", None, None, id="empty-is-the-campaign's"),
        pytest.param("  UTC ", "UTC", None, id="trimmed"),
        pytest.param("Mars/Olympus", None, "unknown time zone 'Mars/Olympus'", id="unknown"),
        pytest.param("../../etc/passwd", None, "unknown time zone", id="path"),
        pytest.param("localtime", None, "unknown time zone", id="the-machine's"),
        pytest.param("America", None, "unknown time zone", id="a-directory"),
    ],
)
def test_the_timezone_column(value: str, timezone: str | None, problem: str | None) -> None:
    result = parse(f"number,timezone\n1001,{value}\n")
    if problem is None:
        assert result.problems == []
        assert result.contacts[0].timezone == timezone
    else:
        assert result.contacts == []
        assert problem in problems(result)[0]
        assert "in column 'timezone' (an IANA name such as Europe/Moscow)" in problems(result)[0]


def test_a_field_of_the_longest_length_is_kept() -> None:
    result = parse("number,note\n1001," + "x" * MAX_FIELD_CHARS + "\n")
    assert result.problems == []
    assert len(result.contacts[0].fields["note"]) == MAX_FIELD_CHARS


def test_every_hostile_line_at_once() -> None:
    data = b"\n".join(
        [
            b"number,first_name,parcel",
            b"+1 (555) 010-0199,Ann,P1",
            b"100@evil,Mallory,P2",
            b"1/2&3,Mallory,P3",
            b"+15550100199,Ann again,P4",
            b"+1 555 010 0200,Z\xfcrich,P5",
            b"+1 555 010 0201,Bob",
            b"+1 555 010 0202,\xd0\x98\xd0\xb2\xd0\xb0\xd0\xbd,P7",
            b"",
        ]
    )
    result = parse(data)
    assert [problem.line for problem in result.problems] == [3, 4, 5, 6, 7]
    assert result.contacts == [
        Contact(
            line=2,
            number="+15550100199",
            fields={"number": "+1 (555) 010-0199", "first_name": "Ann", "parcel": "P1"},
        ),
        Contact(
            line=8,
            number="+15550100202",
            fields={"number": "+1 555 010 0202", "first_name": "Иван", "parcel": "P7"},
        ),
    ]


# --- the file --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "columns"),
    [
        pytest.param(b"number,name\n1001,Ann\n", ["number", "name"], id="comma"),
        pytest.param(b"number;name\n1001;Ann\n", ["number", "name"], id="semicolon"),
        pytest.param(b"\xef\xbb\xbfnumber,name\n1001,Ann\n", ["number", "name"], id="bom"),
        pytest.param(b" Number ; name \r\n1001;Ann\r\n", ["Number", "name"], id="case-and-space"),
        pytest.param(b'"number","name"\n"1001","Ann"\n', ["number", "name"], id="quoted"),
        pytest.param(b"\n\nnumber\n\n1001\n", ["number"], id="one-column-after-blank-lines"),
        pytest.param(b"name,number,_x1\nAnn,1001,\n", ["name", "number", "_x1"], id="any-order"),
    ],
)
def test_header_and_delimiter(data: bytes, columns: list[str]) -> None:
    result = parse(data)
    assert result.problems == []
    assert result.columns == columns
    assert [contact.number for contact in result.contacts] == ["1001"]
    assert dict(result.contacts[0].fields).get("name", "Ann") == "Ann"


def test_fields_hold_every_column_trimmed() -> None:
    result = parse("number , First_Name,parcel\n  +7 900 1234567 ,  Ivan , A-1 \n,,\n")
    assert result.contacts == [
        Contact(
            line=2,
            number="+79001234567",
            fields={"number": "+7 900 1234567", "First_Name": "Ivan", "parcel": "A-1"},
        )
    ]
    assert result.problems == []  # a line of empty fields is an empty line


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(
            b"",
            "contacts.csv: the file is empty: expected a header line with a 'number' column",
            id="empty",
        ),
        pytest.param(b"\n \n,,\n", "contacts.csv: the file is empty", id="blank-lines"),
        pytest.param(
            b"phone,name\n1001,Ann\n",
            "contacts.csv:1: the header has no 'number' column (it has: phone, name)",
            id="no-number-column",
        ),
        pytest.param(
            b"1001,Ann\n1002,Bob\n",
            "contacts.csv:1: this looks like a contact, not a header: the first line must name "
            "the columns, one of them 'number' (e.g. number,first_name)",
            id="no-header",
        ),
        pytest.param(
            b"number,first name\n",
            "contacts.csv:1: column name 'first name' cannot be used as {contact.NAME}: use "
            "letters, digits and '_', not starting with a digit (e.g. first_name)",
            id="space-in-name",
        ),
        pytest.param(
            b"number,contact.name\n",
            "column name 'contact.name' cannot be used",
            id="dot-in-name",
        ),
        pytest.param(b"number,{x}\n", "column name '{x}' cannot be used", id="braces"),
        pytest.param(b"number,\xd0\xb8\xd0\xbc\xd1\x8f\n", "column name 'имя'", id="cyrillic"),
        pytest.param(
            b"number,name,Name\n",
            "contacts.csv:1: column name 'Name' is given twice (columns 2 and 3)",
            id="duplicate-name",
        ),
        pytest.param(
            b"number,Number\n", "column name 'Number' is given twice", id="duplicate-number"
        ),
        pytest.param(
            b"number,,name\n",
            "contacts.csv:1: column 2 of the header has no name",
            id="unnamed-column",
        ),
        pytest.param(
            b"number,n\xe4me\n",
            "contacts.csv:1: column 2 of the header is not UTF-8 text",
            id="header-not-utf8",
        ),
        pytest.param(
            "number,name\n".encode("utf-16"),
            "contacts.csv: the file is UTF-16 text: save it as CSV in UTF-8",
            id="utf-16",
        ),
        pytest.param(
            b'"number,name\n', "contacts.csv:1: the header is not valid CSV", id="header-quote"
        ),
    ],
)
def test_a_file_that_is_no_contact_list_is_refused(data: bytes, message: str) -> None:
    with pytest.raises(ContactsError) as error:
        parse(data)
    assert str(error.value).startswith("contacts.csv")
    assert message in str(error.value)


def test_the_size_limits_are_file_level(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(contacts, "MAX_CONTACTS", 3)
    assert len(parse("number\n1001\n\n1002\n1003\n").contacts) == 3
    with pytest.raises(ContactsError, match=r"more than 3 contact lines: split the list"):
        parse("number\n1001\n1002\n1003\n1004\n")
    monkeypatch.setattr(contacts, "MAX_BYTES", 2 * 1024 * 1024)
    with pytest.raises(ContactsError, match=r"the file is 2\.0 MB; .* at most 2 MB"):
        parse(b"number\n" + b"1001\n" * 420_000)


def test_a_list_of_100000_lines_parses_whole() -> None:
    lines = [b"number,first_name,parcel,timezone"]
    for n in range(100_000):
        number = b"100@evil" if n % 1000 == 999 else b"+7 (900) %07d" % n
        lines.append(b"%s,Name%d,P%d,Europe/Moscow" % (number, n, n))
    result = parse(b"\n".join(lines) + b"\n")
    assert len(result.contacts) == 99_900
    assert [problem.line for problem in result.problems] == list(range(1001, 100_002, 1000))
    assert result.contacts[-1] == Contact(
        line=100_000,
        number="+79000099998",
        fields={
            "number": "+7 (900) 0099998",
            "first_name": "Name99998",
            "parcel": "P99998",
            "timezone": "Europe/Moscow",
        },
        timezone="Europe/Moscow",
    )


def test_read_contacts_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "contacts.csv"
    path.write_bytes(b"number,name\n100@evil,x\n1001,Ann\n")
    result = read_contacts(path)
    assert problems(result) == [
        f"{path}:2: number '100@evil' is not a phone number: '@' is not allowed "
        "(only digits, spaces, '-', '.', '(', ')' and a leading '+')"
    ]
    assert numbers(result) == [(3, "1001")]
    missing = tmp_path / "missing.csv"
    with pytest.raises(ContactsError, match=rf"^{re.escape(str(missing))}: cannot read .*"):
        read_contacts(missing)
    with pytest.raises(ContactsError, match=rf"^{re.escape(str(tmp_path))}: cannot read .*"):
        read_contacts(tmp_path)


def test_read_contacts_refuses_a_huge_file_before_reading_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "big.csv"
    path.write_bytes(b"number\n" + b"1001\n" * 300_000)
    monkeypatch.setattr(contacts, "MAX_BYTES", 1024 * 1024)
    with pytest.raises(ContactsError, match=r"big\.csv: the file is 1\.4 MB"):
        read_contacts(path)
