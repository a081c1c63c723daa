"""Loading dialog scripts: every problem named as ``file:line: key.path: problem``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.dialog_scripts import hook_script, write
from voicebot.dialog.engine import DialogState, Heard, Recognized, step
from voicebot.dialog.parser import load_script
from voicebot.errors import ScriptError

ROOT = Path(__file__).resolve().parents[3]
DEMO = ROOT / "prompts" / "demo.yaml"


BROKEN = {
    "unknown goto": (
        """start: a
states:
  a:
    say: hi
    goto: b
""",
        "s.yaml:5: states.a.goto: unknown state 'b'",
    ),
    "dead end": (
        """start: a
states:
  a:
    say: hi
""",
        "s.yaml:3: states.a: has no next step",
    ),
    "unknown key": (
        """start: a
states:
  a:
    sya: hi
    hangup: true
""",
        "s.yaml:4: states.a.sya: unknown key 'sya'",
    ),
    "bad example": (
        """start: a
states:
  a:
    expect:
      yes: {phrases: ["yes"], examples: ["sure", ""], goto: a}
""",
        "s.yaml:5: states.a.expect.yes.examples.1: expected non-empty text",
    ),
    "unreachable": (
        """start: a
states:
  a:
    hangup: true
  b:
    hangup: true
""",
        "s.yaml:5: states.b: state 'b' is unreachable from 'a'",
    ),
    "bad duration": (
        """start: a
defaults:
  no_input_timeout: soon
states:
  a:
    hangup: true
""",
        "s.yaml:3: defaults.no_input_timeout: bad duration 'soon'",
    ),
    "missing start": (
        """states:
  a:
    hangup: true
""",
        "s.yaml:1: missing 'start'",
    ),
    "bad yaml": ("start: [a\n", "s.yaml:2: invalid YAML"),
    "transfer sets a function": (
        """start: a
states:
  a:
    transfer:
      context: c
      extension: "1"
      set: {ACCOUNT: "1", CALLERID(num): "5"}
""",
        "s.yaml:7: states.a.transfer.set.CALLERID(num): bad channel variable name 'CALLERID(num)'",
    ),
    "transfer sets the bot's own variable": (
        """start: a
states:
  a:
    transfer: {endpoint: PJSIP/op, set: {VOICEBOT_RESULT: done}}
""",
        "s.yaml:4: states.a.transfer.set.VOICEBOT_RESULT: bad channel variable name",
    ),
    "transfer sets an undefined variable": (
        """start: a
states:
  a:
    transfer:
      endpoint: PJSIP/op
      set:
        ACCOUNT: "{acount}"
""",
        "s.yaml:7: states.a.transfer.set.ACCOUNT: undefined variable 'acount'",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_scripts_name_file_line_and_key(tmp_path: Path, case: str) -> None:
    text, expected = BROKEN[case]
    with pytest.raises(ScriptError) as info:
        load_script(write(tmp_path, text))
    assert str(info.value).replace(str(tmp_path) + "/", "").startswith(expected)


ONLY = "only path segments and query values may be templated"


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        (
            "{channel.API}/balance",
            "url '{channel.API}/balance' starts with a placeholder '{channel.API}': write the "
            f"scheme and host in the script (e.g. https://api.example/{{channel.API}}); {ONLY}",
        ),
        (
            "https://{channel.HOST}/balance",
            f"placeholder '{{channel.HOST}}' in the host of url 'https://{{channel.HOST}}/balance'"
            f" ({ONLY})",
        ),
        (
            "https://bank.example:{channel.PORT}/",
            "placeholder '{channel.PORT}' in the port of url "
            f"'https://bank.example:{{channel.PORT}}/' ({ONLY})",
        ),
        (
            "https://bank.example/x?{caller_id}=1",
            "placeholder '{caller_id}' in the query key of url "
            f"'https://bank.example/x?{{caller_id}}=1' ({ONLY})",
        ),
        (
            "https://bank.example/x#{caller_id}",
            "placeholder '{caller_id}' in the fragment of url "
            f"'https://bank.example/x#{{caller_id}}' ({ONLY})",
        ),
        (
            "https://bank.example/x#top",
            "bad url 'https://bank.example/x#top': a fragment ('#…') is never sent to the web "
            "service (remove it)",
        ),
        ("bank.example/{caller_id}", "bad url 'bank.example/{caller_id}' (expected http:// or"),
    ],
    ids=["placeholder-first", "host", "port", "query-key", "fragment", "fixed-fragment", "scheme"],
)
def test_a_webhook_url_whose_shape_a_value_could_change_is_an_error(
    tmp_path: Path, url: str, problem: str
) -> None:
    path = write(tmp_path, hook_script(url))
    with pytest.raises(ScriptError) as info:
        load_script(path)
    assert str(info.value).startswith(f"{path}:5: states.a.webhook.url: {problem}")


def test_follow_redirects_is_a_boolean(tmp_path: Path) -> None:
    path = write(tmp_path, hook_script("https://h/", "      follow_redirects: yes\n"))
    with pytest.raises(ScriptError) as info:
        load_script(path)
    assert str(info.value) == (
        f"{path}:7: states.a.webhook.follow_redirects: expected true or false, got 'yes'"
    )


def test_examples_are_for_the_meaning_only(tmp_path: Path) -> None:
    script = load_script(write(tmp_path, """start: a
states:
  a:
    expect:
      hours: {phrases: ["hours"], examples: ["when do you close", "open on Sunday"], goto: a}
      bye: {phrases: ["goodbye"], goto: a}
"""))  # fmt: skip
    state = script.states["a"]
    assert [intent.examples for intent in state.expect] == [
        ("when do you close", "open on Sunday"),
        (),
    ]
    assert state.meaning_menu == (
        ("hours", ("hours", "when do you close", "open on Sunday")),
        ("bye", ("goodbye",)),
    )
    # Said word for word, an example is no phrase: the words go to the comparison by meaning.
    _, actions = step(script, DialogState(current="a"), Heard("when do you close"))
    assert next(a for a in actions if isinstance(a, Recognized)).intent is None


def test_demo_script_still_loads() -> None:
    assert load_script(DEMO).states["main"].expect
