"""Imports point one way, checked package by package (docs/architecture.md has the same table).

Each package of ``voicebot`` may import its own modules, the kernel and the packages its row
of ``ALLOWED`` names; anything else fails the test, naming the file, the line and the import.
Function-level imports count too: a late import across the layers is still a cycle in the
design.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "voicebot"

KERNEL = frozenset({"errors", "config", "logtext"})
BELOW_CALL = KERNEL | {"media", "capture", "dialog", "speech"}
# Package (or kernel module) -> what else it may import: packages, or single modules such as
# "dialog.match" (speech's one declared exception).
ALLOWED: dict[str, frozenset[str]] = {
    "errors": frozenset(),
    "logtext": frozenset(),
    "config": frozenset({"errors"}),
    "media": KERNEL,
    "capture": KERNEL | {"media"},
    "dialog": KERNEL,
    "speech": KERNEL | {"media", "dialog.match"},
    "ari": KERNEL,
    "call": BELOW_CALL,
    "runtime": BELOW_CALL | {"call"},
    "outbound": BELOW_CALL | {"ari", "call"},
    "server": BELOW_CALL | {"ari", "call", "runtime", "outbound"},
    "tools": BELOW_CALL | {"ari", "call", "runtime", "outbound"},
    "models": KERNEL | {"speech", "dialog"},
    "cli": BELOW_CALL | {"ari", "call", "runtime", "outbound", "server", "tools", "models"},
}

# The decisions of a call, made without waiting, sleeping or opening anything.
PURE_FORBIDDEN = {"asyncio", "socket", "time", "aiohttp", "threading", "subprocess"}
PURE_CORES = [
    "call.turns",
    "call.voices",
    "ari.logins",
    "dialog.engine",
    "media.rtp",
    "media.jitter",
    "capture.impair",
    "call.amd",
    "outbound.campaigns",
    "outbound.contacts",
]

ROOT_MODULES_MAX = 6  # __init__ and the kernel: errors, config, logtext, runtime, cli
MODULE_LINES_MAX = 600
LONGER_BY_DESIGN = {"call/turns.py"}  # one pure object, the turn core


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = list(path.relative_to(package).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, package: Path = PACKAGE) -> list[tuple[int, str]]:
    """(line, module) for every module ``path`` imports; "from . import x" names x too."""
    here = module_name(path, package).split(".")
    if path.name != "__init__.py":
        here = here[:-1]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - node.level + 1]
                target = ".".join(["voicebot", *base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            found.append((node.lineno, target))
            found += [(node.lineno, f"{target}.{alias.name}") for alias in node.names]
    return found


def is_module(dotted: str, package: Path = PACKAGE) -> bool:
    relative = Path(*dotted.split(".")[1:])
    return (package / relative).with_suffix(".py").is_file() or (package / relative).is_dir()


def may_import(own: str, other: str) -> bool:
    """Whether module ``own`` may import module ``other`` (both without "voicebot.")."""
    own_unit, other_unit = own.split(".")[0], other.split(".")[0]
    if own_unit == other_unit:
        return True
    if own_unit not in ALLOWED:
        raise AssertionError(f"voicebot.{own_unit} has no row in test_layers.ALLOWED: add it")
    return any(other == a or other.startswith(a + ".") for a in ALLOWED[own_unit])


def violations(path: Path, package: Path = PACKAGE) -> list[str]:
    own = module_name(path, package)
    if not own:
        return []
    wrong = []
    for line, target in imports_of(path, package):
        if not target.startswith("voicebot.") or not is_module(target, package):
            continue
        other = target.removeprefix("voicebot.")
        if not may_import(own, other):
            where = path.relative_to(package.parent)
            wrong.append(f"{where}:{line}: voicebot.{own} imports voicebot.{other}")
    return wrong


def modules(package: Path = PACKAGE) -> list[Path]:
    return sorted(package.rglob("*.py"))


@pytest.mark.parametrize("path", modules(), ids=lambda p: module_name(p) or "voicebot")
def test_imports_follow_the_package_table(path: Path) -> None:
    wrong = violations(path)
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("core", PURE_CORES)
def test_pure_cores_do_no_io(core: str) -> None:
    path = (PACKAGE / Path(*core.split("."))).with_suffix(".py")
    used = {target.split(".")[0] for _, target in imports_of(path)}
    assert not used & PURE_FORBIDDEN, f"voicebot.{core} imports {sorted(used & PURE_FORBIDDEN)}"


def test_the_root_holds_only_the_kernel() -> None:
    root = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(root) <= ROOT_MODULES_MAX, root


def test_no_module_is_a_drawer() -> None:
    long = []
    for path in modules():
        where = path.relative_to(PACKAGE).as_posix()
        lines = len(path.read_text().splitlines())
        if lines > MODULE_LINES_MAX and where not in LONGER_BY_DESIGN:
            long.append(f"{where}: {lines} lines")
    assert not long, long


def test_the_controller_keeps_to_admission_and_the_registry() -> None:
    # Admission (the dialler's calls and their share included), the registry and handing each
    # ended call's record to the outbox and, for a campaign's call, to the dialler; the call's
    # own course lives in leg, the record in call.results, its delivery in server.results,
    # dialling and campaigns in outbound.
    assert len((PACKAGE / "server" / "controller.py").read_text().splitlines()) < 340


def test_a_sideways_import_is_named(tmp_path: Path) -> None:
    package = tmp_path / "voicebot"
    for name in ("media/__init__.py", "server/__init__.py", "server/app.py", "speech/__init__.py",
                 "dialog/__init__.py", "dialog/match.py", "dialog/engine.py"):  # fmt: skip
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text("")
    bad = package / "media" / "pacer.py"
    bad.write_text("import json\n\nfrom ..server import app\n")
    assert violations(bad, package) == [
        "voicebot/media/pacer.py:3: voicebot.media.pacer imports voicebot.server",
        "voicebot/media/pacer.py:3: voicebot.media.pacer imports voicebot.server.app",
    ]
    late = package / "speech" / "vad.py"
    late.write_text("def f() -> None:\n    from voicebot.dialog import match, engine\n")
    assert violations(late, package) == [
        "voicebot/speech/vad.py:2: voicebot.speech.vad imports voicebot.dialog",
        "voicebot/speech/vad.py:2: voicebot.speech.vad imports voicebot.dialog.engine",
    ]


def test_the_table_says_what_the_layout_means() -> None:
    assert may_import("speech.asr.whisper", "dialog.match")
    assert not may_import("speech.asr.whisper", "dialog.engine")
    assert not may_import("call.session", "ari.client")
    assert not may_import("call.session", "server.metrics")
    for one, other in [("server", "tools"), ("tools", "models"), ("models", "server")]:
        assert not may_import(f"{one}.x", f"{other}.y") and not may_import(f"{other}.y", f"{one}.x")
    assert not any(may_import(f"{unit}.x", "cli") for unit in ALLOWED if unit != "cli")


def test_no_test_module_imports_another() -> None:
    """What tests share lives in tests/support/, never in another test module."""
    tests = PACKAGE.parent / "tests"
    wrong = []
    for path in sorted(tests.rglob("test_*.py")):
        for line, target in imports_of(path, tests):
            if target.startswith("tests.") and target.split(".")[-1].startswith("test_"):
                wrong.append(f"{path.relative_to(tests.parent)}:{line}: imports {target}")
    assert not wrong, "\n".join(wrong)
