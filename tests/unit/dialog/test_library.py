"""The scripts of a directory, by name, and the default one."""

from __future__ import annotations

from pathlib import Path

import pytest

from voicebot.config import DialogConfig
from voicebot.dialog.library import ScriptLibrary, script_file, script_settings
from voicebot.errors import ScriptError

ROOT = Path(__file__).resolve().parents[3]


def test_library_picks_named_script_and_rejects_unknown_names() -> None:
    library = ScriptLibrary(ROOT / "prompts", "demo")
    assert library.get(None).name == "Voicebot demo"
    assert library.get("demo") is library.get(None)
    with pytest.raises(ScriptError, match="no script named 'nope'"):
        library.get("nope")


def test_dialog_no_input_timeout_is_every_script_s_default_unless_it_sets_its_own(
    tmp_path: Path,
) -> None:
    (tmp_path / "plain.yaml").write_text("start: a\nstates:\n  a:\n    hangup: true\n")
    (tmp_path / "own.yaml").write_text(
        "start: a\ndefaults:\n  no_input_timeout: 3s\nstates:\n  a:\n    hangup: true\n"
    )
    (tmp_path / "state.yaml").write_text(
        "start: a\nstates:\n  a:\n    no_input_timeout: 2s\n    hangup: true\n"
    )
    library = ScriptLibrary(tmp_path, "plain", script_settings(DialogConfig(no_input_timeout_s=8)))
    timeouts = {
        name: script.states["a"].settings.no_input_timeout_s
        for name, script in library.scripts.items()
    }
    assert timeouts == {"plain": 8.0, "own": 3.0, "state": 2.0}
    assert ScriptLibrary(tmp_path, "plain").get(None).states["a"].settings.no_input_timeout_s == 5


def test_scripts_in_a_language_subdirectory_are_named_by_it(tmp_path: Path) -> None:
    hangup = "start: a\nstates:\n  a:\n    hangup: true\n"
    (tmp_path / "demo.yaml").write_text(hangup)
    (tmp_path / "ru").mkdir()
    (tmp_path / "ru" / "demo.yaml").write_text("language: ru\n" + hangup)
    library = ScriptLibrary(tmp_path, "demo")
    assert sorted(library.scripts) == ["demo", "ru/demo"]
    assert library.get("ru/demo").language == "ru"
    assert script_file("ru/demo", tmp_path) == tmp_path / "ru" / "demo.yaml"
    with pytest.raises(ScriptError, match=r"no script named '\.\./demo' in .*/ru \(have: demo\)"):
        script_file("../demo", tmp_path / "ru")


def test_the_shipped_russian_scripts_load() -> None:
    library = ScriptLibrary(ROOT / "prompts", "demo")
    assert library.get("ru/demo").language == "ru"
    assert library.get("ru/bank").language == "ru"
    assert set(library.get("ru/demo").states) == set(library.get("demo").states)
