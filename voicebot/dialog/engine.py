"""The dialog engine: pure ``(state, event) -> (state, actions)``, no audio and no I/O.

The call pipeline turns audio, keys and webhook answers into events (``Heard``, ``NoInput``,
``KeyPressed``, ``WebhookDone``, ``WebhookFailed``) and executes the actions (``Say``,
``Listen``, ``Hangup``, ``Transfer``, ``CallWebhook``); tests drive the engine directly.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from ..errors import ScriptError
from .calendars import is_open as calendar_open
from .expectation import AnswerKind, Expectation
from .expressions import evaluate, parse_expression
from .lang import Language, language_for
from .match import best_match
from .meaning import MeaningMatch
from .model import (
    BranchArm,
    Collect,
    EndOfTurn,
    Reaction,
    RecordedPrompt,
    SayItem,
    Script,
    State,
)
from .templates import freeze, render, render_value
from .urls import render_url

# A chain of goto states longer than this is a loop the validator could not see.
MAX_GOTO_HOPS = 50
# A result record keeps at most this many states of a call's path (its most recent ones).
MAX_PATH = 200
DIGIT_KEYS = frozenset("0123456789")

_EMPTY: Mapping[str, Any] = MappingProxyType({})


# -- events ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CallStarted:
    """The call was answered. ``variables``: ``caller_id``, ``called``, ``channel.NAME``
    (and ``contact.NAME`` on an outbound call). ``start``: the state to begin in instead of
    the script's ``start`` (``on_machine`` for an answering machine)."""

    variables: Mapping[str, str] = field(default_factory=dict, hash=False)
    start: str | None = None


@dataclass(frozen=True)
class Heard:
    """What the caller said. ``meaning``: the intent their words mean, found by the call
    layer (``call/meaning.py``) in a menu state whose phrases did not fit them; taken only
    where no phrase fits here either."""

    text: str
    meaning: MeaningMatch | None = None


@dataclass(frozen=True)
class NoInput:
    pass


@dataclass(frozen=True)
class KeyPressed:
    digit: str


@dataclass(frozen=True)
class WebhookDone:
    """The ``CallWebhook`` succeeded; ``data`` is its parsed (JSON) answer."""

    data: Any = field(hash=False)


@dataclass(frozen=True)
class WebhookFailed:
    reason: str


Event = CallStarted | Heard | NoInput | KeyPressed | WebhookDone | WebhookFailed


# -- actions --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Say:
    """Speak ``text`` (already rendered), or play ``recording`` (then ``text`` is its label);
    ``barge_in``: caller speech or a key stops it."""

    text: str
    barge_in: bool = True
    recording: RecordedPrompt | None = None


@dataclass(frozen=True)
class Listen:
    """Wait for the caller; after the prompts finish, ``timeout_s`` of silence is a ``NoInput``."""

    timeout_s: float
    phrases: tuple[str, ...] = ()
    # Restrict recognition to ``phrases`` (the script's ``grammar: true``).
    grammar: bool = False
    # What would complete the answer, and how long to wait when it is not complete.
    expectation: Expectation = field(default_factory=lambda: Expectation(AnswerKind.TEXT))
    end_of_turn: EndOfTurn = field(default_factory=EndOfTurn)


@dataclass(frozen=True)
class Hangup:
    pass


@dataclass(frozen=True)
class DoNotCall:
    """Put the number called on the do-not-call list (a state with ``dnc: true``)."""


@dataclass(frozen=True)
class Transfer:
    """Blind-transfer the caller (after the prompts): to a dialplan location or an endpoint.

    The dialog has ended.
    """

    context: str | None
    extension: str | None
    priority: int | None
    endpoint: str | None
    label: str | None = None
    # Channel variables to set on the caller's channel before it leaves: rendered, at most
    # MAX_VARIABLE_CHARS characters each, control characters replaced by spaces.
    variables: tuple[tuple[str, str], ...] = ()

    @property
    def target(self) -> str:
        """Where the caller goes, as logs and /calls name it."""
        if self.endpoint:
            return f"endpoint {self.endpoint}"
        return f"{self.context},{self.extension},{self.label or self.priority or 1}"


@dataclass(frozen=True)
class CallWebhook:
    """Make an HTTP request, then send ``WebhookDone(data)`` or ``WebhookFailed(reason)``.

    ``url`` is rendered and percent-encoded (``dialog/urls.py``): send it as it is.
    ``follow_redirects``: the script's; otherwise a redirect answer is a failure.
    """

    url: str
    method: str
    body: Any = field(hash=False)
    timeout_s: float
    follow_redirects: bool = False


@dataclass(frozen=True)
class Recognized:
    """Informational: which intent (or collect slot) the input matched, for logs."""

    state: str
    intent: str | None
    text: str
    # The intent was chosen by meaning (no phrase fitted): how close, for the log.
    meaning: MeaningMatch | None = None


@dataclass(frozen=True)
class SlotFilled:
    """Informational: a collect state stored ``value`` in the variable ``name``."""

    name: str
    value: str


Action = Say | Listen | Hangup | Transfer | CallWebhook | Recognized | SlotFilled | DoNotCall


@dataclass(frozen=True)
class DialogState:
    """Where a call's dialog is. ``variables`` is read-only; every change makes a new state.

    ``keyed``: digits keyed so far in a collect state; ``waiting``: a webhook is pending.
    """

    current: str
    retries: int = 0
    ended: bool = False
    variables: Mapping[str, Any] = field(default_factory=lambda: _EMPTY, hash=False)
    keyed: str = ""
    waiting: bool = False
    # The wall-clock time of the event being handled (what branches on business hours see).
    now: datetime | None = field(default=None, compare=False)
    # Every state entered so far, in order (the call's result record), the last MAX_PATH.
    path: tuple[str, ...] = ()

    def with_variable(self, name: str, value: Any) -> DialogState:
        return replace(self, variables=MappingProxyType({**self.variables, name: freeze(value)}))


Step = tuple[DialogState, list[Action]]


# -- entering states ------------------------------------------------------------------------


def _say(
    script: Script, items: tuple[SayItem, ...], state: State, variables: Mapping[str, Any]
) -> list[Action]:
    barge_in = state.settings.barge_in
    language = language_for(script.language)  # `{x|digits}` is spoken in it
    return [
        Say(render(item, variables, language), barge_in=barge_in)
        if isinstance(item, str)
        else Say(item.label, barge_in=barge_in, recording=item)
        for item in items
    ]


def _listen(script: Script, state: State) -> Listen:
    language = language_for(script.language)
    phrases = tuple(p for intent in state.expect for p in intent.phrases)
    if state.collect is not None and state.collect.type == "yes_no":
        phrases = language.yes_no_phrases
    return Listen(
        timeout_s=state.settings.no_input_timeout_s,
        phrases=phrases,
        grammar=state.settings.grammar and bool(phrases),
        expectation=expectation(state, language),
        end_of_turn=state.settings.end_of_turn,
    )


def expectation(state: State, language: Language) -> Expectation:
    """The shape of the answer ``state`` waits for, in the script's ``language``."""
    collect = state.collect
    if collect is None:
        intents = tuple((i.name, i.phrases) for i in state.expect)
        return Expectation(AnswerKind.MENU, intents=intents, language=language)
    if collect.type == "digits":
        return Expectation(
            AnswerKind.DIGITS,
            min_length=collect.min_length,
            max_length=collect.max_length,
            language=language,
        )
    return Expectation(AnswerKind(collect.type), language=language)


def branch_target(
    script: Script, arms: tuple[BranchArm, ...], variables: Mapping[str, Any], now: datetime
) -> str:
    """Where a ``branch`` goes: the first arm whose condition holds, else the last (``else``).
    ``now`` is what ``open("CALENDAR")`` asks about."""

    def is_open(name: str) -> bool:
        calendar = script.calendars.get(name)
        return calendar is not None and calendar_open(calendar, now)

    for arm in arms:
        if arm.condition is None:
            return arm.goto
        expression = arm.expression or parse_expression(arm.condition)
        if evaluate(expression, variables, is_open):
            return arm.goto
    return arms[-1].goto


def enter(
    script: Script,
    name: str,
    prefix: list[Action] | None = None,
    *,
    variables: Mapping[str, Any] = _EMPTY,
    now: datetime | None = None,
    path: tuple[str, ...] = (),
) -> Step:
    """Enter state ``name``: its prompts, then what it waits for (or how the call ends).
    ``now``: the wall-clock time branches on business hours see (default: the real time)."""
    now = now or datetime.now(UTC)
    actions: list[Action] = list(prefix or [])
    entered = list(path)
    for _ in range(MAX_GOTO_HOPS):
        entered.append(name)
        state = script.states[name]
        if state.dnc:
            actions.append(DoNotCall())
        actions += _say(script, state.say, state, variables)
        if state.goto:
            name = state.goto
            continue
        if state.branch:
            name = branch_target(script, state.branch, variables, now)
            continue
        dialog = DialogState(current=name, variables=variables, path=tuple(entered[-MAX_PATH:]))
        if state.hangup:
            return replace(dialog, ended=True), [*actions, Hangup()]
        if state.transfer is not None:
            t = state.transfer
            values = tuple((var, channel_value(text, variables)) for var, text in t.variables)
            return replace(dialog, ended=True), [
                *actions,
                Transfer(t.context, t.extension, t.priority, t.endpoint, t.label, values),
            ]
        if state.webhook is not None:
            hook = state.webhook
            request = CallWebhook(
                url=render_url(hook.url, variables),
                method=hook.method,
                body=render_value(hook.body, variables),
                timeout_s=hook.timeout_s,
                follow_redirects=hook.follow_redirects,
            )
            return replace(dialog, waiting=True), [*actions, request]
        return dialog, [*actions, _listen(script, state)]
    raise ScriptError(f"goto loop through state '{name}' without input", file=script.file)


# Asterisk keeps a channel variable's value as given; what reaches an agent's screen or a
# SayDigits() should be a field, not a webhook's whole answer.
MAX_VARIABLE_CHARS = 256
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def channel_value(text: str, variables: Mapping[str, Any]) -> str:
    """A transfer's ``set`` text rendered for a channel variable: one line, bounded."""
    return _CONTROL.sub(" ", render(text, variables))[:MAX_VARIABLE_CHARS]


def _enter_from(script: Script, dialog: DialogState, name: str, prefix: list[Action]) -> Step:
    return enter(script, name, prefix, variables=dialog.variables, now=dialog.now, path=dialog.path)


# -- retries --------------------------------------------------------------------------------


def _react(
    script: Script,
    dialog: DialogState,
    reaction: Reaction,
    *,
    escalated: bool,
) -> Step:
    state = script.states[dialog.current]
    actions = _say(script, reaction.say, state, dialog.variables)
    if reaction.goto:
        return _enter_from(script, dialog, reaction.goto, actions)
    if reaction.hangup or escalated:
        return replace(dialog, ended=True), [*actions, Hangup()]
    # Reprompt: apologize, then ask the state's question again.
    return dialog, [
        *actions,
        *_say(script, state.say, state, dialog.variables),
        _listen(script, state),
    ]


def _miss(script: Script, dialog: DialogState, reaction: Reaction) -> Step:
    state = script.states[dialog.current]
    dialog = replace(dialog, retries=dialog.retries + 1, keyed="")
    if dialog.retries > state.settings.max_retries:
        return _react(script, dialog, state.settings.on_max_retries, escalated=True)
    return _react(script, dialog, reaction, escalated=False)


def _no_match(script: Script, dialog: DialogState, text: str) -> Step:
    state = script.states[dialog.current]
    new_dialog, actions = _miss(script, dialog, state.settings.on_no_match)
    return new_dialog, [Recognized(state.name, None, text), *actions]


# -- expect ---------------------------------------------------------------------------------


def _expect(script: Script, dialog: DialogState, state: State, event: Event) -> Step:
    if isinstance(event, NoInput):
        return _miss(script, dialog, state.settings.on_no_input)
    if isinstance(event, KeyPressed):
        for intent in state.expect:
            if event.digit in intent.dtmf:
                return _enter_from(
                    script, dialog, intent.goto, [Recognized(state.name, intent.name, event.digit)]
                )
        return _no_match(script, dialog, event.digit)
    assert isinstance(event, Heard)
    language = language_for(script.language)
    match = best_match(event.text, [(i.name, i.phrases) for i in state.expect], language=language)
    meaning = _meant(state, event) if match is None else None
    chosen = match.intent if match is not None else meaning.intent if meaning else None
    if chosen is None:
        return _no_match(script, dialog, event.text)
    target = next(i.goto for i in state.expect if i.name == chosen)
    recognized = Recognized(state.name, chosen, event.text, meaning)
    return _enter_from(script, dialog, target, [recognized])


def _meant(state: State, event: Heard) -> MeaningMatch | None:
    """The meaning the call layer found for the words, if the state understands by meaning
    and it names one of the state's intents."""
    meaning = event.meaning
    if meaning is None or not state.by_meaning:
        return None
    return meaning if any(i.name == meaning.intent for i in state.expect) else None


# -- collect --------------------------------------------------------------------------------


def _value(collect: Collect, text: str, *, keyed: bool, language: Language) -> str | None:
    """The slot value for what the caller said (or keyed) in ``language``, or None if it does
    not fit."""
    if collect.type == "text":
        return None if keyed else text.strip() or None
    if collect.type == "yes_no":
        if keyed:
            return {"1": "yes", "2": "no"}.get(text)
        answer = language.parse_yes_no(text)
        return None if answer is None else "yes" if answer else "no"
    if collect.type == "digits":
        digits = text if keyed else language.parse_digits(text)
        if digits is None or not digits.isdigit():
            return None
        too_long = collect.max_length is not None and len(digits) > collect.max_length
        return None if len(digits) < collect.min_length or too_long else digits
    number = (int(text) if text.isdigit() else None) if keyed else language.parse_number(text)
    if number is None:
        return None
    if (collect.min is not None and number < collect.min) or (
        collect.max is not None and number > collect.max
    ):
        return None
    return str(number)


def _fill(script: Script, dialog: DialogState, collect: Collect, text: str, value: str) -> Step:
    state = script.states[dialog.current]
    dialog = replace(dialog.with_variable(collect.slot, value), keyed="")
    return _enter_from(
        script,
        dialog,
        collect.goto,
        [Recognized(state.name, collect.slot, text), SlotFilled(collect.slot, value)],
    )


def _finish_keyed(script: Script, dialog: DialogState, collect: Collect) -> Step:
    value = _value(collect, dialog.keyed, keyed=True, language=language_for(script.language))
    if value is None:
        return _no_match(script, dialog, dialog.keyed)
    return _fill(script, dialog, collect, dialog.keyed, value)


def _collect(script: Script, dialog: DialogState, state: State, event: Event) -> Step:
    collect = state.collect
    assert collect is not None
    accumulates = collect.type in ("digits", "number")
    if isinstance(event, NoInput):
        if dialog.keyed:
            return _finish_keyed(script, dialog, collect)
        return _miss(script, dialog, state.settings.on_no_input)
    if isinstance(event, KeyPressed):
        key = event.digit
        if not accumulates:
            value = _value(collect, key, keyed=True, language=language_for(script.language))
            if value is None:
                return _no_match(script, dialog, key)
            return _fill(script, dialog, collect, key, value)
        if key == "#":
            return _finish_keyed(script, dialog, collect)
        if key == "*":  # start the entry over
            return replace(dialog, keyed=""), [_listen(script, state)]
        if key not in DIGIT_KEYS:
            return _no_match(script, dialog, dialog.keyed + key)
        dialog = replace(dialog, keyed=dialog.keyed + key)
        if collect.type == "digits" and len(dialog.keyed) == collect.max_length:
            return _finish_keyed(script, dialog, collect)
        return dialog, [_listen(script, state)]
    assert isinstance(event, Heard)
    dialog = replace(dialog, keyed="")
    value = _value(collect, event.text, keyed=False, language=language_for(script.language))
    if value is None:
        return _no_match(script, dialog, event.text)
    return _fill(script, dialog, collect, event.text, value)


# -- webhooks -------------------------------------------------------------------------------


def _webhook_answer(script: Script, dialog: DialogState, state: State, event: Event) -> Step:
    hook = state.webhook
    assert hook is not None
    dialog = replace(dialog, waiting=False)
    if isinstance(event, WebhookDone):
        if hook.save_as:
            dialog = dialog.with_variable(hook.save_as, event.data)
        return _enter_from(script, dialog, hook.goto, [])
    reaction = hook.on_error
    actions = _say(script, reaction.say, state, dialog.variables)
    if reaction.goto:
        return _enter_from(script, dialog, reaction.goto, actions)
    return replace(dialog, ended=True), [*actions, Hangup()]


# -- the step function ----------------------------------------------------------------------


def step(
    script: Script, dialog: DialogState | None, event: Event, now: datetime | None = None
) -> Step:
    """Advance the dialog by one event. ``dialog`` is None before the call started; ``now``:
    the wall-clock time of the event (default: the real time), for ``open("CALENDAR")``."""
    if isinstance(event, CallStarted) or dialog is None:
        variables = event.variables if isinstance(event, CallStarted) else {}
        start = event.start if isinstance(event, CallStarted) and event.start else script.start
        return enter(script, start, variables=MappingProxyType(dict(variables)), now=now)
    if dialog.ended:
        return dialog, []
    dialog = replace(dialog, now=now or datetime.now(UTC))
    state = script.states[dialog.current]
    if isinstance(event, WebhookDone | WebhookFailed):
        if not dialog.waiting or state.webhook is None:
            return dialog, []  # a late answer to a request the dialog no longer waits for
        return _webhook_answer(script, dialog, state, event)
    if dialog.waiting:
        return dialog, []  # the caller talks or keys while the webhook runs: ignored
    if state.expect:
        return _expect(script, dialog, state, event)
    if state.collect is not None:
        return _collect(script, dialog, state, event)
    return dialog, []


class DialogEngine:
    """Convenience holder of the current ``DialogState`` for one call."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.state: DialogState | None = None

    def handle(self, event: Event, now: datetime | None = None) -> list[Action]:
        self.state, actions = step(self.script, self.state, event, now)
        return actions

    @property
    def ended(self) -> bool:
        return self.state is not None and self.state.ended

    @property
    def variables(self) -> Mapping[str, Any]:
        return self.state.variables if self.state is not None else _EMPTY
