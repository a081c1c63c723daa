"""The scripts of a directory by name (``NAME.yaml`` is the script ``NAME``, ``ru/NAME.yaml``
the script ``ru/NAME``), all loaded and validated up front, and the default one for calls that
name none."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..config import DialogConfig
from ..errors import ScriptError
from .model import Script, StateSettings
from .parser import load_script
from .recorded import DEFAULT_SOUND_DIRS


def script_settings(config: DialogConfig) -> StateSettings:
    """What every script's ``defaults`` start from: the config's ``dialog.*`` (its
    ``no_input_timeout_s``)."""
    return StateSettings(no_input_timeout_s=config.no_input_timeout_s)


def script_file(name_or_path: str, scripts_dir: Path) -> Path:
    """A script file by its path, or by its name in ``scripts_dir`` (``NAME.yaml``)."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        if not path.is_file():
            raise ScriptError(f"script file not found: {path}")
        return path
    candidate = scripts_dir / f"{name_or_path}.yaml"
    if ".." in Path(name_or_path).parts or not candidate.is_file():
        have = ", ".join(sorted(script_files(scripts_dir))) or "none"
        raise ScriptError(f"no script named '{name_or_path}' in {scripts_dir} (have: {have})")
    return candidate


def script_files(directory: Path) -> dict[str, Path]:
    """Every script under ``directory`` by name: ``demo.yaml`` is ``demo``, ``ru/demo.yaml``
    (one level of subdirectory, a language's scripts) is ``ru/demo``."""
    found = {path.stem: path for path in directory.glob("*.yaml")}
    for path in directory.glob("*/*.yaml"):
        found[f"{path.parent.name}/{path.stem}"] = path
    return dict(sorted(found.items()))


def sound_dirs(config: DialogConfig) -> tuple[Path, ...]:
    """Where ``{sound: NAME}`` prompts are looked for: ``dialog.sound_dirs``, or Asterisk's
    usual English sound directories."""
    given = tuple(Path(part.strip()) for part in config.sound_dirs.split(",") if part.strip())
    return given or DEFAULT_SOUND_DIRS


class ScriptLibrary:
    """Scripts of a directory, by name (``NAME.yaml``), all validated up front. ``base``: the
    settings their ``defaults`` start from (``script_settings`` of the config)."""

    def __init__(
        self,
        directory: Path,
        default: str,
        base: StateSettings | None = None,
        sounds: Sequence[Path] = DEFAULT_SOUND_DIRS,
    ) -> None:
        self.directory = directory
        self.default = default
        if not directory.is_dir():
            raise ScriptError(f"scripts directory not found: {directory}")
        self.scripts: dict[str, Script] = {}
        for name, path in script_files(directory).items():
            self.scripts[name] = load_script(path, base, sounds)
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
