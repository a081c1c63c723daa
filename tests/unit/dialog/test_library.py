"""The scripts of a directory, by name, and the default one."""

from __future__ import annotations

from pathlib import Path

import pytest

from voicebot.dialog.library import ScriptLibrary
from voicebot.errors import ScriptError

ROOT = Path(__file__).resolve().parents[3]


def test_library_picks_named_script_and_rejects_unknown_names() -> None:
    library = ScriptLibrary(ROOT / "prompts", "demo")
    assert library.get(None).name == "Voicebot demo"
    assert library.get("demo") is library.get(None)
    with pytest.raises(ScriptError, match="no script named 'nope'"):
        library.get("nope")
