"""Dialog scripts as typed objects: what a prompts/*.yaml file says once it is parsed and valid.

``voicebot.dialog.parser`` builds them (with ``file:line`` errors); the engine runs them. All
frozen, so one loaded script serves every call.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .calendars import Calendar
from .expressions import Expression
from .templates import parse_template, template_strings

CollectType = Literal["digits", "number", "text", "yes_no"]
# How a menu state (``expect``) tells which intent the caller chose: by its phrases alone, or
# also by meaning when no phrase fits (``dialog/meaning.py``; phrases alone where the model is
# not installed).
UnderstandBy = Literal["phrases", "meaning"]
UNDERSTAND_BY: tuple[UnderstandBy, ...] = ("phrases", "meaning")


@dataclass(frozen=True)
class RecordedPrompt:
    """A recorded prompt in a ``say`` list: ``{audio: FILE}`` (a WAV file; ``path`` resolved
    against the script's folder) or ``{sound: NAME}`` (one of Asterisk's sound files, found
    in the configured sound directories). ``source`` is what the script wrote."""

    kind: Literal["audio", "sound"]
    source: str
    path: str

    @property
    def label(self) -> str:
        """How transcripts and logs show it: ``[audio greetings/welcome.wav]``."""
        return f"[{self.kind} {self.source}]"


# One item of a ``say`` list: a text (a template) or a recorded prompt.
SayItem = str | RecordedPrompt


@dataclass(frozen=True)
class BranchArm:
    """One ``{if: EXPR, goto: STATE}`` of a ``branch`` (``condition`` None: the ``else``);
    ``expression``: the condition parsed when the script loaded."""

    condition: str | None
    goto: str
    expression: Expression | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Reaction:
    """What happens on no-input, no-match, too many retries or a failed webhook."""

    say: tuple[SayItem, ...] = ()
    goto: str | None = None
    hangup: bool = False


@dataclass(frozen=True)
class EndOfTurn:
    """When the caller's turn is over, once they fall silent (docs/scripts.md, end_of_turn).

    An answer that completes what the state expects is taken at once. Otherwise the turn model
    (when installed and ``turn_model``) judges; without a verdict the bot waits ``silence``, and
    never longer than ``max_silence``. A digits answer short of its length waits
    ``digit_timeout`` for more digits.
    """

    silence_s: float = 0.6
    max_silence_s: float = 1.2
    digit_timeout_s: float = 2.0
    turn_model: bool = True


@dataclass(frozen=True)
class StateSettings:
    no_input_timeout_s: float = 5.0
    max_retries: int = 2
    barge_in: bool = True
    # Recognize only the state's expected phrases (engines that support it: Vosk).
    grammar: bool = False
    on_no_input: Reaction = Reaction(say=("Sorry, I didn't hear anything.",))
    on_no_match: Reaction = Reaction(say=("Sorry, I didn't get that.",))
    on_max_retries: Reaction = Reaction(say=("Goodbye.",), hangup=True)
    end_of_turn: EndOfTurn = EndOfTurn()
    understand: UnderstandBy = "meaning"


@dataclass(frozen=True)
class Intent:
    name: str
    phrases: tuple[str, ...]
    dtmf: tuple[str, ...]
    goto: str
    # Sentences callers say for it that only the comparison by meaning uses: unlike phrases,
    # they are neither matched word by word nor handed to the recognizer.
    examples: tuple[str, ...] = ()


@dataclass(frozen=True)
class Collect:
    """Ask for one value and store it (as text) in the variable ``slot``.

    ``digits``: ``min_length``..``max_length`` digits (``length: N`` sets both; no maximum
    means ``#`` or silence ends keyed input). ``number``: a whole number in ``min``..``max``.
    """

    slot: str
    type: CollectType
    goto: str
    min_length: int = 1
    max_length: int | None = None
    min: int | None = None
    max: int | None = None
    # A secret (a PIN, a card number): masked in the call's result record.
    private: bool = False


@dataclass(frozen=True)
class Transfer:
    """Blind transfer: to ``context``/``extension`` at ``priority`` or at a priority ``label``,
    or to a dial ``endpoint``; ``variables``: channel variables (name, template) set on the
    caller's channel first, for the dialplan and the agent's screen."""

    context: str | None = None
    extension: str | None = None
    priority: int | None = None
    endpoint: str | None = None
    label: str | None = None
    variables: tuple[tuple[str, str], ...] = ()


DEFAULT_ON_ERROR = Reaction(say=("Sorry, something went wrong.",), hangup=True)


@dataclass(frozen=True)
class Webhook:
    """An HTTP request the call pipeline makes; ``url`` and strings in ``body`` are templates.

    ``url`` passed ``voicebot.dialog.urls.parse_url_template``: placeholders only in path
    segments and query values.
    """

    url: str
    goto: str
    method: str = "POST"
    body: Any = None
    save_as: str | None = None
    timeout_s: float = 5.0
    on_error: Reaction = DEFAULT_ON_ERROR
    follow_redirects: bool = False


@dataclass(frozen=True)
class State:
    name: str
    say: tuple[SayItem, ...]
    settings: StateSettings
    expect: tuple[Intent, ...] = ()
    goto: str | None = None
    hangup: bool = False
    collect: Collect | None = None
    transfer: Transfer | None = None
    webhook: Webhook | None = None
    # The first arm whose condition holds names the next state; the last arm is the else.
    branch: tuple[BranchArm, ...] = ()
    # Entering it puts the number called on the do-not-call list ("don't call me again").
    dnc: bool = False

    @property
    def understand(self) -> UnderstandBy:
        """How the state's menu is understood (its ``understand`` setting)."""
        return self.settings.understand

    @property
    def by_meaning(self) -> bool:
        """A menu whose intents may be chosen by meaning when no phrase fits."""
        return bool(self.expect) and self.settings.understand == "meaning"

    @property
    def meaning_menu(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """What the comparison by meaning compares the words with: each intent and its
        phrases and examples."""
        return tuple((intent.name, intent.phrases + intent.examples) for intent in self.expect)

    @property
    def takes_input(self) -> bool:
        """Whether the state listens to the caller (and so uses the retry settings)."""
        return bool(self.expect) or self.collect is not None


@dataclass(frozen=True)
class Script:
    name: str
    language: str
    start: str
    states: Mapping[str, State]
    file: str = ""
    # Record this script's calls (RTP pcap + transcript): None follows the `record` config.
    record: bool | None = None
    # Business hours by name, for open("NAME") in branches.
    calendars: Mapping[str, Calendar] = field(default_factory=dict)
    # Where an outbound call that reached an answering machine starts (after its beep), to
    # leave a message; None: a machine is hung up on without one.
    on_machine: str | None = None

    def templates(self) -> list[str]:
        """Every text of the script that is templated at run time (prompts, webhook url/body)."""
        texts = self._spoken()
        for state in self.states.values():
            if state.webhook is not None:
                texts.append(state.webhook.url)
                texts += [text for _, text in template_strings(state.webhook.body)]
            if state.transfer is not None:
                texts += [text for _, text in state.transfer.variables]
        return texts

    def channel_variables(self) -> set[str]:
        """Names of the channel variables the script uses (``{channel.NAME}`` → ``NAME``)."""
        names: set[str] = set()
        for text in self.templates():
            for name in parse_template(text).names:
                if name.startswith("channel."):
                    names.add(name.split(".")[1])
        return names

    def prompts(self) -> set[str]:
        """Every fixed text the script can speak (templated ones need the call's variables):
        worth synthesizing before the first call."""
        templates = [parse_template(text) for text in self._spoken()]
        return {t.render({}) for t in templates if t.is_constant}

    def prompt_heads(self) -> set[str]:
        """The fixed words templated texts start with ("You said" of "You said {code}."):
        cached, they play at once while the rest is synthesized."""
        templates = [parse_template(text) for text in self._spoken()]
        return {t.head for t in templates if not t.is_constant and t.head}

    def recorded_prompts(self) -> set[RecordedPrompt]:
        """Every recorded prompt the script can play: loaded and converted before calls."""
        return {item for item in self._say_items() if isinstance(item, RecordedPrompt)}

    def _spoken(self) -> list[str]:
        return [item for item in self._say_items() if isinstance(item, str)]

    def _say_items(self) -> list[SayItem]:
        items: list[SayItem] = []
        for state in self.states.values():
            items += state.say
            for reaction in (
                state.settings.on_no_input,
                state.settings.on_no_match,
                state.settings.on_max_retries,
            ):
                items += reaction.say
            if state.webhook is not None:
                items += state.webhook.on_error.say
        return items
