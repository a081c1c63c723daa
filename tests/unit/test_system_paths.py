"""No code, script or test depends on a system file that the repo's own scripts don't install."""

from __future__ import annotations

from pathlib import Path

from tests.support.system_paths import (
    REPO,
    listed_packages,
    named_paths,
    problems,
    scanned_files,
)


def test_every_system_path_comes_from_an_installed_package() -> None:
    found = list(named_paths(scanned_files()))
    assert any(n.path.startswith("/usr/share/asterisk/sounds/") for n in found), (
        "the scan should see voicebot/tools/sounds.py's path"
    )
    assert problems(found, listed_packages()) == []


def test_a_path_no_package_provides_is_reported(tmp_path: Path) -> None:
    added = tmp_path / "new_test.py"
    added.write_text('SOUNDS = Path("/usr/share/asterisk/sounds/en")\n')
    report = problems(named_paths([added], root=tmp_path), listed_packages())
    assert report == ["new_test.py:1: /usr/share/asterisk/sounds/en: no Debian package provides it"]


def test_a_path_of_a_package_the_scripts_do_not_install_is_reported(tmp_path: Path) -> None:
    # git is on this machine, but nothing in install-system-deps.sh installs it.
    added = tmp_path / "tool.sh"
    added.write_text("exec /usr/bin/git status\n")
    assert problems(named_paths([added], root=tmp_path), listed_packages()) == [
        "tool.sh:1: /usr/bin/git: provided by git, which install-system-deps.sh does not install"
    ]


def test_paths_of_listed_and_essential_packages_pass(tmp_path: Path) -> None:
    added = tmp_path / "ok.sh"
    added.write_text("#!/bin/bash\nls /usr/share/asterisk/sounds/en_US_f_Allison /usr/bin/sipp\n")
    assert problems(named_paths([added], root=tmp_path), listed_packages()) == []


def test_the_scan_covers_the_repo() -> None:
    scanned = {p.relative_to(REPO).as_posix() for p in scanned_files()}
    assert {"Makefile", "voicebot/tools/sounds.py", "scripts/asterisk-sandbox.sh"} <= scanned
    assert not any(p.startswith("tests/fixtures/") for p in scanned)
