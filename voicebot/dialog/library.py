"""The scripts of a directory by name (``NAME.yaml`` is the script ``NAME``), all loaded and
validated up front, and the default one for calls that name none."""

from __future__ import annotations

from pathlib import Path

from ..config import DialogConfig
from ..errors import ScriptError
from .model import Script, StateSettings
from .parser import load_script


def script_settings(config: DialogConfig) -> StateSettings:
    """What every script's ``defaults`` start from: the config's ``dialog.*`` (its
    ``no_input_timeout_s``)."""
    return StateSettings(no_input_timeout_s=config.no_input_timeout_s)


class ScriptLibrary:
    """Scripts of a directory, by name (``NAME.yaml``), all validated up front. ``base``: the
    settings their ``defaults`` start from (``script_settings`` of the config)."""

    def __init__(self, directory: Path, default: str, base: StateSettings | None = None) -> None:
        self.directory = directory
        self.default = default
        if not directory.is_dir():
            raise ScriptError(f"scripts directory not found: {directory}")
        self.scripts: dict[str, Script] = {}
        for path in sorted(directory.glob("*.yaml")):
            self.scripts[path.stem] = load_script(path, base)
        if default not in self.scripts:
            raise ScriptError(
                f"default script '{default}' not found in {directory} "
                f"(have: {', '.join(sorted(self.scripts)) or 'none'})"
            )

    def get(self, name: str | None) -> Script:
        key = name or self.default
        try:
            return self.scripts[key]
        except KeyError:
            raise ScriptError(
                f"no script named '{key}' in {self.directory} "
                f"(have: {', '.join(sorted(self.scripts))})"
            ) from None
