"""Tests mirror the package: every voicebot module longer than ``MIN_LINES`` has its own test
file, ``tests/unit/<package>/test_<module>.py`` or ``test_<module>_<aspect>.py`` (a root
module's: ``tests/unit/test_<module>.py``). Package ``__init__.py`` files are exempt."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "voicebot"
UNIT = REPO / "tests" / "unit"
MIN_LINES = 50


def untested_modules(
    package: Path = PACKAGE, unit: Path = UNIT, min_lines: int = MIN_LINES
) -> list[str]:
    """A sentence for each module over ``min_lines`` lines without its mirrored test file."""
    missing: list[str] = []
    for module in sorted(package.rglob("*.py")):
        if module.name == "__init__.py":
            continue
        lines = len(module.read_text(encoding="utf-8").splitlines())
        if lines <= min_lines:
            continue
        relative = module.relative_to(package)
        tests = unit.joinpath(*relative.parts[:-1])
        stem = module.stem
        if (tests / f"test_{stem}.py").is_file() or any(tests.glob(f"test_{stem}_*.py")):
            continue
        where = (tests / f"test_{stem}.py").relative_to(unit.parent.parent).as_posix()
        missing.append(
            f"{package.name}/{relative.as_posix()} ({lines} lines) has no {where} "
            f"(or test_{stem}_<aspect>.py)"
        )
    return missing


def test_every_module_over_50_lines_has_its_test_file() -> None:
    missing = untested_modules()
    assert not missing, "tests do not mirror the package:\n  " + "\n  ".join(missing)


def write(path: Path, lines: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("x = 1\n" * lines)


def test_the_check_finds_a_module_without_tests_and_accepts_every_mirrored_form(
    tmp_path: Path,
) -> None:
    package, unit = tmp_path / "voicebot", tmp_path / "tests" / "unit"
    write(package / "__init__.py", 80)  # exempt, however long
    write(package / "kernel.py", 51)
    write(package / "untested.py", 51)
    write(package / "short.py", 50)  # not over the limit
    write(package / "media" / "rtp.py", 60)
    write(package / "media" / "jitter.py", 60)
    write(package / "speech" / "asr" / "base.py", 60)
    write(package / "speech" / "tts" / "base.py", 60)
    write(unit / "test_kernel.py", 1)
    write(unit / "media" / "test_rtp.py", 1)
    write(unit / "media" / "test_jitter_reorder.py", 1)  # an aspect of the module
    write(unit / "speech" / "asr" / "test_base.py", 1)
    write(unit / "speech" / "test_base.py", 1)  # not where tts/base.py's tests belong
    assert untested_modules(package, unit) == [
        "voicebot/speech/tts/base.py (60 lines) has no tests/unit/speech/tts/test_base.py "
        "(or test_base_<aspect>.py)",
        "voicebot/untested.py (51 lines) has no tests/unit/test_untested.py "
        "(or test_untested_<aspect>.py)",
    ]
