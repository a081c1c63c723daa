"""Reading the pieces of a dialog script that several places share: texts and recorded prompts,
gotos, reactions, and the steps that leave a state (transfer, webhook). ``parser`` builds on it
for states and the whole script; every problem is collected with its key path."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from .expressions import Expression, ExpressionError, parse_expression
from .fields import FieldReader
from .graph import Edge
from .model import DEFAULT_ON_ERROR, BranchArm, Reaction, SayItem, Transfer, Webhook
from .recorded import RECORDED_KEYS, recorded_prompt
from .templates import TemplateError, parse_template, template_strings
from .urls import parse_url_template
from .yamlpos import KeyPath, LocatedDocument

REACTION_KEYS = {"say", "goto", "hangup"}
TRANSFER_KEYS = {"context", "extension", "priority", "label", "endpoint", "set"}
# A channel variable a transfer sets: a plain dialplan name (no functions such as CALLERID(),
# which would change the call), not one of the bot's own VOICEBOT_* variables.
_CHANNEL_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
MAX_TRANSFER_VARIABLES = 32
WEBHOOK_KEYS = {
    "url",
    "method",
    "body",
    "save_as",
    "timeout",
    "goto",
    "on_error",
    "follow_redirects",
}
WEBHOOK_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
BUILTIN_VARIABLES = ("caller_id", "called")
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
NO_TEXTS: tuple[str, ...] = ()
BRANCH_ARM_KEYS = {"if", "goto", "else"}
NO_SAY: tuple[SayItem, ...] = ()


class ScriptReader(FieldReader):
    """What a script parser knows as it goes (gotos, templates, slots, webhook results) and
    how it reads the shared pieces."""

    def __init__(self, doc: LocatedDocument, sound_dirs: Sequence[Path]) -> None:
        super().__init__(doc)
        self.sound_dirs = tuple(sound_dirs)  # where `{sound: NAME}` looks
        self.edges: list[Edge] = []
        self.templates: list[tuple[KeyPath, str]] = []
        self.slots: set[str] = set()
        self.results: set[str] = set()
        self.current: str | None = None  # the state being parsed
        self.in_reaction = False
        # Branch conditions, checked against the variables and calendars at the end.
        self.conditions: list[tuple[KeyPath, Expression]] = []

    def template(self, value: Any, path: KeyPath) -> str:
        """A text that may contain ``{variables}``; syntax checked now, names at the end."""
        text = self.text(value, path)
        try:
            parse_template(text)
        except TemplateError as exc:
            raise self.fail(path, str(exc)) from None
        self.templates.append((path, text))
        return text

    def texts(self, value: Any, path: KeyPath) -> tuple[SayItem, ...]:
        """A ``say``: a text, a recorded prompt, or a list of them."""
        if isinstance(value, list):
            if not value:
                raise self.fail(path, "expected at least one text")
            nothing: SayItem = ""
            results = [
                self.guard(partial(self.say_item, item, (*path, str(i))), nothing)
                for i, item in enumerate(value)
            ]
            return tuple(results)
        return (self.say_item(value, path),)

    def say_item(self, value: Any, path: KeyPath) -> SayItem:
        if not isinstance(value, dict):
            return self.template(value, path)
        data = self.mapping(value, path, RECORDED_KEYS)
        if len(data) != 1:
            raise self.fail(path, "a recorded prompt is {audio: FILE} or {sound: NAME}")
        [(kind, raw)] = data.items()
        source = self.text(raw, (*path, kind))
        try:
            return recorded_prompt(kind, source, Path(self.doc.file).parent, self.sound_dirs)
        except ValueError as exc:
            raise self.fail((*path, kind), str(exc)) from None

    def identifier(self, value: Any, path: KeyPath, what: str) -> str:
        name = self.text(value, path)
        if not IDENTIFIER.match(name) or name in BUILTIN_VARIABLES or name == "channel":
            raise self.fail(
                path,
                f"bad {what} '{name}' (letters, digits and _; not caller_id, called or channel)",
            )
        return name

    def goto(self, value: Any, path: KeyPath) -> str:
        target = self.text(value, path)
        self.edges.append(Edge(self.current, target, path, self.in_reaction))
        return target

    # -- pieces --------------------------------------------------------------------------

    def reaction(self, value: Any, path: KeyPath, *, final: bool = False) -> Reaction:
        """``{say, goto | hangup}``; ``final``: must leave the state (a webhook's on_error)."""
        data = self.mapping(value, path, REACTION_KEYS)
        say = (
            self.guard(lambda: self.texts(data["say"], (*path, "say")), NO_SAY)
            if "say" in data
            else ()
        )
        goto = None
        if "goto" in data:
            self.in_reaction = not final
            try:
                goto = self.guard(lambda: self.goto(data["goto"], (*path, "goto")), None)
            finally:
                self.in_reaction = False
        hangup = (
            self.guard(lambda: self.boolean(data["hangup"], (*path, "hangup")), False)
            if "hangup" in data
            else False
        )
        if "goto" in data and hangup:
            self.report(path, "has both 'goto' and 'hangup: true' (choose one)")
        if final and "goto" not in data and not hangup:
            self.report(path, "needs 'goto' or 'hangup: true'")
        return Reaction(say=say, goto=goto, hangup=hangup)

    # -- steps that leave a state ---------------------------------------------------------

    def transfer(self, value: Any, path: KeyPath) -> Transfer:
        data = self.mapping(value, path, TRANSFER_KEYS)
        none: tuple[tuple[str, str], ...] = ()
        variables = (
            self.guard(lambda: self.channel_variables(data["set"], (*path, "set")), none)
            if "set" in data
            else none
        )
        return replace(self.transfer_target(data, path), variables=variables)

    def channel_variables(self, value: Any, path: KeyPath) -> tuple[tuple[str, str], ...]:
        if not isinstance(value, dict) or not value:
            raise self.fail(path, "expected a mapping of channel variables to texts")
        if len(value) > MAX_TRANSFER_VARIABLES:
            raise self.fail(path, f"more than {MAX_TRANSFER_VARIABLES} variables")
        result: list[tuple[str, str]] = []
        for name, text in value.items():
            name = str(name)
            item = (*path, name)
            if not _CHANNEL_VARIABLE.match(name) or name.upper().startswith("VOICEBOT_"):
                self.report(
                    item,
                    f"bad channel variable name '{name}' (letters, digits and _, up to 64, "
                    "not starting with VOICEBOT_)",
                )
                continue
            if isinstance(text, int | float) and not isinstance(text, bool):
                text = str(text)
            template = self.guard(partial(self.template, text, item), None)
            if template is not None:
                result.append((name, template))
        return tuple(result)

    def transfer_target(self, data: dict[str, Any], path: KeyPath) -> Transfer:
        dialplan = [key for key in ("context", "extension", "priority", "label") if key in data]
        if "endpoint" in data:
            if dialplan:
                raise self.fail(
                    path,
                    "use either context/extension/priority or endpoint, not both",
                )
            endpoint = self.text(data["endpoint"], (*path, "endpoint"))
            if "/" not in endpoint:
                raise self.fail(
                    (*path, "endpoint"),
                    f"bad endpoint '{endpoint}' (expected TECH/resource, e.g. PJSIP/operator)",
                )
            return Transfer(endpoint=endpoint)
        if not dialplan:
            raise self.fail(path, "needs 'context' and 'extension', or 'endpoint'")
        for key in ("context", "extension"):
            if key not in data:
                self.report(path, f"missing '{key}'")

        def name(key: str) -> str | None:
            if key not in data:
                return None
            raw = data[key]
            text = str(raw) if isinstance(raw, int) and not isinstance(raw, bool) else raw
            return self.guard(lambda: self.text(text, (*path, key)), None)

        label = name("label")
        if label is not None and "priority" in data:
            self.report(path, "use either 'priority' or 'label', not both")
        priority = (
            self.guard(lambda: self.whole(data["priority"], (*path, "priority"), 1), 1)
            if "priority" in data
            else None
            if label is not None
            else 1
        )
        return Transfer(
            context=name("context"), extension=name("extension"), priority=priority, label=label
        )

    def webhook(self, value: Any, path: KeyPath) -> Webhook:
        data = self.mapping(value, path, WEBHOOK_KEYS)
        for key in ("url", "goto"):
            if key not in data:
                self.report(path, f"missing '{key}'")
        url = (
            self.guard(lambda: self.template(data["url"], (*path, "url")), "")
            if "url" in data
            else ""
        )
        if url:
            self.guard(lambda: self.url(url, (*path, "url")), None)
        method = "POST"
        if "method" in data:
            raw = data["method"]
            if not isinstance(raw, str) or raw.upper() not in WEBHOOK_METHODS:
                self.report(
                    (*path, "method"),
                    f"bad method {raw!r} (expected one of {', '.join(WEBHOOK_METHODS)})",
                )
            else:
                method = raw.upper()
        body = data.get("body")
        for sub_path, text in template_strings(body, (*path, "body")):
            self.guard(partial(self.template, text, sub_path), "")
        save_as = None
        if "save_as" in data:
            save_as = self.guard(
                lambda: self.identifier(data["save_as"], (*path, "save_as"), "save_as name"), None
            )
            if save_as:
                self.results.add(save_as)
        timeout = (
            self.guard(lambda: self.duration(data["timeout"], (*path, "timeout")), 5.0)
            if "timeout" in data
            else 5.0
        )
        goto = (
            self.guard(lambda: self.goto(data["goto"], (*path, "goto")), "")
            if "goto" in data
            else ""
        )
        on_error = (
            self.guard(
                lambda: self.reaction(data["on_error"], (*path, "on_error"), final=True),
                DEFAULT_ON_ERROR,
            )
            if "on_error" in data
            else DEFAULT_ON_ERROR
        )
        follow_redirects = (
            self.guard(
                lambda: self.boolean(data["follow_redirects"], (*path, "follow_redirects")),
                False,
            )
            if "follow_redirects" in data
            else False
        )
        return Webhook(
            url=url,
            goto=goto,
            method=method,
            body=body,
            save_as=save_as,
            timeout_s=timeout,
            on_error=on_error,
            follow_redirects=follow_redirects,
        )

    def url(self, text: str, path: KeyPath) -> None:
        """A webhook url's shape: the script writes the scheme, host, port and query keys."""
        try:
            parse_url_template(text)
        except TemplateError as exc:  # UrlTemplateError is one
            raise self.fail(path, str(exc)) from None

    def branch(self, value: Any, path: KeyPath) -> tuple[BranchArm, ...]:
        """``[{if: EXPR, goto: STATE}, …, {else: STATE}]``: the first arm that holds wins."""
        if not isinstance(value, list) or not value:
            raise self.fail(
                path, "expected a list of {if: CONDITION, goto: STATE} and {else: STATE}"
            )
        arms: list[BranchArm] = []
        for index, item in enumerate(value):
            arm_path = (*path, str(index))
            last = index == len(value) - 1
            arm = self.guard(partial(self.branch_arm, item, arm_path, last), None)
            if arm is not None:
                arms.append(arm)
        if not isinstance(value[-1], dict) or "else" not in value[-1]:
            self.report((*path, str(len(value) - 1)), "a branch must end with {else: STATE}")
        return tuple(arms)

    def branch_arm(self, value: Any, path: KeyPath, last: bool) -> BranchArm:
        data = self.mapping(value, path, BRANCH_ARM_KEYS)
        if "else" in data:
            if set(data) != {"else"}:
                raise self.fail(path, "an else arm is {else: STATE} alone")
            if not last:
                raise self.fail(path, "{else: STATE} must be the branch's last arm")
            return BranchArm(None, self.goto(data["else"], (*path, "else")))
        for key in ("if", "goto"):
            if key not in data:
                raise self.fail(path, f"missing '{key}' (an arm is {{if: CONDITION, goto: STATE}})")
        condition = data["if"]
        if isinstance(condition, bool):
            condition = "true" if condition else "false"
        text = self.text(condition, (*path, "if"))
        try:
            expression = parse_expression(text)
        except ExpressionError as exc:
            raise self.fail((*path, "if"), str(exc)) from None
        self.conditions.append(((*path, "if"), expression))
        return BranchArm(text, self.goto(data["goto"], (*path, "goto")), expression)
