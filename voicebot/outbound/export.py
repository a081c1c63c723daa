"""A campaign's export (``voicebot campaign export``): its rows as CSV or JSON lines."""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from ..errors import OutboundError
from .store import EXPORT_FORMATS, EXPORT_KEYS


def write_export(rows: Sequence[Mapping[str, Any]], fmt: str, out: TextIO) -> None:
    """Write export rows as CSV (the header is every key in order of appearance; ``result``
    as JSON text, a missing value empty) or as JSON lines."""
    if fmt == "jsonl":
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
        return
    if fmt != "csv":
        raise OutboundError(f"export format {fmt!r}: use one of {', '.join(EXPORT_FORMATS)}")
    header = list(dict.fromkeys(key for row in rows for key in row)) or list(EXPORT_KEYS)
    writer = csv.DictWriter(out, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: _csv_value(value) for key, value in row.items()})


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return value
