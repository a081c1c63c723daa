"""Imports point one way: pure code <- I/O <- one call <- runtime <- apps <- cli.

Every module of the package is ranked; a module may import only from its own rank or lower.
Function-level imports count too: a late import up the layers is still a cycle in the design.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "voicebot"

PURE, IO, CALL, RUNTIME, APPS, CLI = range(6)

# Module (dotted, without "voicebot.") or package prefix -> rank. The longest prefix wins.
RANKS: dict[str, int] = {
    "errors": PURE,
    "config": PURE,
    "sounds": PURE,
    "logtext": PURE,
    "media": PURE,
    "media.endpoint": IO,
    "media.inbound": IO,
    "media.pacer": IO,
    "media.peer": IO,
    "dialog": PURE,
    "dialog.chat": APPS,
    "speech.vad": PURE,
    "speech.turn.features": PURE,
    "speech": IO,
    "capture": PURE,
    "capture.impair": PURE,
    "capture.pcap": PURE,
    "capture.timeline": PURE,
    "capture.record": IO,
    "ari": IO,
    "webhook": IO,
    "models": IO,
    "modelstore": IO,
    "metrics": IO,
    "call": CALL,
    "call.turns": PURE,
    "runtime": RUNTIME,
    "controller": APPS,
    "app": APPS,
    "status": APPS,
    "bench": APPS,
    "capture.replay": APPS,
    "callprobe": APPS,
    "sipcaller": APPS,
    "cli": CLI,
}

# The turn core decides; it must not be able to wait, sleep or open anything.
PURE_FORBIDDEN = {"asyncio", "socket", "time", "aiohttp", "threading", "subprocess"}
PURE_CORES = ["call.turns", "dialog.engine", "media.rtp", "media.jitter", "capture.impair"]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def rank_of(module: str) -> int:
    best = ""
    for prefix in RANKS:
        if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > len(best):
            best = prefix
    if not best:
        raise AssertionError(f"voicebot.{module} has no rank in test_layers.RANKS: add it")
    return RANKS[best]


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every voicebot module and every top-level name ``path`` imports."""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(["voicebot", *base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            found.append((node.lineno, target))
            # "from . import x" names modules too.
            found += [(node.lineno, f"{target}.{alias.name}") for alias in node.names]
    return found


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def is_module(dotted: str) -> bool:
    relative = Path(*dotted.split(".")[1:])
    return (PACKAGE / relative).with_suffix(".py").is_file() or (PACKAGE / relative).is_dir()


@pytest.mark.parametrize("path", modules(), ids=lambda p: module_name(p) or "voicebot")
def test_imports_point_down_the_layers(path: Path) -> None:
    own = module_name(path)
    if not own:
        return
    own_rank = rank_of(own)
    wrong = []
    for line, target in imports_of(path):
        if not target.startswith("voicebot.") or not is_module(target):
            continue
        other = target.removeprefix("voicebot.")
        if rank_of(other) > own_rank:
            wrong.append(f"{path.name}:{line}: voicebot.{own} imports voicebot.{other}, a layer up")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("core", PURE_CORES)
def test_pure_cores_do_no_io(core: str) -> None:
    path = (PACKAGE / Path(*core.split("."))).with_suffix(".py")
    used = {target.split(".")[0] for _, target in imports_of(path)}
    assert not used & PURE_FORBIDDEN, f"voicebot.{core} imports {sorted(used & PURE_FORBIDDEN)}"


def test_the_ranks_say_what_the_layout_means() -> None:
    assert rank_of("dialog.engine") == PURE < rank_of("ari.client") == IO
    assert rank_of("call.turns") == PURE and rank_of("call.session") == CALL
    assert rank_of("runtime") < rank_of("controller") == rank_of("capture.replay") < rank_of("cli")


def test_relative_imports_resolve_to_modules(tmp_path: Path) -> None:
    targets = {t for _, t in imports_of(PACKAGE / "capture" / "pcap.py")}
    assert "voicebot.media.rtp" in targets and is_module("voicebot.media.rtp")
