"""Dialog scripts: the YAML IVR language in prompts/, loaded into typed objects and validated.

Every error names ``file:line: key.path: problem`` so authors can jump straight to it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import ScriptError
from .yamlpos import KeyPath, LocatedDocument, load_located_file

NEXT_STEP_KEYS = ("expect", "goto", "hangup")
STATE_KEYS = {
    "say",
    *NEXT_STEP_KEYS,
    "no_input_timeout",
    "max_retries",
    "barge_in",
    "on_no_input",
    "on_no_match",
    "on_max_retries",
}
SETTING_KEYS = (
    "no_input_timeout",
    "max_retries",
    "barge_in",
    "on_no_input",
    "on_no_match",
    "on_max_retries",
)
TOP_KEYS = {"name", "language", "start", "defaults", "states"}
REACTION_KEYS = {"say", "goto", "hangup"}
INTENT_KEYS = {"phrases", "dtmf", "goto"}
DTMF_KEYS = set("0123456789*#ABCD")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*$")


@dataclass(frozen=True)
class Reaction:
    """What happens on no-input, no-match or too many retries."""

    say: tuple[str, ...] = ()
    goto: str | None = None
    hangup: bool = False


@dataclass(frozen=True)
class StateSettings:
    no_input_timeout_s: float = 5.0
    max_retries: int = 2
    barge_in: bool = True
    on_no_input: Reaction = Reaction(say=("Sorry, I didn't hear anything.",))
    on_no_match: Reaction = Reaction(say=("Sorry, I didn't get that.",))
    on_max_retries: Reaction = Reaction(say=("Goodbye.",), hangup=True)


@dataclass(frozen=True)
class Intent:
    name: str
    phrases: tuple[str, ...]
    dtmf: tuple[str, ...]
    goto: str


@dataclass(frozen=True)
class State:
    name: str
    say: tuple[str, ...]
    settings: StateSettings
    expect: tuple[Intent, ...] = ()
    goto: str | None = None
    hangup: bool = False


@dataclass(frozen=True)
class Script:
    name: str
    language: str
    start: str
    states: Mapping[str, State]
    file: str = ""

    def prompts(self) -> set[str]:
        """Every text the script can speak: worth synthesizing before the first call."""
        texts: set[str] = set()
        for state in self.states.values():
            texts.update(state.say)
            for reaction in (
                state.settings.on_no_input,
                state.settings.on_no_match,
                state.settings.on_max_retries,
            ):
                texts.update(reaction.say)
        return texts


def parse_duration(value: Any) -> float:
    """``5s``, ``1500ms``, ``0.5m`` or a bare number of seconds → seconds."""
    if isinstance(value, bool):
        raise ValueError(f"bad duration {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"bad duration {value!r} (use e.g. 5s or 1500ms)")
        number, unit = float(match.group(1)), match.group(2) or "s"
        seconds = number / 1000 if unit == "ms" else number * 60 if unit == "m" else number
    if seconds <= 0:
        raise ValueError(f"bad duration {value!r}: must be positive")
    return seconds


class _Parser:
    def __init__(self, doc: LocatedDocument) -> None:
        self.doc = doc

    def fail(self, path: KeyPath, problem: str) -> ScriptError:
        return self.doc.error(path, problem)

    def mapping(self, value: Any, path: KeyPath, allowed: set[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, f"expected a mapping, got {type(value).__name__}")
        for key in value:
            if key not in allowed:
                raise self.fail(
                    (*path, key),
                    f"unknown key '{key}' (expected one of {', '.join(sorted(allowed))})",
                )
        return value

    def text(self, value: Any, path: KeyPath) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(path, "expected non-empty text")
        return value.strip()

    def texts(self, value: Any, path: KeyPath) -> tuple[str, ...]:
        if isinstance(value, list):
            if not value:
                raise self.fail(path, "expected at least one text")
            return tuple(self.text(item, (*path, str(i))) for i, item in enumerate(value))
        return (self.text(value, path),)

    def boolean(self, value: Any, path: KeyPath) -> bool:
        if not isinstance(value, bool):
            raise self.fail(path, f"expected true or false, got {value!r}")
        return value

    def reaction(self, value: Any, path: KeyPath) -> Reaction:
        data = self.mapping(value, path, REACTION_KEYS)
        say = self.texts(data["say"], (*path, "say")) if "say" in data else ()
        goto = self.text(data["goto"], (*path, "goto")) if "goto" in data else None
        hangup = self.boolean(data["hangup"], (*path, "hangup")) if "hangup" in data else False
        return Reaction(say=say, goto=goto, hangup=hangup)

    def settings(self, data: dict[str, Any], path: KeyPath, base: StateSettings) -> StateSettings:
        changes: dict[str, Any] = {}
        if "no_input_timeout" in data:
            try:
                changes["no_input_timeout_s"] = parse_duration(data["no_input_timeout"])
            except ValueError as exc:
                raise self.fail((*path, "no_input_timeout"), str(exc)) from None
        if "max_retries" in data:
            retries = data["max_retries"]
            if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
                raise self.fail(
                    (*path, "max_retries"), f"expected a whole number ≥ 0, got {retries!r}"
                )
            changes["max_retries"] = retries
        if "barge_in" in data:
            changes["barge_in"] = self.boolean(data["barge_in"], (*path, "barge_in"))
        for key in ("on_no_input", "on_no_match", "on_max_retries"):
            if key in data:
                changes[key] = self.reaction(data[key], (*path, key))
        return replace(base, **changes)

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
            raise self.fail(path, "missing 'goto'")
        if "phrases" not in data and "dtmf" not in data:
            raise self.fail(path, "needs 'phrases' or 'dtmf'")
        phrases = self.texts(data["phrases"], (*path, "phrases")) if "phrases" in data else ()
        dtmf = self.dtmf(data["dtmf"], (*path, "dtmf")) if "dtmf" in data else ()
        return Intent(
            name=name, phrases=phrases, dtmf=dtmf, goto=self.text(data["goto"], (*path, "goto"))
        )

    def state(self, name: str, value: Any, defaults: StateSettings) -> State:
        path: KeyPath = ("states", name)
        data = self.mapping(value, path, STATE_KEYS)
        steps = [key for key in NEXT_STEP_KEYS if key in data]
        if len(steps) != 1:
            problem = (
                "has no next step" if not steps else f"has several next steps ({', '.join(steps)})"
            )
            raise self.fail(
                path,
                f"{problem}: a state needs exactly one of "
                f"{', '.join(NEXT_STEP_KEYS)} (a dead end must say hangup: true)",
            )
        say = self.texts(data["say"], (*path, "say")) if "say" in data else ()
        settings = self.settings(data, path, defaults)
        if "expect" in data:
            intents_data = self.mapping(
                data["expect"], (*path, "expect"), set(data["expect"] or {})
            )
            if not intents_data:
                raise self.fail((*path, "expect"), "expects no intent")
            intents = tuple(
                self.intent(str(k), v, (*path, "expect", str(k))) for k, v in intents_data.items()
            )
            return State(name=name, say=say, settings=settings, expect=intents)
        if "goto" in data:
            return State(
                name=name, say=say, settings=settings, goto=self.text(data["goto"], (*path, "goto"))
            )
        if self.boolean(data["hangup"], (*path, "hangup")) is not True:
            raise self.fail((*path, "hangup"), "hangup: false is not a next step")
        return State(name=name, say=say, settings=settings, hangup=True)

    def script(self) -> Script:
        data = self.mapping(self.doc.data, (), TOP_KEYS)
        for key in ("start", "states"):
            if key not in data:
                raise self.fail((), f"missing '{key}'")
        defaults = self.settings(
            self.mapping(data.get("defaults", {}), ("defaults",), set(SETTING_KEYS)),
            ("defaults",),
            StateSettings(),
        )
        states_data = self.mapping(data["states"], ("states",), set(data["states"] or {}))
        if not states_data:
            raise self.fail(("states",), "no states")
        states = {str(k): self.state(str(k), v, defaults) for k, v in states_data.items()}
        start = self.text(data["start"], ("start",))
        script = Script(
            name=self.text(data.get("name", Path(self.doc.file).stem), ("name",)),
            language=self.text(data.get("language", "en"), ("language",)),
            start=start,
            states=states,
            file=self.doc.file,
        )
        self.check_references(script, defaults)
        return script

    def check_references(self, script: Script, defaults: StateSettings) -> None:
        def check(target: str | None, path: KeyPath) -> None:
            if target is not None and target not in script.states:
                raise self.fail(path, f"unknown state '{target}'")

        check(script.start, ("start",))
        for key in ("on_no_input", "on_no_match", "on_max_retries"):
            check(getattr(defaults, key).goto, ("defaults", key, "goto"))
        for state in script.states.values():
            base: KeyPath = ("states", state.name)
            check(state.goto, (*base, "goto"))
            for intent in state.expect:
                check(intent.goto, (*base, "expect", intent.name, "goto"))
            for key in ("on_no_input", "on_no_match", "on_max_retries"):
                reaction: Reaction = getattr(state.settings, key)
                where = base if (*base, key) in self.doc.lines else ("defaults",)
                check(reaction.goto, (*where, key, "goto"))
        reachable = _reachable(script)
        for name in script.states:
            if name not in reachable:
                raise self.fail(
                    ("states", name), f"state '{name}' is unreachable from '{script.start}'"
                )


def _successors(state: State) -> Iterable[str]:
    if state.goto:
        yield state.goto
    for intent in state.expect:
        yield intent.goto
    if state.expect:
        for reaction in (
            state.settings.on_no_input,
            state.settings.on_no_match,
            state.settings.on_max_retries,
        ):
            if reaction.goto:
                yield reaction.goto


def _reachable(script: Script) -> set[str]:
    seen, todo = set(), [script.start]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(_successors(script.states[name]))
    return seen


def load_script(path: Path) -> Script:
    return _Parser(load_located_file(path)).script()


class ScriptLibrary:
    """Scripts of a directory, by name (``NAME.yaml``), all validated up front."""

    def __init__(self, directory: Path, default: str) -> None:
        self.directory = directory
        self.default = default
        if not directory.is_dir():
            raise ScriptError(f"scripts directory not found: {directory}")
        self.scripts: dict[str, Script] = {}
        for path in sorted(directory.glob("*.yaml")):
            self.scripts[path.stem] = load_script(path)
        if default not in self.scripts:
            raise ScriptError(
                f"default script '{default}' not found in {directory} "
                f"(have: {', '.join(sorted(self.scripts)) or 'none'})"
            )

    def get(self, name: str | None) -> Script:
        key = name or self.default
        try:
            return self.scripts[key]
        except KeyError:
            raise ScriptError(
                f"no script named '{key}' in {self.directory} "
                f"(have: {', '.join(sorted(self.scripts))})"
            ) from None
