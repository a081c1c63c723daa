"""A call's result record: how it went, in one JSON object, however it ended.

Built once when the call is over (the controller hands it to the durable outbox,
``server/results.py``): the script, when it started and ended, the outcome, the states it went
through, the slots it filled (a ``private: true`` slot masked), the keys pressed, each turn's
latency and the recording's file. Pure: plain values in, a JSON-ready dict out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from ..dialog.model import Script
from ..logtext import is_key

MASK = "***"
RECORD_VERSION = 1


def private_slots(script: Script | None) -> set[str]:
    """The slots whose ``collect`` says ``private: true`` (a PIN, a card number)."""
    if script is None:
        return set()
    return {s.collect.slot for s in script.states.values() if s.collect and s.collect.private}


def private_states(script: Script | None) -> set[str]:
    """States that collect a private slot: the keys pressed there are its value."""
    if script is None:
        return set()
    return {name for name, s in script.states.items() if s.collect and s.collect.private}


def result_record(
    *,
    call_id: str,
    script_name: str,
    script: Script | None,
    started: float,
    ended: float,
    outcome: str,
    end_reason: str,
    caller_id: str | None,
    called: str | None,
    path: Sequence[str] = (),
    variables: Mapping[str, Any] | None = None,
    transcript: Sequence[Mapping[str, Any]] = (),
    turns: Sequence[Mapping[str, Any]] = (),
    keys_recorded: bool = True,
    recording: str | None = None,
) -> dict[str, Any]:
    """The record of one call. ``variables``: the dialog's at the end; ``transcript`` and
    ``turns``: as /calls shows them; ``keys_recorded`` false (``record.keys``) leaves out which
    keys were pressed, as everywhere else."""
    hidden = private_slots(script)
    collected = {s.collect.slot for s in script.states.values() if s.collect} if script else set()
    values = variables or {}
    slots = {
        name: (MASK if name in hidden else values[name])
        for name in sorted(collected)
        if name in values
    }
    secret_states = private_states(script)
    keys = [
        line["text"] if keys_recorded and line.get("state") not in secret_states else MASK
        for line in transcript
        if line.get("who") == "caller" and is_key(str(line.get("text", "")))
    ]
    return {
        "version": RECORD_VERSION,
        "call_id": call_id,
        "script": script_name,
        "caller_id": caller_id,
        "called": called,
        "started": _iso(started),
        "ended": _iso(ended),
        "duration_s": round(max(0.0, ended - started), 3),
        "outcome": outcome,
        "end_reason": end_reason,
        "path": list(path),
        "slots": slots,
        "keys": keys,
        "turns": [dict(turn) for turn in turns],
        "recording": recording,
    }


def refused_record(call_id: str, outcome: str, why: str, at: float) -> dict[str, Any]:
    """The record of a caller the bot did not serve (busy, shutting down)."""
    return result_record(call_id=call_id, script_name="", script=None, started=at, ended=at,
                         outcome=outcome, end_reason=why, caller_id=None, called=None)  # fmt: skip


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")
