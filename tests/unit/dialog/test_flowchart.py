"""``voicebot graph``: the DOT text of a script's flow, and the SVG Graphviz draws from it."""

from __future__ import annotations

import os
import re
import shutil
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from tests.support.dialog_scripts import BANK, write
from voicebot.cli import main
from voicebot.dialog.flowchart import (
    ENTRY_NODE,
    HANGUP_NODE,
    GraphError,
    GraphvizMissing,
    dot_string,
    render_svg,
    script_dot,
    shorten,
    transfer_target,
)
from voicebot.dialog.model import (
    BranchArm,
    Collect,
    Intent,
    Reaction,
    RecordedPrompt,
    Script,
    State,
    StateSettings,
    Transfer,
    Webhook,
)
from voicebot.dialog.parser import load_script
from voicebot.errors import EXIT_INVALID, EXIT_OK

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = sorted((ROOT / "prompts").glob("*.yaml"))
HAVE_DOT = shutil.which("dot") is not None
NEEDS_DOT = pytest.mark.skipif(
    not HAVE_DOT, reason="Graphviz's dot is not installed (apt-get install graphviz, or make setup)"
)

# Retries that only apologize and ask again stay in the state: no edge.
REPROMPT = StateSettings(
    on_no_input=Reaction(say=("Pardon?",)),
    on_no_match=Reaction(say=("Pardon?",)),
    on_max_retries=Reaction(goto="agent"),
)


def state(name: str, **fields: Any) -> State:
    settings = fields.pop("settings", StateSettings())
    say = fields.pop("say", ())
    return State(name, say, settings, **fields)


FLOW = Script(
    name='Flow "test"',
    language="en",
    start="menu",
    states={
        "menu": state(
            "menu",
            say=('Say "balance", or press 1.\nOr 0 for an agent.',),
            settings=REPROMPT,
            expect=(
                Intent("balance", ("balance",), ("1",), "account"),
                Intent("agent", ("agent",), ("0", "*"), "agent"),
                Intent("help", ("help",), (), "route"),
            ),
        ),
        "account": state(
            "account",
            say=(RecordedPrompt("audio", "ask.wav", "/tmp/ask.wav"), "Your account number?"),
            settings=StateSettings(
                on_no_input=Reaction(goto="agent"),
                on_no_match=Reaction(goto="agent"),
                on_max_retries=Reaction(hangup=True),
            ),
            collect=Collect(slot="account", type="digits", goto="lookup"),
        ),
        "lookup": state(
            "lookup",
            webhook=Webhook(
                url="https://bank.example/{account}", goto="route", on_error=Reaction(goto="agent")
            ),
        ),
        "route": state(
            "route",
            branch=(
                BranchArm('x == "1"', "done"),
                BranchArm("balance.amount > 1000 and caller_id in vip.numbers", "agent"),
                BranchArm(None, "report"),
            ),
        ),
        "report": state("report", say=("One moment.",), goto="audit"),
        "audit": state(
            "audit",
            webhook=Webhook(url="https://audit.example/", goto="done"),  # on_error: hang up
        ),
        "done": state("done", say=("Goodbye.",), hangup=True),
        "agent": state(
            "agent",
            transfer=Transfer(
                context="agents",
                extension="100",
                priority=1,
                variables=(("ACCOUNT", "{account}"), ("INTENT", "balance")),
            ),
        ),
    },
)


def edges(dot: str) -> list[tuple[str, str, str]]:
    """(source, target, attributes) of every edge line of ``dot``."""
    found = re.findall(r'^  "([^"]+)" -> "([^"]+)"(?: \[(.*)\])?;$', dot, re.MULTILINE)
    return [(source, target, attributes) for source, target, attributes in found]


def edge(dot: str, source: str, label: str) -> tuple[str, str]:
    """The target and attributes of the one edge from ``source`` labelled ``label``."""
    [(target, attributes)] = [
        (t, a) for s, t, a in edges(dot) if s == source and f"label={dot_string(label)}" in a
    ]
    return target, attributes


def test_every_state_is_a_node_with_its_name_and_first_words() -> None:
    dot = script_dot(FLOW)
    assert dot.startswith('digraph "Flow \\"test\\"" {')
    for name in FLOW.states:
        assert re.search(rf'^  "{name}" \[label="{name}[\\"]', dot, re.MULTILINE), name
    # The first line only, quotes escaped; a recorded prompt by its label.
    assert '"menu" [label="menu\\nSay \\"balance\\", or press 1.…", penwidth=2.5];' in dot
    assert '"account" [label="account\\n[audio ask.wav]"];' in dot
    assert '"lookup" [label="lookup"];' in dot  # says nothing


def test_the_start_is_bold_and_entered_from_a_point() -> None:
    dot = script_dot(FLOW)
    assert f'"{ENTRY_NODE}" [shape=point' in dot
    assert (ENTRY_NODE, "menu", "penwidth=2.5") in edges(dot)
    assert sum("penwidth=2.5" in line for line in dot.splitlines()) == 2  # the node, the arrow


@pytest.mark.parametrize(
    ("source", "label", "target"),
    [
        ("menu", "balance / 1", "account"),
        ("menu", "agent / 0 *", "agent"),
        ("menu", "help", "route"),  # no keys
        ("account", "slot account", "lookup"),
        ("lookup", "webhook ok", "route"),
        ("route", 'if x == "1"', "done"),
        ("route", "if balance.amount > 1000 and caller_id in…", "agent"),
        ("route", "else", "report"),
        ("report", "goto", "audit"),
        ("audit", "webhook ok", "done"),
    ],
)
def test_steps_are_solid_labelled_edges(source: str, label: str, target: str) -> None:
    assert edge(script_dot(FLOW), source, label) == (target, f"label={dot_string(label)}")


def test_a_webhook_error_is_dashed_red_to_its_goto_or_the_hang_up() -> None:
    dot = script_dot(FLOW)
    style = "style=dashed, color=red, fontcolor=red"
    assert edge(dot, "lookup", "webhook error") == ("agent", f'label="webhook error", {style}')
    assert edge(dot, "audit", "webhook error") == (HANGUP_NODE, f'label="webhook error", {style}')


def test_retry_reactions_that_leave_the_state_are_dotted() -> None:
    dot = script_dot(FLOW)
    # Both retries of account go to agent: one edge; too many retries hang up.
    assert edge(dot, "account", "no input, no match")[0] == "agent"
    assert edge(dot, "account", "max retries")[0] == HANGUP_NODE
    # menu's reprompts stay in menu; only too many retries leave it.
    assert [label for s, _, label in edges(dot) if s == "menu" and "dotted" in label] == [
        'label="max retries", style=dotted, color="#555555", fontcolor="#555555"'
    ]
    # States that do not listen have no retries.
    assert not [a for s, _, a in edges(dot) if s in ("lookup", "route", "done") and "dotted" in a]


def test_the_default_max_retries_hangs_up() -> None:
    # The built-in defaults: reprompt twice, then "Goodbye." and hang up.
    menu = state("menu", expect=(Intent("on", ("on",), (), "end"),))
    script = Script("s", "en", "menu", {"menu": menu, "end": state("end", hangup=True)})
    assert edge(script_dot(script), "menu", "max retries")[0] == HANGUP_NODE


def test_hang_ups_and_transfers_are_end_nodes() -> None:
    dot = script_dot(FLOW)
    assert dot.count(f'"{HANGUP_NODE}" [label="hang up", shape=octagon') == 1  # shared
    assert ("done", HANGUP_NODE, "") in edges(dot)
    [(target, _)] = [(t, a) for s, t, a in edges(dot) if s == "agent"]
    assert f'"{target}" [label="transfer\\nagents,100,1\\nset ACCOUNT, INTENT", shape=cds' in dot


@pytest.mark.parametrize(
    ("transfer", "text"),
    [
        (Transfer(context="agents", extension="100", priority=1), "agents,100,1"),
        (Transfer(context="agents", extension="s", label="queue"), "agents,s,queue"),
        (Transfer(endpoint="PJSIP/operator"), "endpoint PJSIP/operator"),
    ],
)
def test_transfer_targets_read_as_in_the_dialplan(transfer: Transfer, text: str) -> None:
    assert transfer_target(transfer) == text


@pytest.mark.parametrize(
    ("text", "short"),
    [
        ("Hello.", "Hello."),
        ("  Hello,\t  world.  ", "Hello, world."),
        ("First line.\nSecond line.", "First line.…"),
        ("x" * 40, "x" * 40),
        ("x" * 41, "x" * 39 + "…"),
        ("", ""),
    ],
)
def test_shorten(text: str, short: str) -> None:
    assert shorten(text) == short


@pytest.mark.parametrize(
    ("text", "quoted"),
    [
        ("plain", '"plain"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("back\\slash", '"back\\\\slash"'),
        ("two\nlines", '"two\\nlines"'),
        ("tab\there\x00", '"tab here "'),
    ],
)
def test_dot_strings_are_escaped(text: str, quoted: str) -> None:
    assert dot_string(text) == quoted


def test_a_parsed_script_names_every_state_and_label(tmp_path: Path) -> None:
    script = load_script(write(tmp_path, BANK))
    dot = script_dot(script)
    for name in script.states:
        assert f'"{name}" [label=' in dot
    labels = {re.sub(r'^label="([^"]*)".*', r"\1", a) for _, _, a in edges(dot) if a}
    assert labels == {
        "balance / 1",
        "operator / 0",
        "slot account",
        "yes / 1",
        "no / 2",
        "max retries",
        "penwidth=2.5",  # the entry arrow
    }


# -- Graphviz ---------------------------------------------------------------------------------


def svg_texts(svg: bytes) -> set[str]:
    root = ET.fromstring(svg)  # well-formed XML, or this raises
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    return {el.text or "" for el in root.iter("{http://www.w3.org/2000/svg}text")}


@NEEDS_DOT
@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_shipped_script_draws_every_state(path: Path) -> None:
    script = load_script(path)
    texts = svg_texts(render_svg(script_dot(script)))
    assert set(script.states) <= texts


def test_shipped_scripts_are_there() -> None:
    assert {p.stem for p in SHIPPED} >= {"bank", "clinic", "delivery", "demo"}


def test_a_missing_dot_program_names_the_package() -> None:
    with pytest.raises(GraphvizMissing, match=r"apt-get install graphviz \(or make setup\)"):
        render_svg("digraph {}", program="no-such-graphviz-dot")


@NEEDS_DOT
def test_a_failing_dot_is_an_error_with_its_message() -> None:
    with pytest.raises(GraphError, match=r"'dot' failed \(exit 1\): .*syntax error"):
        render_svg("digraph { -> }")


def test_a_dot_that_hangs_is_stopped(tmp_path: Path) -> None:
    hanging = tmp_path / "dot"
    hanging.write_text(f"#!{sys.executable}\nimport time\ntime.sleep(30)\n")
    hanging.chmod(0o755)
    with pytest.raises(GraphError, match=r"took longer than 0\.2 s"):
        render_svg("digraph {}", program=str(hanging), timeout_s=0.2)


# -- the command ------------------------------------------------------------------------------


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A config whose scripts directory holds bank.yaml; no VOICEBOT_* of whoever runs this."""
    for name in list(os.environ):
        if name.startswith("VOICEBOT_"):
            monkeypatch.delenv(name)
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "bank.yaml").write_text(BANK)
    path = tmp_path / "voicebot.toml"
    path.write_text(f'[dialog]\nscripts_dir = "{scripts}"\n')
    return path


def test_the_command_prints_dot_for_a_script_by_name(
    config: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    assert main(["--config", str(config), "graph", "bank", "--format", "dot"]) == EXIT_OK
    out = capsysbinary.readouterr().out.decode()
    assert out.startswith('digraph "Demo Bank" {') and '"confirm" -> "report"' in out


def test_an_unknown_name_or_file_is_invalid(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(config), "graph", "bakn"]) == EXIT_INVALID
    assert "no script named 'bakn'" in capsys.readouterr().err
    assert main(["--config", str(config), "graph", str(tmp_path / "x.yaml")]) == EXIT_INVALID
    assert "script file not found" in capsys.readouterr().err


def test_an_invalid_script_prints_its_errors_as_check_does(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = write(tmp_path, BANK.replace("goto: report", "goto: reprot"))
    assert main(["--config", str(config), "graph", str(bad), "--format", "dot"]) == EXIT_INVALID
    graph_err = capsys.readouterr().err
    assert f"{bad}:" in graph_err and "unknown state 'reprot'" in graph_err
    assert main(["check", str(bad)]) == EXIT_INVALID
    assert capsys.readouterr().err == graph_err


def test_without_graphviz_the_command_says_what_to_install(
    config: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert (
        main(["--config", str(config), "graph", "bank", "-o", str(tmp_path / "b.svg")])
        == EXIT_INVALID
    )
    assert "apt-get install graphviz" in capsys.readouterr().err
    assert not (tmp_path / "b.svg").exists()
    # The DOT text needs no Graphviz.
    assert main(["--config", str(config), "graph", "bank", "--format", "dot"]) == EXIT_OK


@NEEDS_DOT
def test_the_command_writes_svg_to_a_file_or_stdout(
    config: Path, tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    out = tmp_path / "bank.svg"
    assert main(["--config", str(config), "graph", "bank", "-o", str(out)]) == EXIT_OK
    assert {"main", "account", "confirm", "report", "operator"} <= svg_texts(out.read_bytes())
    capsysbinary.readouterr()
    assert main(["--config", str(config), "graph", "bank", "-o", "-"]) == EXIT_OK
    assert capsysbinary.readouterr().out == out.read_bytes()
