"""Loading script YAML from files someone else wrote: bounded in size, nesting and alias
expansion, every refusal a ``ScriptError`` with ``file:line``."""

from __future__ import annotations

import itertools
import os
import threading
import time
import tracemalloc
from pathlib import Path

import pytest

from voicebot.dialog.parser import load_script
from voicebot.dialog.yamlpos import (
    MAX_ALIAS_VALUES,
    MAX_DEPTH,
    MAX_SCRIPT_BYTES,
    load_located,
    load_located_file,
)
from voicebot.errors import ScriptError

ROOT = Path(__file__).resolve().parents[3]


def billion_laughs(levels: int = 9) -> str:
    """The classic: each anchor is nine aliases of the previous one, 9**levels values."""
    names = "abcdefghij"
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for previous, name in itertools.pairwise(names[:levels]):
        lines.append(f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]")
    return "\n".join(lines) + "\n"


def test_a_billion_laughs_is_refused_quickly_and_names_the_alias() -> None:
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(ScriptError) as info:
            load_located(billion_laughs(), "bomb.yaml")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - started < 5.0
    assert peak < 50 * 2**20  # the expanded document would be gigabytes
    error = info.value
    assert (error.file, error.line) == ("bomb.yaml", 5)  # e: &e [*d, ...], the first to overflow
    assert f"alias *d makes the document expand past {MAX_ALIAS_VALUES} values" in str(error)
    assert str(error).startswith("bomb.yaml:5: e.")


def test_a_billion_laughs_in_a_script_file_is_a_script_error(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(billion_laughs())
    with pytest.raises(ScriptError, match=r"bomb\.yaml:5: .*alias \*d"):
        load_script(path)


def test_ordinary_anchors_and_aliases_still_load() -> None:
    text = (
        "shared: &yes_words [yes, sure, right]\n"  # line 1
        "states:\n"
        "  ask:\n"
        "    phrases: *yes_words\n"  # line 4
        "  confirm:\n"
        "    phrases: *yes_words\n"
        "    greeting: &hello Hello\n"
        "    again: [*hello]\n"  # line 8
    )
    doc = load_located(text, "ok.yaml")
    assert doc.data["states"]["ask"]["phrases"] == ["yes", "sure", "right"]
    assert doc.data["states"]["confirm"]["phrases"] == ["yes", "sure", "right"]
    assert doc.data["states"]["confirm"]["again"] == ["Hello"]
    # The expanded copies are separate lists: changing one does not change the others.
    assert doc.data["states"]["ask"]["phrases"] is not doc.data["shared"]
    # An aliased value is located where the alias stands; what is inside it, at its anchor.
    assert doc.line_of(("states", "confirm", "again", "0")) == 8
    assert doc.line_of(("states", "ask", "phrases", "0")) == 1


def test_aliases_up_to_the_bound_still_load() -> None:
    # One anchor of 100 values used 99 times: 9,900 values expanded, just under the bound.
    block = "[" + ", ".join(["w"] * 100) + "]"
    text = f"a: &a {block}\n" + "".join(f"k{i}: *a\n" for i in range(MAX_ALIAS_VALUES // 101))
    doc = load_located(text, "many.yaml")
    assert len(doc.data) == 1 + MAX_ALIAS_VALUES // 101


@pytest.mark.parametrize("text", ["a: &a [1, *a]\n", "a: &a\n  b: 1\n  c: *a\n"])
def test_an_alias_inside_its_own_anchor_is_refused(text: str) -> None:
    with pytest.raises(ScriptError, match=r"^loop\.yaml:\d: a\.\w+: alias \*a refers to a value"):
        load_located(text, "loop.yaml")


def test_deep_nesting_is_refused_before_python_recursion_gives_out() -> None:
    text = "x: " + "[" * 5000 + "]" * 5000 + "\n"
    with pytest.raises(ScriptError, match=rf"^deep\.yaml:1: nested more than {MAX_DEPTH} levels"):
        load_located(text, "deep.yaml")


def test_alias_chains_cannot_nest_deeper_than_the_file() -> None:
    # Each anchor wraps the previous one: 40 lines, 40 x 4 levels once expanded.
    lines = ["a0: &a0 [[[[x]]]]"] + [f"a{i}: &a{i} [[[[*a{i - 1}]]]]" for i in range(1, 40)]
    with pytest.raises(ScriptError, match=f"nested more than {MAX_DEPTH} levels"):
        load_located("\n".join(lines) + "\n", "chain.yaml")


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("base: &b {x: 1}\nc:\n  <<: *b\n", 3, "merge keys ('<<') are not supported"),
        ("a: 1\nb: !!python/object:os.system ls\n", 2, "could not determine a constructor"),
        ("a: 1\nb: x\x00y\n", 2, "character #x0000"),
        ("a: *nowhere\n", 1, "found undefined alias 'nowhere'"),
        ("a: 1\na: 2\n", 2, "duplicate key"),
    ],
)
def test_hostile_yaml_is_a_script_error_with_its_line(text: str, line: int, problem: str) -> None:
    with pytest.raises(ScriptError) as info:
        load_located(text, "bad.yaml")
    assert (info.value.file, info.value.line) == ("bad.yaml", line)
    assert problem in str(info.value)


def test_an_oversized_file_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("wb") as stream:  # sparse: the size is there, the bytes are not
        stream.truncate(MAX_SCRIPT_BYTES + 1)
    with pytest.raises(ScriptError) as info:
        load_located_file(path)
    assert str(info.value) == (
        f"{path}:0: script is {MAX_SCRIPT_BYTES + 1} bytes, "
        f"larger than the {MAX_SCRIPT_BYTES}-byte limit"
    )


def test_a_file_at_the_limit_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    head = "name: big\n"
    path.write_text(head + "#" * (MAX_SCRIPT_BYTES - len(head) - 1) + "\n")
    assert path.stat().st_size == MAX_SCRIPT_BYTES
    assert load_located_file(path).data == {"name": "big"}


def test_a_file_whose_size_lies_is_cut_off_at_the_limit(tmp_path: Path) -> None:
    # A FIFO reports size 0: the read stops one byte past the limit instead of trusting stat.
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)

    def write() -> None:
        try:
            with fifo.open("wb") as stream:
                stream.write(b"#" * (2 * MAX_SCRIPT_BYTES))
        except BrokenPipeError:  # the reader stopped early, as it should
            pass

    writer = threading.Thread(target=write)
    writer.start()
    try:
        with pytest.raises(ScriptError, match=f"more than {MAX_SCRIPT_BYTES} bytes"):
            load_located_file(fifo)
    finally:
        writer.join(5)


def test_text_that_is_not_utf8_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: x\nprompt: caf\u00e9\n".encode("latin-1"))
    with pytest.raises(ScriptError, match=r"latin1\.yaml:2: cannot read script: not UTF-8"):
        load_located_file(path)


def test_every_shipped_script_is_within_the_bounds() -> None:
    for path in sorted((ROOT / "prompts").glob("*.yaml")):
        assert path.stat().st_size < MAX_SCRIPT_BYTES // 4, path
        load_script(path)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("2024-13-45", "invalid value '2024-13-45': month must be in 1..12 (quote it for text)"),
        ("2024-02-30", "invalid value '2024-02-30': day is out of range for month"),
        ("0x_", "invalid value '0x_': invalid literal for int() with base 16"),
        ("9" * 5000, "invalid value '99999999999999999999… (5000 characters)': Exceeds the limit"),
    ],
)
def test_a_value_python_cannot_build_is_a_file_line_error(value: str, problem: str) -> None:
    with pytest.raises(ScriptError) as error:
        load_located(f"start: a\nstates:\n  a:\n    say: {value}\n", "s.yaml")
    assert str(error.value).startswith(f"s.yaml:4: states.a.say: {problem}")
    assert len(str(error.value)) < 300
