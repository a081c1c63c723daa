"""The scripts of a directory, by name, and the default one."""

from __future__ import annotations

from pathlib import Path

import pytest

from voicebot.config import DialogConfig
from voicebot.dialog.library import ScriptLibrary, script_settings
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
