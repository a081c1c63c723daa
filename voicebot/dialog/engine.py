"""The dialog engine: pure ``(state, event) -> (state, actions)``, no audio and no I/O.

The call pipeline turns audio into events (``Heard``, ``NoInput``, ``KeyPressed``) and executes
the actions (``Say``, ``Listen``, ``Hangup``); tests drive the engine directly.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..errors import ScriptError
from .match import best_match
from .script import Reaction, Script, State

# A chain of goto states longer than this is a loop the validator could not see.
MAX_GOTO_HOPS = 50


@dataclass(frozen=True)
class CallStarted:
    pass


@dataclass(frozen=True)
class Heard:
    text: str


@dataclass(frozen=True)
class NoInput:
    pass


@dataclass(frozen=True)
class KeyPressed:
    digit: str


Event = CallStarted | Heard | NoInput | KeyPressed


@dataclass(frozen=True)
class Say:
    text: str
    barge_in: bool = True


@dataclass(frozen=True)
class Listen:
    """Wait for the caller; after the prompts finish, ``timeout_s`` of silence is a ``NoInput``."""

    timeout_s: float
    phrases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Hangup:
    pass


@dataclass(frozen=True)
class Recognized:
    """Informational: which intent the input matched (for logs and transcripts)."""

    state: str
    intent: str | None
    text: str


Action = Say | Listen | Hangup | Recognized


@dataclass(frozen=True)
class DialogState:
    current: str
    retries: int = 0
    ended: bool = False


def _say(texts: tuple[str, ...], state: State) -> list[Action]:
    return [Say(text, barge_in=state.settings.barge_in) for text in texts]


def _listen(state: State) -> Listen:
    phrases = tuple(p for intent in state.expect for p in intent.phrases)
    return Listen(timeout_s=state.settings.no_input_timeout_s, phrases=phrases)


def enter(
    script: Script, name: str, prefix: list[Action] | None = None
) -> tuple[DialogState, list[Action]]:
    actions: list[Action] = list(prefix or [])
    for _ in range(MAX_GOTO_HOPS):
        state = script.states[name]
        actions += _say(state.say, state)
        if state.goto:
            name = state.goto
            continue
        if state.hangup:
            return DialogState(current=name, ended=True), [*actions, Hangup()]
        return DialogState(current=name), [*actions, _listen(state)]
    raise ScriptError(f"goto loop through state '{name}' without input", file=script.file)


def _react(
    script: Script,
    dialog: DialogState,
    reaction: Reaction,
    *,
    escalated: bool,
) -> tuple[DialogState, list[Action]]:
    state = script.states[dialog.current]
    actions = _say(reaction.say, state)
    if reaction.goto:
        return enter(script, reaction.goto, actions)
    if reaction.hangup or escalated:
        return replace(dialog, ended=True), [*actions, Hangup()]
    # Reprompt: apologize, then ask the state's question again.
    return dialog, [*actions, *_say(state.say, state), _listen(state)]


def _miss(
    script: Script, dialog: DialogState, reaction: Reaction
) -> tuple[DialogState, list[Action]]:
    state = script.states[dialog.current]
    dialog = replace(dialog, retries=dialog.retries + 1)
    if dialog.retries > state.settings.max_retries:
        return _react(script, dialog, state.settings.on_max_retries, escalated=True)
    return _react(script, dialog, reaction, escalated=False)


def step(
    script: Script, dialog: DialogState | None, event: Event
) -> tuple[DialogState, list[Action]]:
    """Advance the dialog by one event. ``dialog`` is None before the call started."""
    if isinstance(event, CallStarted) or dialog is None:
        return enter(script, script.start)
    if dialog.ended:
        return dialog, []
    state = script.states[dialog.current]
    if not state.expect:
        return dialog, []
    if isinstance(event, NoInput):
        return _miss(script, dialog, state.settings.on_no_input)
    if isinstance(event, KeyPressed):
        for intent in state.expect:
            if event.digit in intent.dtmf:
                return enter(
                    script, intent.goto, [Recognized(state.name, intent.name, event.digit)]
                )
        return _miss(script, dialog, state.settings.on_no_match)
    match = best_match(event.text, [(i.name, i.phrases) for i in state.expect])
    if match is None:
        new_dialog, actions = _miss(script, dialog, state.settings.on_no_match)
        return new_dialog, [Recognized(state.name, None, event.text), *actions]
    target = next(i.goto for i in state.expect if i.name == match.intent)
    return enter(script, target, [Recognized(state.name, match.intent, event.text)])


class DialogEngine:
    """Convenience holder of the current ``DialogState`` for one call."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.state: DialogState | None = None

    def handle(self, event: Event) -> list[Action]:
        self.state, actions = step(self.script, self.state, event)
        return actions

    @property
    def ended(self) -> bool:
        return self.state is not None and self.state.ended
