"""scripts/install says what it installs and how long it took, and skips what is done."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import REPO

STAMP = REPO / ".venv" / ".spruce-installed"


def install(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REPO / "scripts" / "install"), *args],
        capture_output=True, text=True, timeout=600, cwd="/",
    )  # fmt: skip


@pytest.fixture
def stamp() -> Iterator[Path]:
    """The venv's record of what was installed, put back as it was."""
    before = STAMP.read_text() if STAMP.exists() else None
    yield STAMP
    if before is None:
        STAMP.unlink(missing_ok=True)
    else:
        STAMP.write_text(before)


@pytest.mark.slow
def test_install_shows_each_step_and_the_total_time(stamp: Path) -> None:
    res = install("--force")
    assert res.returncode == 0, res.stdout + res.stderr
    out = res.stdout
    assert re.search(r"^==> System packages: (all present|installing) ", out, re.M), out
    assert "==> Python packages: installing spruce and its dependencies into .venv (pip)" in out
    # pip's own lines, not hidden by -q
    assert re.search(r"^(Requirement already satisfied|Collecting|Obtaining) ", out, re.M), out
    assert "Successfully installed" in out
    assert re.search(r"^==> Spruce installed in \d+ s: \.venv/bin/spruce$", out, re.M), out
    # Up to date now: the next run (scripts/up runs it each time) skips pip.
    again = install()
    assert again.returncode == 0, again.stderr
    assert "==> Python packages: up to date in .venv" in again.stdout
    assert "Successfully installed" not in again.stdout
    # A plain install does not stand for a test install.
    assert stamp.read_text().endswith(" base\n")
    assert install("--bogus").returncode == 2
