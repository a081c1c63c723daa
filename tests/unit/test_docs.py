"""The documentation holds together: every relative link in README.md and docs/*.md resolves.

A link is `[text](path)` or `[text](path#anchor)`; the path is relative to the linking file, and
an anchor must name a heading of the target Markdown file (GitHub's slugs). External links
(http, https, mailto) are not followed. Links inside code (fenced blocks, `spans`) are not
links. README.md also stays short: the rest belongs in docs/.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
README_MAX_BYTES = 15 * 1024

FENCE = re.compile(r"^(```|~~~)")
INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1", re.DOTALL)
# [text](target) or [text](target "title"); the text may span lines but holds no brackets.
LINK = re.compile(r"\[[^\[\]]*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
EXTERNAL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")  # http:, https:, mailto:, ...


def blank_code(text: str) -> str:
    """The text with fenced blocks and inline code spans blanked (line numbers kept)."""
    joined = "\n".join(blank_fences(text))
    return INLINE_CODE.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), joined)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lowercase, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a Markdown file, numbered like GitHub's when repeated."""
    seen: dict[str, int] = {}
    result: set[str] = set()
    for line in blank_fences(path.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        result.add(base if count == 0 else f"{base}-{count}")
    return result


def blank_fences(text: str) -> list[str]:
    """The lines of the text, with fenced code blocks blanked (a `# comment` is no heading)."""
    lines: list[str] = []
    fence: str | None = None
    for line in text.split("\n"):
        stripped = line.lstrip()
        match = FENCE.match(stripped)
        if fence is None and match:
            fence = match.group(1)
            lines.append("")
        elif fence is not None:
            if stripped.startswith(fence):
                fence = None
            lines.append("")
        else:
            lines.append(line)
    return lines


def links(path: Path) -> list[tuple[int, str]]:
    """(line number, target) of every link in a Markdown file, outside code."""
    text = blank_code(path.read_text(encoding="utf-8"))
    found: list[tuple[int, str]] = []
    for match in LINK.finditer(text):
        line = text.count("\n", 0, match.start(1)) + 1
        found.append((line, match.group(1)))
    return found


def broken(path: Path, target: str) -> str | None:
    """Why a link from `path` does not resolve, or None when it does."""
    if not target:
        return "empty link"
    if EXTERNAL.match(target):
        return None
    file_part, _, anchor = target.partition("#")
    dest = path if not file_part else (path.parent / unquote(file_part)).resolve()
    if not dest.exists():
        return f"no such file: {dest.relative_to(ROOT) if dest.is_relative_to(ROOT) else dest}"
    if anchor and dest.suffix == ".md":
        if dest.is_dir() or unquote(anchor).lower() not in anchors(dest):
            return f"no heading for #{anchor} in {dest.name}"
    return None


MARKDOWN = [README, *DOCS]


@pytest.mark.parametrize("path", MARKDOWN, ids=[str(p.relative_to(ROOT)) for p in MARKDOWN])
def test_links_resolve(path: Path) -> None:
    problems = [
        f"{path.relative_to(ROOT)}:{line}: ({target}): {why}"
        for line, target in links(path)
        if (why := broken(path, target)) is not None
    ]
    assert not problems, "broken links:\n" + "\n".join(problems)


def test_readme_is_short() -> None:
    size = len(README.read_bytes())
    assert size <= README_MAX_BYTES, (
        f"README.md is {size} bytes, more than {README_MAX_BYTES}: move detail into docs/"
    )


def test_docs_exist() -> None:
    assert DOCS, "docs/*.md not found"


@pytest.mark.parametrize(
    ("heading", "expected"),
    [
        ("Trying a script: `voicebot chat`", "trying-a-script-voicebot-chat"),
        ("`end_of_turn`: when the caller has finished", "end_of_turn-when-the-caller-has-finished"),
        ("Logs: callers' secrets stay out", "logs-callers-secrets-stay-out"),
        (
            "Measured: one worker, three workers, one killed",
            "measured-one-worker-three-workers-one-killed",
        ),
    ],
)
def test_slug_is_githubs(heading: str, expected: str) -> None:
    assert slug(heading) == expected


def test_links_found_across_lines_and_not_in_code(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# Title\n\nsee [a link\nover two lines](other.md#part) and `[not](code.md)`\n\n"
        "```\n[nor](this.md)\n```\n",
        encoding="utf-8",
    )
    assert links(page) == [(4, "other.md#part")]
    assert broken(page, "other.md") is not None
    assert broken(page, "#title") is None
    assert broken(page, "#nothing") is not None
