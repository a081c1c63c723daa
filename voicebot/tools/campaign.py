"""``voicebot campaign ...``: load a contact list as a campaign, see how it goes, pause,
resume or cancel it, export its results.

The commands work on the campaign store itself (SQLite in WAL mode, ``outbound.store``),
whether or not the bot runs: the store is what the bot's dialler reads, and it sees a change
within ``dialler.POLL_S``. Several processes may use the store at once; a claim of a contact
is one immediate transaction, so nobody is called twice.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from ..config import Config
from ..dialog.library import script_file, script_settings, sound_dirs
from ..dialog.model import Script
from ..dialog.parser import load_script
from ..dialog.templates import parse_template
from ..errors import EXIT_ERROR, EXIT_INVALID, EXIT_OK, OutboundError, ScriptError
from ..outbound.campaigns import (
    DEFAULT_RETRY,
    Policy,
    parse_days,
    parse_retry,
    parse_timezone,
    parse_window,
)
from ..outbound.contacts import ContactList, read_contacts
from ..outbound.export import write_export
from ..outbound.model import CampaignState
from ..outbound.store import CampaignInfo, CampaignStore

# Refused lines printed at most; the rest are counted (a 100,000-line file of bad numbers
# must not flood the terminal).
MAX_PROBLEMS_SHOWN = 50


def policy_from_options(
    *,
    window: str | None,
    days: str | None,
    timezone: str | None,
    max_attempts: int | None,
    retry: str | None,
    per_day: int | None,
    per_week: int | None,
) -> Policy:
    """The campaign's rules: the defaults, then each option given."""
    values: dict[str, object] = {}
    if window is not None:
        values["window_start"], values["window_end"] = parse_window(window)
    if days is not None:
        values["days"] = parse_days(days)
    if timezone is not None:
        values["timezone"] = parse_timezone(timezone)
    if max_attempts is not None:
        values["max_attempts"] = max_attempts
    if retry is not None:
        values["retry"] = parse_retry(retry, DEFAULT_RETRY)
    if per_day is not None:
        values["per_day"] = per_day
    if per_week is not None:
        values["per_week"] = per_week
    return Policy(**values)  # type: ignore[arg-type]


def contact_columns_missing(script: Script, contacts: ContactList) -> list[str]:
    """The ``{contact.NAME}`` names the script uses that the list has no column for."""
    used = {
        name.split(".", 1)[1].split(".", 1)[0]
        for text in script.templates()
        for name in parse_template(text).names
        if name.startswith("contact.")
    }
    return sorted(used - set(contacts.columns) - {"number"})


def start(
    config: Config,
    contacts_path: Path,
    script_name: str,
    name: str | None,
    policy: Policy,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    # The streams of the moment (not of import time: redirect_stdout and tests replace them).
    out, err = out or sys.stdout, err or sys.stderr
    try:
        path = script_file(script_name, Path(config.dialog.scripts_dir))
        script = load_script(path, script_settings(config.dialog), sound_dirs(config.dialog))
    except ScriptError as exc:
        print(f"voicebot campaign start: --script: {exc}", file=err)
        return EXIT_INVALID
    contacts = read_contacts(contacts_path)
    shown = contacts.problems[:MAX_PROBLEMS_SHOWN]
    for problem in shown:
        print(f"refused: {problem}", file=err)
    if len(contacts.problems) > len(shown):
        print(f"refused: ... and {len(contacts.problems) - len(shown)} more lines", file=err)
    missing = contact_columns_missing(script, contacts)
    if missing:
        print(f"voicebot campaign start: {path} uses {{contact.{missing[0]}}} but "
              f"{contacts_path} has no column '{missing[0]}' (columns: "
              f"{', '.join(contacts.columns)})", file=err)  # fmt: skip
        return EXIT_INVALID
    if not contacts.contacts:
        print(f"voicebot campaign start: {contacts_path}: no contact to call", file=err)
        return EXIT_INVALID
    campaign_name = name or f"{contacts_path.stem}-{_now().strftime('%Y%m%d-%H%M%S')}"
    with _store(config) as store:
        campaign_id = store.create_campaign(
            campaign_name, script.name, policy.to_dict(), contacts.contacts, _now()
        )
        info = store.campaign(campaign_id)
    print(f"campaign {info.id} '{info.name}': {len(contacts.contacts)} contacts loaded, "
          f"{len(contacts.problems)} lines refused; script {script.name}; "
          f"{describe_policy(info)}", file=out)  # fmt: skip
    if not config.outbound.endpoint:
        print("note: outbound.endpoint is not set: the bot places no calls until it is",
              file=err)  # fmt: skip
    return EXIT_OK


def describe_policy(info: CampaignInfo) -> str:
    p = info.policy
    return (
        f"window {p.get('window')} {p.get('days')} ({p.get('timezone')}), "
        f"at most {p.get('max_attempts')} attempts, retry {p.get('retry')}, "
        f"per number {p.get('per_day')}/day {p.get('per_week')}/week"
    )


def show_list(config: Config, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    with _store(config) as store:
        campaigns = store.campaigns()
    if not campaigns:
        print("no campaigns", file=out)
    for info in campaigns:
        print(summary_line(info), file=out)
    return EXIT_OK


def summary_line(info: CampaignInfo) -> str:
    counts = ", ".join(f"{status} {count}" for status, count in sorted(info.counts.items()))
    return (
        f"{info.id:>4}  {info.name}  {info.state}  {info.total} contacts ({counts}); "
        f"{info.attempts_total} attempts, {info.active} dialling"
    )


def show_status(config: Config, ref: str, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    with _store(config) as store:
        info = store.campaign(_ref(ref))
    print(summary_line(info), file=out)
    print(f"      script {info.script}; {describe_policy(info)}", file=out)
    print(f"      created {info.created_at.isoformat()}, changed {info.updated_at.isoformat()}",
          file=out)  # fmt: skip
    return EXIT_OK


def set_state(config: Config, ref: str, state: CampaignState, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    with _store(config) as store:
        info = store.set_state(_ref(ref), state, _now())
    print(summary_line(info), file=out)
    return EXIT_OK


def export(config: Config, ref: str, fmt: str, output: str | None) -> int:
    with _store(config) as store:
        rows = store.export_rows(_ref(ref))
    if output in (None, "-"):
        write_export(rows, fmt, sys.stdout)
        return EXIT_OK
    assert output is not None
    try:
        with open(output, "w", encoding="utf-8", newline="") as file:
            write_export(rows, fmt, file)
    except OSError as exc:
        print(f"voicebot campaign export: cannot write {output}: {exc.strerror}", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK


def run(config: Config, command: str, **options: object) -> int:
    """One ``voicebot campaign`` command; OutboundError (a bad option, an unknown campaign)
    is printed and exits 2."""
    try:
        if command == "start":
            policy = policy_from_options(
                window=_opt(options, "window"),
                days=_opt(options, "days"),
                timezone=_opt(options, "timezone"),
                max_attempts=_int(options, "max_attempts"),
                retry=_opt(options, "retry"),
                per_day=_int(options, "per_day"),
                per_week=_int(options, "per_week"),
            )
            contacts = options["contacts"]
            assert isinstance(contacts, Path)
            return start(config, contacts, str(options["script"]), _opt(options, "name"), policy)
        if command == "list":
            return show_list(config)
        ref = str(options["campaign"])
        if command == "status":
            return show_status(config, ref)
        if command in STATE_COMMANDS:
            return set_state(config, ref, STATE_COMMANDS[command])
        if command == "export":
            return export(config, ref, str(options["format"]), _opt(options, "output"))
    except OutboundError as exc:
        print(f"voicebot campaign {command}: {exc}", file=sys.stderr)
        return EXIT_INVALID
    raise ValueError(f"unknown campaign command {command!r}")


STATE_COMMANDS = {
    "pause": CampaignState.PAUSED,
    "resume": CampaignState.RUNNING,
    "cancel": CampaignState.CANCELLED,
}
COMMANDS: Sequence[str] = ("start", "list", "status", *STATE_COMMANDS, "export")


class _store:
    """The campaign store for one command, closed after it."""

    def __init__(self, config: Config) -> None:
        self.path = Path(config.outbound.store)

    def __enter__(self) -> CampaignStore:
        self.store = CampaignStore(self.path)
        return self.store

    def __exit__(self, *exc: object) -> None:
        self.store.close()


def _ref(text: str) -> int | str:
    return int(text) if text.isdigit() else text


def _opt(options: dict[str, object], key: str) -> str | None:
    value = options.get(key)
    return None if value is None else str(value)


def _int(options: dict[str, object], key: str) -> int | None:
    value = options.get(key)
    return value if isinstance(value, int) else None


def _now() -> datetime:
    return datetime.now(UTC)
