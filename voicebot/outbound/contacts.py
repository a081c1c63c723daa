"""Contact lists: a CSV file read into contacts, each bad line refused on its own.

A list is a CSV file in UTF-8 (a byte-order mark is allowed) whose first non-empty line is a
header naming the columns. One column is ``number`` (any case); the others are the contact's
own, used in scripts as ``{contact.NAME}``, so a column name is a template name:
``[A-Za-z_][A-Za-z0-9_]*``. An optional ``timezone`` column gives the contact's own IANA
time zone. The delimiter is a comma or a semicolon (spreadsheets in many locales write
semicolons), told from the header line alone.

A file that cannot be a contact list at all (no header, no ``number`` column, a bad or
repeated column name, over :data:`MAX_CONTACTS` contacts or :data:`MAX_BYTES` bytes) raises
:class:`~voicebot.errors.ContactsError`. A bad line is refused on its own, with its line
number and the reason, and every good line is kept: a number that is not a phone number, the
same number as an earlier line, a column that is not UTF-8 text, the wrong number of fields,
an unknown time zone, a field longer than :data:`MAX_FIELD_CHARS` characters.

Numbers end up in a dial string such as ``PJSIP/{number}@trunk``, so :func:`normalise_number`
lets through nothing but an optional ``+`` and 3 to 15 digits: ``100@evil`` or ``1/2&3``
cannot reach Asterisk.

Pure: :func:`parse_contacts` works on bytes; :func:`read_contacts` only reads the file first.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import ContactsError
from .campaigns import known_timezone
from .model import Contact

MAX_CONTACTS = 1_000_000
MAX_BYTES = 200 * 1024 * 1024
MAX_FIELD_CHARS = 1000
NUMBER_COLUMN = "number"
TIMEZONE_COLUMN = "timezone"
MIN_DIGITS, MAX_DIGITS = 3, 15  # E.164 allows 15; shorter than 3 is no number anywhere

_COLUMN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER_SHAPE = re.compile(r"\+?[0-9 ().-]*")
_SEPARATORS = str.maketrans("", "", " ().-+")
# What surrogateescape decoding makes of bytes that are not UTF-8.
_NOT_UTF8 = re.compile("[\udc80-\udcff]")
_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_ALLOWED_TEXT = "only digits, spaces, '-', '.', '(', ')' and a leading '+'"
_SHOWN_MAX = 40


@dataclass(frozen=True)
class ContactProblem:
    """Why one line of a contact list was refused. ``str()`` reads ``FILE:LINE: MESSAGE``."""

    line: int  # the physical line of the CSV file where the refused record starts
    message: str
    source: str = "contacts"

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.message}"


@dataclass
class ContactList:
    """The good lines of a contact list, in file order, and the refused ones."""

    contacts: list[Contact]
    problems: list[ContactProblem]
    columns: list[str]  # the header's names, trimmed, in order (the number column included)
    source: str = "contacts"


def normalise_number(text: str) -> str:
    """``text`` as an optional ``+`` and 3-15 digits, separators dropped; ValueError (the
    reason) for anything else: letters, ``@ / & ; * #``, quotes, control characters, a ``+``
    that does not lead."""
    stripped = text.strip()
    if not stripped:
        raise ValueError("it is empty")
    if not _NUMBER_SHAPE.fullmatch(stripped):
        raise ValueError(_first_refused(stripped))
    digits = stripped.translate(_SEPARATORS)
    if not MIN_DIGITS <= len(digits) <= MAX_DIGITS:
        raise ValueError(f"it has {len(digits)} digits ({MIN_DIGITS} to {MAX_DIGITS} needed)")
    return f"+{digits}" if stripped.startswith("+") else digits


def read_contacts(path: Path) -> ContactList:
    """The contact list in the file at ``path``; ContactsError naming the file if it cannot
    be read or is no contact list."""
    source = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise ContactsError(_too_big(source, size))
        data = path.read_bytes()
    except OSError as exc:
        raise ContactsError(f"{source}: cannot read the contact list: {_os_reason(exc)}") from None
    return parse_contacts(data, source=source)


def parse_contacts(data: bytes, *, source: str = "contacts") -> ContactList:
    """The contact list in ``data`` (a CSV file's bytes); ``source`` names it in messages."""
    if len(data) > MAX_BYTES:
        raise ContactsError(_too_big(source, len(data)))
    if data.startswith(_UTF16_BOMS):
        raise ContactsError(f"{source}: the file is UTF-16 text: save it as CSV in UTF-8")
    text = data.removeprefix(_BOM).decode("utf-8", errors="surrogateescape")
    lines = _Lines(io.StringIO(text, newline="").readlines())
    # Told from physical lines, before any parsing: a list too long fails at once.
    if sum(1 for line in lines.all if line.strip()) - 1 > MAX_CONTACTS:
        raise ContactsError(
            f"{source}: more than {MAX_CONTACTS:,} contact lines: "
            "split the list into several campaigns"
        )
    reader = csv.reader(lines, delimiter=_delimiter(lines.all), strict=True)
    columns = _header(reader, lines, source)
    if columns is None:
        raise ContactsError(
            f"{source}: the file is empty: expected a header line with a 'number' column"
        )
    parser = _Parser(source, columns, may_be_bad_utf8=_NOT_UTF8.search(text) is not None)
    return parser.run(reader, lines)


class _Lines:
    """The file's physical lines for csv.reader, one at a time, with a position that can be
    set back: after an unclosed quote the lines it swallowed are read again on their own."""

    def __init__(self, lines: list[str]) -> None:
        self.all = lines
        self.consumed = 0  # how many lines csv.reader has taken: the last one's line number

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        if self.consumed >= len(self.all):
            raise StopIteration
        self.consumed += 1
        return self.all[self.consumed - 1]


def _delimiter(lines: list[str]) -> str:
    """';' when the header line (the first one with text) holds more of them than commas."""
    header = next((line for line in lines if line.strip()), "")
    return ";" if header.count(";") > header.count(",") else ","


def _header(reader: Iterator[list[str]], lines: _Lines, source: str) -> list[str] | None:
    """The checked column names of the first non-empty record, None if there is none."""
    try:
        for row in reader:
            if any(value.strip() for value in row):
                return _columns(row, f"{source}:{lines.consumed}")
    except csv.Error as exc:
        raise ContactsError(
            f"{source}:{lines.consumed}: the header is not valid CSV: {exc}"
        ) from None
    return None


def _columns(row: list[str], where: str) -> list[str]:
    names = [value.strip() for value in row]
    if NUMBER_COLUMN not in (name.lower() for name in names) and any(map(_is_number, names)):
        raise ContactsError(
            f"{where}: this looks like a contact, not a header: the first line must name the "
            "columns, one of them 'number' (e.g. number,first_name)"
        )
    seen: dict[str, int] = {}
    for index, name in enumerate(names, start=1):
        if _NOT_UTF8.search(name):
            raise ContactsError(f"{where}: column {index} of the header is not UTF-8 text")
        if not name:
            raise ContactsError(f"{where}: column {index} of the header has no name")
        if not _COLUMN_NAME.fullmatch(name):
            raise ContactsError(
                f"{where}: column name {_shown(name)} cannot be used as {{contact.NAME}}: "
                "use letters, digits and '_', not starting with a digit (e.g. first_name)"
            )
        if name.lower() in seen:
            raise ContactsError(
                f"{where}: column name {_shown(name)} is given twice "
                f"(columns {seen[name.lower()]} and {index})"
            )
        seen[name.lower()] = index
    if NUMBER_COLUMN not in seen:
        raise ContactsError(
            f"{where}: the header has no 'number' column (it has: {', '.join(names)})"
        )
    return names


class _Parser:
    """The records after the header, checked one by one."""

    def __init__(self, source: str, columns: list[str], *, may_be_bad_utf8: bool) -> None:
        self.source = source
        self.columns = columns
        self.lowered = [name.lower() for name in columns]
        self.number_at = self.lowered.index(NUMBER_COLUMN)
        self.timezone_at = (
            self.lowered.index(TIMEZONE_COLUMN) if TIMEZONE_COLUMN in self.lowered else None
        )
        self.may_be_bad_utf8 = may_be_bad_utf8
        self.contacts: list[Contact] = []
        self.problems: list[ContactProblem] = []
        self.first_line_of: dict[str, int] = {}  # normalised number -> the line it came on
        self.zones: dict[str, bool] = {}

    def run(self, reader: Iterator[list[str]], lines: _Lines) -> ContactList:
        while True:
            start = lines.consumed + 1
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                self._refuse_record(start, lines, _csv_reason(exc))
                continue
            if not any(value.strip() for value in row):
                continue
            if len(row) != len(self.columns):
                found = f"expected {len(self.columns)} fields ({', '.join(self.columns)}), "
                self._refuse_record(start, lines, f"{found}found {len(row)}")
                continue
            values = [value.strip() for value in row]
            too_long = self._too_long(values)
            if too_long and lines.consumed > start:
                self._refuse_record(start, lines, too_long)
                continue
            problem = too_long or self._check(values, start)
            if problem:
                self.problems.append(ContactProblem(start, problem, self.source))
        return ContactList(self.contacts, self.problems, self.columns, self.source)

    def _refuse_record(self, start: int, lines: _Lines, reason: str) -> None:
        """Refuse the record that began on line ``start``. One that ran over several lines is
        most likely an unclosed quote that swallowed the lines after it: those are read again
        on their own, so that no good line is lost to it."""
        if lines.consumed > start:
            swallowed = (
                f"line {start + 1} is"
                if lines.consumed == start + 1
                else f"lines {start + 1}-{lines.consumed} are"
            )
            reason += f" (an unclosed '\"' on this line? {swallowed} read separately)"
            lines.consumed = start
        self.problems.append(ContactProblem(start, reason, self.source))

    def _too_long(self, values: list[str]) -> str | None:
        if max(map(len, values)) <= MAX_FIELD_CHARS:
            return None
        for name, value in zip(self.columns, values, strict=True):
            if len(value) > MAX_FIELD_CHARS:
                return f"column '{name}' is longer than {MAX_FIELD_CHARS} characters"
        return None

    def _check(self, values: list[str], line: int) -> str | None:
        """The reason to refuse a record of the right size, else None (and it is kept)."""
        if self.may_be_bad_utf8:
            not_utf8 = [
                f"'{name}'"
                for name, value in zip(self.columns, values, strict=True)
                if _NOT_UTF8.search(value)
            ]
            if len(not_utf8) == 1:
                return f"column {not_utf8[0]} is not UTF-8 text (save the file as UTF-8)"
            if not_utf8:
                return f"columns {', '.join(not_utf8)} are not UTF-8 text (save the file as UTF-8)"
        raw_number = values[self.number_at]
        try:
            number = normalise_number(raw_number)
        except ValueError as exc:
            return f"number {_shown(raw_number)} is not a phone number: {exc}"
        zone = values[self.timezone_at] if self.timezone_at is not None else ""
        if zone and not self._known_zone(zone):
            return (
                f"unknown time zone {_shown(zone)} in column "
                f"'{self.columns[self.timezone_at or 0]}' (an IANA name such as Europe/Moscow)"
            )
        if number in self.first_line_of:
            return (
                f"number {_shown(raw_number)} is a duplicate of line {self.first_line_of[number]}"
            )
        self.first_line_of[number] = line
        fields = dict(zip(self.columns, values, strict=True))
        self.contacts.append(
            Contact(line=line, number=number, fields=fields, timezone=zone or None)
        )
        return None

    def _known_zone(self, name: str) -> bool:
        if name not in self.zones:
            self.zones[name] = known_timezone(name)
        return self.zones[name]


def _is_number(text: str) -> bool:
    try:
        normalise_number(text)
    except ValueError:
        return False
    return True


def _first_refused(text: str) -> str:
    """Why ``text`` (which fails the number's shape) is not a phone number."""
    for index, char in enumerate(text):
        if char == "+":
            if index:
                return "'+' may only lead the number"
        elif not (char.isascii() and (char.isdigit() or char in " ().-")):
            return f"{_shown(char)} is not allowed ({_ALLOWED_TEXT})"
    return f"it is not a phone number ({_ALLOWED_TEXT})"  # unreachable while the shapes agree


def _csv_reason(exc: csv.Error) -> str:
    if "field larger than field limit" in str(exc):
        return f"a field is longer than {MAX_FIELD_CHARS} characters"
    if "unexpected end of data" in str(exc):
        return "a quoted field is not closed"
    return f"not valid CSV: {exc}"


def _too_big(source: str, size: int) -> str:
    megabytes = size / (1024 * 1024)
    limit = MAX_BYTES // (1024 * 1024)
    return f"{source}: the file is {megabytes:.1f} MB; a contact list may be at most {limit} MB"


def _os_reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _shown(value: str) -> str:
    """``value`` quoted for a message, control characters escaped, a long one cut short."""
    if len(value) > _SHOWN_MAX:
        return repr(value[:_SHOWN_MAX]) + "…"
    return repr(value)
