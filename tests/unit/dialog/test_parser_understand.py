"""The ``understand`` setting: how a menu state tells which intent the caller chose."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.dialog_scripts import write
from voicebot.dialog.parser import load_script
from voicebot.errors import ScriptError

MENUS = """\
start: a
{defaults}states:
  a:
    say: "Hours or goodbye?"
{setting}    expect:
      hours: {{phrases: ["hours"], goto: b}}
      bye: {{phrases: ["goodbye"], goto: b}}
  b:
    say: "More?"
    expect:
      bye: {{phrases: ["goodbye"], goto: c}}
  c:
    hangup: true
"""


def script(tmp_path: Path, defaults: str = "", setting: str = "") -> Path:
    return write(tmp_path, MENUS.format(defaults=defaults, setting=setting))


@pytest.mark.parametrize(
    ("defaults", "setting", "a", "b"),
    [
        ("", "", "meaning", "meaning"),  # meaning where the model is installed: the default
        ("", "    understand: phrases\n", "phrases", "meaning"),
        ("defaults: {understand: phrases}\n", "", "phrases", "phrases"),
        ("defaults: {understand: phrases}\n", "    understand: meaning\n", "meaning", "phrases"),
    ],
)
def test_understand_is_a_setting_of_defaults_and_of_each_state(
    tmp_path: Path, defaults: str, setting: str, a: str, b: str
) -> None:
    states = load_script(script(tmp_path, defaults, setting)).states
    assert (states["a"].understand, states["b"].understand) == (a, b)
    assert states["a"].by_meaning is (a == "meaning")
    assert not states["c"].by_meaning  # no menu, nothing to understand


@pytest.mark.parametrize(
    ("defaults", "setting", "error"),
    [
        (
            "",
            "    understand: meanings\n",
            "s.yaml:5: states.a.understand: expected one of phrases, meaning, got 'meanings'",
        ),
        (
            "defaults: {understand: true}\n",
            "",
            "s.yaml:2: defaults.understand: expected one of phrases, meaning, got True",
        ),
        (
            "",
            "    understand: [phrases]\n",
            "s.yaml:5: states.a.understand: expected one of phrases, meaning, got ['phrases']",
        ),
    ],
)
def test_a_bad_value_is_named_with_its_file_and_line(
    tmp_path: Path, defaults: str, setting: str, error: str
) -> None:
    with pytest.raises(ScriptError) as info:
        load_script(script(tmp_path, defaults, setting))
    assert str(info.value).replace(str(tmp_path) + "/", "") == error
