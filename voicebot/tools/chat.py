"""``voicebot chat``: a dialog script in a terminal, for script authors without a phone.

The same engine as on a call. The bot's lines are printed (``bot: ...``); what the user types
is what the caller says (``you> ``): a line starting with ``#`` sends keys instead, one
``KeyPressed`` per following character (``#1``, ``#4217#``, ``##`` for the key ``#``); an
empty line is silence (``NoInput``); end of input (Ctrl-D) ends the chat. Webhooks are really
called, and transfers and hangups are printed and end the chat.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from datetime import datetime
from typing import TextIO

import aiohttp

from ..call.webhook import WebhookPolicy, call_webhook, webhook_session
from ..config import WebhookConfig
from ..dialog.engine import (
    Action,
    CallStarted,
    CallWebhook,
    DialogEngine,
    Event,
    Hangup,
    Heard,
    KeyPressed,
    Listen,
    NoInput,
    Recognized,
    Say,
    SlotFilled,
    Transfer,
    WebhookDone,
    WebhookFailed,
)
from ..dialog.model import Script

KEY_PREFIX = "#"
DTMF_KEYS = frozenset("0123456789*#ABCD")
_DIM, _RESET = "\x1b[2m", "\x1b[0m"


def parse_input(line: str) -> list[Event] | str:
    """The events one typed line stands for, or a complaint about it.

    ``""`` → silence; ``#12#`` → keys 1, 2, #; anything else → the caller said it.
    """
    text = line.strip()
    if not text:
        return [NoInput()]
    if not text.startswith(KEY_PREFIX):
        return [Heard(text)]
    keys = "".join(text[len(KEY_PREFIX) :].split()).upper()
    if not keys:
        return "no keys after '#' (e.g. #1 or #4217#; ## sends the key #)"
    bad = sorted({key for key in keys if key not in DTMF_KEYS})
    if bad:
        return f"not a phone key: {', '.join(repr(k) for k in bad)} (keys are 0-9 * # A-D)"
    return [KeyPressed(key) for key in keys]


def describe(action: Action) -> str | None:
    """The bracketed note printed for an action that is not speech; None for none."""
    if isinstance(action, Recognized):
        return f"[intent {action.intent}]" if action.intent else f"[no match: {action.text!r}]"
    if isinstance(action, SlotFilled):
        return f"[{action.name} = {action.value}]"
    if isinstance(action, CallWebhook):
        return f"[webhook {action.method} {action.url}]"
    if isinstance(action, Transfer):
        if action.endpoint:
            target = action.endpoint
        else:
            target = f"{action.context}/{action.extension}"
            if action.label or action.priority not in (None, 1):
                target += f"/{action.label or action.priority}"
        return f"[transfer to {target}]"
    if isinstance(action, Hangup):
        return "[hangup]"
    return None


def _announces(action: Action, following: Action | None) -> bool:
    """A collect state's ``Recognized`` right before its ``SlotFilled`` says nothing more."""
    return (
        isinstance(action, Recognized)
        and isinstance(following, SlotFilled)
        and following.name == action.intent
    )


class _Transcript:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.dim = bool(getattr(out, "isatty", lambda: False)())

    def line(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def note(self, text: str) -> None:
        self.line(f"{_DIM}{text}{_RESET}" if self.dim else text)

    def prompt(self) -> None:
        self.out.write("you> ")
        self.out.flush()


async def _next_line(lines: AsyncIterator[str] | Iterator[str]) -> str | None:
    if isinstance(lines, AsyncIterator):
        try:
            return await anext(lines)
        except StopAsyncIteration:
            return None
    return next(lines, None)


class _Chat:
    def __init__(
        self,
        script: Script,
        out: TextIO,
        session: aiohttp.ClientSession,
        policy: WebhookPolicy,
        now: datetime | None = None,
    ) -> None:
        self.engine = DialogEngine(script)
        self.now = now  # the clock branches see (--now); None: the real time
        self.show = _Transcript(out)
        self.session = session
        self.policy = policy
        self.finished = False  # hangup or transfer

    async def handle(self, event: Event) -> None:
        """Feed one event, print what the bot does, and run webhooks until it waits again."""
        pending: list[Event] = [event]
        while pending and not self.finished:
            actions = self.engine.handle(pending.pop(0), self.now)
            for action, following in zip(actions, [*actions[1:], None], strict=True):
                if _announces(action, following):
                    continue
                follow_up = await self.perform(action)
                if follow_up is not None:
                    pending.append(follow_up)
                if self.finished:
                    break

    async def perform(self, action: Action) -> Event | None:
        if isinstance(action, Say):
            self.show.line(f"bot: {action.text}")
            return None
        if isinstance(action, Listen):
            return None
        note = describe(action)
        if note is not None:
            self.show.note(note)
        if isinstance(action, Hangup | Transfer):
            self.finished = True
        if isinstance(action, CallWebhook):
            ok, result = await call_webhook(
                self.session,
                action.method,
                action.url,
                action.body,
                action.timeout_s,
                self.policy,
                follow_redirects=action.follow_redirects,
            )
            if ok:
                return WebhookDone(result)
            self.show.note(f"[webhook failed: {result}]")
            return WebhookFailed(str(result))
        return None

    @property
    def over(self) -> bool:
        return self.finished or self.engine.ended


async def run_chat(
    script: Script,
    lines: AsyncIterator[str] | Iterator[str],
    out: TextIO,
    *,
    variables: Mapping[str, str],
    echo: bool = False,
    webhooks: WebhookConfig | None = None,
    now: datetime | None = None,
) -> int:
    """Converse with ``script`` over ``lines`` (what the caller says), writing to ``out``.

    ``variables`` are the call's (``caller_id``, ``called``, ``channel.NAME``). ``echo`` writes
    each input line after the prompt, for input that is not typed at a terminal. ``webhooks``:
    the ``[webhooks]`` policy, as on a call (None: the defaults). ``now``: the time business
    hours are judged at (None: the real time). Returns the exit status: 0 when the dialog or
    the input ended.
    """
    policy = WebhookPolicy.from_config(webhooks or WebhookConfig())
    async with webhook_session(policy) as session:
        chat = _Chat(script, out, session, policy, now)
        await chat.handle(CallStarted(dict(variables)))
        while not chat.over:
            chat.show.prompt()
            line = await _next_line(lines)
            if line is None:
                chat.show.line("")
                chat.show.note("[end of input]")
                break
            if echo:
                chat.show.line(line.rstrip("\r\n"))
            parsed = parse_input(line)
            if isinstance(parsed, str):
                chat.show.note(f"[{parsed}]")
                continue
            for event in parsed:
                if chat.over:
                    break
                await chat.handle(event)
    return 0


def chat_variables(caller_id: str, called: str, channel: Sequence[str]) -> dict[str, str] | str:
    """``--caller-id``, ``--called`` and ``--var NAME=VALUE`` → the call's variables.

    Returns a complaint instead for a ``--var`` without ``=`` or without a name.
    """
    variables = {"caller_id": caller_id, "called": called}
    for item in channel:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            return f"--var {item!r}: expected NAME=VALUE"
        variables[f"channel.{name.strip()}"] = value
    return variables
