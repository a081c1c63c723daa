"""call.commands: plain values the turn core answers with, compared the way tests read them."""

from __future__ import annotations

import dataclasses
import inspect
import typing

import numpy as np

from voicebot.call import commands
from voicebot.call.commands import Command, Decode, JudgeTurn, TurnTaken


def test_every_command_class_is_in_the_command_union() -> None:
    defined = {
        obj
        for _, obj in inspect.getmembers(commands, inspect.isclass)
        if dataclasses.is_dataclass(obj) and obj.__module__ == commands.__name__
    }
    assert defined <= set(typing.get_args(Command))


def test_audio_and_timing_details_do_not_make_commands_differ() -> None:
    # Table tests compare commands by what was decided, not by the samples carried along.
    assert Decode(3, np.zeros(10, np.int16), part=1) == Decode(3, np.ones(5, np.int16), part=1)
    assert Decode(3, np.zeros(1, np.int16)) != Decode(3, np.zeros(1, np.int16), cumulative=True)
    assert JudgeTurn(2, np.zeros(4, np.int16), 0.1) == JudgeTurn(2, np.ones(4, np.int16), 0.1)
    taken = TurnTaken("hours", 1.0, 1.4, paused=1.2, transcribed=1.3)
    assert taken == TurnTaken("hours", 1.0, 1.4)
    shown = repr(Decode(1, np.zeros(1, np.int16)))
    assert shown == "Decode(turn_audio=1, part=0, cumulative=False)"
