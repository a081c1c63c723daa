"""Dialog scripts: the YAML IVR language in prompts/, parsed into ``model`` objects and validated.

Every error names ``file:line: key.path: problem`` so authors can jump straight to it, and
validation goes on after an error so that one ``voicebot check`` lists all of a file's problems.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, cast

from ..errors import ScriptError
from .calendars import Calendar, CalendarError, parse_calendar
from .fields import ScriptErrors
from .graph import graph_problems
from .model import (
    UNDERSTAND_BY,
    Collect,
    CollectType,
    EndOfTurn,
    Intent,
    Script,
    State,
    StateSettings,
    UnderstandBy,
)
from .reader import BUILTIN_VARIABLES, IDENTIFIER, NO_SAY, NO_TEXTS, ScriptReader
from .recorded import DEFAULT_SOUND_DIRS
from .templates import parse_template
from .yamlpos import KeyPath, LocatedDocument, load_located, load_located_file

NEXT_STEP_KEYS = ("expect", "collect", "goto", "branch", "hangup", "transfer", "webhook")
SETTING_KEYS = (
    "no_input_timeout",
    "max_retries",
    "barge_in",
    "grammar",
    "on_no_input",
    "on_no_match",
    "on_max_retries",
    "end_of_turn",
    "understand",
)
END_OF_TURN_KEYS = {"silence", "max_silence", "digit_timeout", "turn_model"}
STATE_KEYS = {"say", "dnc", *NEXT_STEP_KEYS, *SETTING_KEYS}
TOP_KEYS = {"name", "language", "start", "defaults", "states", "record", "calendars", "on_machine"}
INTENT_KEYS = {"phrases", "dtmf", "goto", "examples"}
COLLECT_TYPES = ("digits", "number", "text", "yes_no")
COLLECT_OPTIONS: Mapping[str, frozenset[str]] = {
    "digits": frozenset({"length", "min_length", "max_length"}),
    "number": frozenset({"min", "max"}),
    "text": frozenset(),
    "yes_no": frozenset(),
}
COLLECT_KEYS = {
    "slot",
    "type",
    "goto",
    "private",
    *(o for opts in COLLECT_OPTIONS.values() for o in opts),
}
DTMF_KEYS = set("0123456789*#ABCD")
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*$")


class _Parser(ScriptReader):
    """Builds a ``Script`` and collects every problem instead of stopping at the first."""

    def __init__(
        self, doc: LocatedDocument, base: StateSettings, sound_dirs: Sequence[Path]
    ) -> None:
        super().__init__(doc, sound_dirs)
        self.base = base  # what a script's `defaults` start from (the config's dialog.*)

    def settings(self, data: dict[str, Any], path: KeyPath, base: StateSettings) -> StateSettings:
        changes: dict[str, Any] = {}
        if "no_input_timeout" in data:
            changes["no_input_timeout_s"] = self.guard(
                lambda: self.duration(data["no_input_timeout"], (*path, "no_input_timeout")),
                base.no_input_timeout_s,
            )
        if "max_retries" in data:
            changes["max_retries"] = self.guard(
                lambda: self.whole(data["max_retries"], (*path, "max_retries"), 0),
                base.max_retries,
            )
        for flag in ("barge_in", "grammar"):
            if flag in data:
                changes[flag] = self.guard(
                    partial(self.boolean, data[flag], (*path, flag)), getattr(base, flag)
                )
        for key in ("on_no_input", "on_no_match", "on_max_retries"):
            if key in data:
                changes[key] = self.guard(
                    partial(self.reaction, data[key], (*path, key)), getattr(base, key)
                )
        if "end_of_turn" in data:
            changes["end_of_turn"] = self.end_of_turn(
                data["end_of_turn"], (*path, "end_of_turn"), base.end_of_turn
            )
        if "understand" in data:
            changes["understand"] = self.guard(
                partial(self.understand, data["understand"], (*path, "understand")),
                base.understand,
            )
        return replace(base, **changes)

    def understand(self, value: Any, path: KeyPath) -> UnderstandBy:
        if value not in UNDERSTAND_BY:
            raise self.fail(path, f"expected one of {', '.join(UNDERSTAND_BY)}, got {value!r}")
        return cast(UnderstandBy, value)

    def end_of_turn(self, value: Any, path: KeyPath, base: EndOfTurn) -> EndOfTurn:
        empty: dict[str, Any] = {}
        data = self.guard(lambda: self.mapping(value, path, END_OF_TURN_KEYS), empty)
        changes: dict[str, Any] = {}
        for key in ("silence", "max_silence", "digit_timeout"):
            if key in data:
                changes[f"{key}_s"] = self.guard(
                    partial(self.duration, data[key], (*path, key)), getattr(base, f"{key}_s")
                )
        if "turn_model" in data:
            changes["turn_model"] = self.guard(
                partial(self.boolean, data["turn_model"], (*path, "turn_model")), base.turn_model
            )
        result = replace(base, **changes)
        if result.silence_s > result.max_silence_s:
            self.report(
                path,
                f"silence ({result.silence_s:g} s) is longer than max_silence "
                f"({result.max_silence_s:g} s)",
            )
        return result

    def dtmf(self, value: Any, path: KeyPath) -> tuple[str, ...]:
        keys = value if isinstance(value, list) else [value]
        result = []
        for key in keys:
            key = str(key)
            if len(key) != 1 or key not in DTMF_KEYS:
                raise self.fail(path, f"bad DTMF key {key!r} (one of 0-9 * # A-D)")
            result.append(key)
        return tuple(result)

    def intent(self, name: str, value: Any, path: KeyPath) -> Intent:
        data = self.mapping(value, path, INTENT_KEYS)
        if "goto" not in data:
            self.report(path, "missing 'goto'")
        if "phrases" not in data and "dtmf" not in data:
            self.report(path, "needs 'phrases' or 'dtmf'")
        phrases = (
            self.guard(lambda: self.phrases(data["phrases"], (*path, "phrases")), NO_TEXTS)
            if "phrases" in data
            else ()
        )
        dtmf = (
            self.guard(lambda: self.dtmf(data["dtmf"], (*path, "dtmf")), NO_TEXTS)
            if "dtmf" in data
            else ()
        )
        examples = (
            self.guard(lambda: self.phrases(data["examples"], (*path, "examples")), NO_TEXTS)
            if "examples" in data
            else ()
        )
        goto = (
            self.guard(lambda: self.goto(data["goto"], (*path, "goto")), "")
            if "goto" in data
            else ""
        )
        return Intent(name=name, phrases=phrases, dtmf=dtmf, goto=goto, examples=examples)

    def expect(self, value: Any, path: KeyPath) -> tuple[Intent, ...]:
        if not isinstance(value, dict) or not value:
            raise self.fail(path, "expects no intent")
        intents: list[Intent] = []
        keys: dict[str, str] = {}
        for name, item in value.items():
            intent_path = (*path, str(name))
            intent = self.guard(partial(self.intent, str(name), item, intent_path), None)
            if intent is None:
                continue
            for key in intent.dtmf:
                if key in keys:
                    self.report(
                        (*intent_path, "dtmf"),
                        f"DTMF key '{key}' is already used by intent '{keys[key]}'",
                    )
                keys.setdefault(key, intent.name)
            intents.append(intent)
        return tuple(intents)

    def collect(self, value: Any, path: KeyPath) -> Collect:
        data = self.mapping(value, path, COLLECT_KEYS)
        for key in ("slot", "type", "goto"):
            if key not in data:
                self.report(path, f"missing '{key}'")
        slot = (
            self.guard(lambda: self.identifier(data["slot"], (*path, "slot"), "slot name"), "")
            if "slot" in data
            else ""
        )
        if slot:
            self.slots.add(slot)
        goto = (
            self.guard(lambda: self.goto(data["goto"], (*path, "goto")), "")
            if "goto" in data
            else ""
        )
        kind = data.get("type", "text")
        if kind not in COLLECT_TYPES:
            raise self.fail(
                (*path, "type"),
                f"unknown type {kind!r} (expected one of {', '.join(COLLECT_TYPES)})",
            )
        private = (
            self.guard(lambda: self.boolean(data["private"], (*path, "private")), False)
            if "private" in data
            else False
        )
        for key in data:
            common = {"slot", "type", "goto", "private"}
            if key in COLLECT_KEYS - common and key not in COLLECT_OPTIONS[kind]:
                allowed = ", ".join(sorted(COLLECT_OPTIONS[kind])) or "none"
                self.report((*path, key), f"'{key}' is not an option of type {kind} ({allowed})")
        collect = Collect(slot=slot, type=cast(CollectType, kind), goto=goto, private=private)
        if kind == "digits":
            return self.digit_options(collect, data, path)
        if kind == "number":
            low = (
                self.guard(lambda: self.whole(data["min"], (*path, "min"), None), None)
                if "min" in data
                else None
            )
            high = (
                self.guard(lambda: self.whole(data["max"], (*path, "max"), None), None)
                if "max" in data
                else None
            )
            if low is not None and high is not None and low > high:
                self.report((*path, "min"), f"min {low} is greater than max {high}")
            return replace(collect, min=low, max=high)
        return collect

    def digit_options(self, collect: Collect, data: dict[str, Any], path: KeyPath) -> Collect:
        def length(key: str) -> int | None:
            if key not in data:
                return None
            return self.guard(lambda: self.whole(data[key], (*path, key), 1), None)

        exact, low, high = length("length"), length("min_length"), length("max_length")
        if "length" in data and ("min_length" in data or "max_length" in data):
            self.report(
                (*path, "length"), "use either 'length' or 'min_length'/'max_length', not both"
            )
        if exact is not None:
            return replace(collect, min_length=exact, max_length=exact)
        if low is not None and high is not None and low > high:
            self.report(
                (*path, "min_length"), f"min_length {low} is greater than max_length {high}"
            )
        return replace(collect, min_length=low or 1, max_length=high)

    def state(self, name: str, value: Any, defaults: StateSettings) -> State:
        path: KeyPath = ("states", name)
        data = self.mapping(value if value is not None else {}, path, STATE_KEYS)
        steps = [key for key in NEXT_STEP_KEYS if key in data]
        if steps == ["hangup"] and data["hangup"] is False:
            self.report((*path, "hangup"), "hangup: false is not a next step")
        elif len(steps) != 1:
            problem = (
                "has no next step" if not steps else f"has several next steps ({', '.join(steps)})"
            )
            self.report(
                path,
                f"{problem}: a state needs exactly one of "
                f"{', '.join(NEXT_STEP_KEYS)} (a dead end must say hangup: true)",
            )
        say = (
            self.guard(lambda: self.texts(data["say"], (*path, "say")), NO_SAY)
            if "say" in data
            else ()
        )
        state = State(name=name, say=say, settings=self.settings(data, path, defaults))
        if "expect" in data:
            state = replace(
                state, expect=self.guard(lambda: self.expect(data["expect"], (*path, "expect")), ())
            )
        if "collect" in data:
            state = replace(
                state,
                collect=self.guard(lambda: self.collect(data["collect"], (*path, "collect")), None),
            )
        if "goto" in data:
            state = replace(
                state, goto=self.guard(lambda: self.goto(data["goto"], (*path, "goto")), None)
            )
        if "branch" in data:
            state = replace(
                state, branch=self.guard(lambda: self.branch(data["branch"], (*path, "branch")), ())
            )
        if "hangup" in data:
            state = replace(
                state,
                hangup=self.guard(lambda: self.boolean(data["hangup"], (*path, "hangup")), False),
            )
        if "transfer" in data:
            state = replace(
                state,
                transfer=self.guard(
                    lambda: self.transfer(data["transfer"], (*path, "transfer")), None
                ),
            )
        if "webhook" in data:
            state = replace(
                state,
                webhook=self.guard(lambda: self.webhook(data["webhook"], (*path, "webhook")), None),
            )
        if "dnc" in data:
            state = replace(
                state, dnc=self.guard(lambda: self.boolean(data["dnc"], (*path, "dnc")), False)
            )
        return state

    # -- the whole script ----------------------------------------------------------------

    def script(self) -> Script:
        data = self.mapping(self.doc.data, (), TOP_KEYS)
        for key in ("start", "states"):
            if key not in data:
                self.report((), f"missing '{key}'")
        defaults = self.base
        if "defaults" in data:
            defaults = self.guard(
                lambda: self.settings(
                    self.mapping(data["defaults"], ("defaults",), set(SETTING_KEYS)),
                    ("defaults",),
                    self.base,
                ),
                defaults,
            )
        states: dict[str, State] = {}
        names: list[str] = []
        if "states" in data:
            states_data = data["states"]
            if not isinstance(states_data, dict) or not states_data:
                self.report(("states",), "no states")
                states_data = {}
            names = [str(k) for k in states_data]
            for key, value in states_data.items():
                self.current = str(key)
                state = self.guard(partial(self.state, str(key), value, defaults), None)
                if state is not None:
                    states[str(key)] = state
            self.current = None
        start = (
            self.guard(lambda: self.text(data["start"], ("start",)), "") if "start" in data else ""
        )
        name = self.guard(
            lambda: self.text(data.get("name", Path(self.doc.file).stem), ("name",)), ""
        )
        language = self.guard(lambda: self.language(data.get("language", "en")), "en")
        record = (
            self.guard(partial(self.boolean, data["record"], ("record",)), None)
            if "record" in data
            else None
        )
        calendars = self.calendars(data["calendars"]) if "calendars" in data else {}
        on_machine = (
            self.guard(lambda: self.text(data["on_machine"], ("on_machine",)), None)
            if "on_machine" in data
            else None
        )
        if names:
            roots = {"on_machine": on_machine} if on_machine else {}
            for path, problem in graph_problems(start, names, states, self.edges, roots):
                self.report(path, problem)
        self.check_variables()
        self.check_conditions(calendars)
        if self.errors:
            unique = {(e.line, str(e)): e for e in self.errors}
            raise ScriptErrors(unique[k] for k in sorted(unique, key=lambda k: k[0]))
        return Script(
            name=name,
            language=language,
            start=start,
            states=states,
            file=self.doc.file,
            record=record,
            calendars=calendars,
            on_machine=on_machine,
        )

    def language(self, value: Any) -> str:
        text = self.text(value, ("language",))
        if not _LANGUAGE.match(text):
            raise self.fail(("language",), f"bad language '{text}' (use a code such as en or de)")
        return text

    def calendars(self, value: Any) -> dict[str, Calendar]:
        if not isinstance(value, dict):
            self.report(("calendars",), "expected a mapping of calendar names to calendars")
            return {}
        calendars: dict[str, Calendar] = {}
        for name, spec in value.items():
            path = ("calendars", str(name))
            if not IDENTIFIER.match(str(name)):
                self.report(path, f"bad calendar name '{name}' (letters, digits and _)")
                continue
            try:
                calendars[str(name)] = parse_calendar(str(name), spec)
            except CalendarError as exc:
                self.report((*path, *map(str, exc.path)), str(exc))
        return calendars

    def check_conditions(self, calendars: Mapping[str, Calendar]) -> None:
        """Every branch condition names known calendars and defined variables."""
        for path, expression in self.conditions:
            for name in sorted(expression.calendars - set(calendars)):
                known = ", ".join(sorted(calendars)) or "none: add a calendars: map"
                self.report(path, f"unknown calendar '{name}' (known: {known})")
            for name in sorted(expression.names):
                if not self.defined(name):
                    self.report(path, f"undefined variable '{name}' ({self.known_variables()})")

    def known_variables(self) -> str:
        known = [*sorted({*BUILTIN_VARIABLES, *self.slots}), "channel.*", "contact.*"]
        known += [f"{r}.*" for r in sorted(self.results)]
        return f"known: {', '.join(known)}"

    def check_variables(self) -> None:
        for path, text in self.templates:
            for name in parse_template(text).names:
                if not self.defined(name):
                    self.report(path, f"undefined variable '{name}' ({self.known_variables()})")

    def defined(self, name: str) -> bool:
        if name in BUILTIN_VARIABLES or name in self.slots:
            return True
        head, dot, rest = name.partition(".")
        if head in ("channel", "contact"):  # contact.NAME: a column of an outbound contact
            return bool(dot and rest)
        return head in self.results


def parse_script(
    text: str,
    file: str = "<script>",
    base: StateSettings | None = None,
    sound_dirs: Sequence[Path] = DEFAULT_SOUND_DIRS,
) -> Script:
    """A script from YAML text; :class:`ScriptErrors` lists every problem. ``base``: the
    settings its ``defaults`` start from (``library.script_settings`` of the config);
    ``sound_dirs``: where ``{sound: NAME}`` prompts are looked for."""
    return _Parser(load_located(text, file), base or StateSettings(), sound_dirs).script()


def load_script(
    path: Path, base: StateSettings | None = None, sound_dirs: Sequence[Path] = DEFAULT_SOUND_DIRS
) -> Script:
    """A script file; :class:`ScriptErrors` (a ``ScriptError``) lists every problem."""
    return _Parser(load_located_file(path), base or StateSettings(), sound_dirs).script()


def validate_file(path: Path, sound_dirs: Sequence[Path] = DEFAULT_SOUND_DIRS) -> list[ScriptError]:
    """Every problem of a script file, in file order; empty when it is valid."""
    try:
        load_script(path, sound_dirs=sound_dirs)
    except ScriptErrors as exc:
        return list(exc.errors)
    except ScriptError as exc:  # unreadable file, invalid YAML, duplicate key
        return [exc]
    return []
