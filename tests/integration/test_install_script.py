"""scripts/install says what it installs and how long it took, and skips what is done.

It runs in a checkout of its own (the script, pyproject.toml, src/ linked) whose .venv sees
the real venv's packages, so pip only installs spruce itself, and the shared .venv is left
alone while other tests run from it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest
from support import REPO


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    root = tmp_path / "spruce"
    (root / "scripts").mkdir(parents=True)
    shutil.copy2(REPO / "scripts" / "install", root / "scripts" / "install")
    shutil.copy2(REPO / "pyproject.toml", root / "pyproject.toml")
    (root / "src").symlink_to(REPO / "src")
    # No pip of its own: the shared venv's (and every other package) comes through the .pth.
    venv = [str(REPO / ".venv" / "bin" / "python"), "-m", "venv", "--without-pip"]
    subprocess.run([*venv, str(root / ".venv")], check=True, timeout=120)
    purelib = Path(sysconfig.get_paths()["purelib"])  # this (the shared) venv's packages
    venv_lib = next((root / ".venv" / "lib").glob("python3*/site-packages"))
    (venv_lib / "shared-venv.pth").write_text(f"{purelib}\n")
    return root


def install(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(root / "scripts" / "install"), *args],
        capture_output=True, text=True, timeout=600, cwd="/",
    )  # fmt: skip


@pytest.mark.slow
def test_install_shows_each_step_and_the_total_time(checkout: Path) -> None:
    res = install(checkout)
    assert res.returncode == 0, res.stdout + res.stderr
    out = res.stdout
    assert re.search(r"^==> System packages: (all present|installing) ", out, re.M), out
    assert "==> Python packages: installing spruce and its dependencies into .venv (pip)" in out
    # pip's own lines, which -q would hide
    assert re.search(r"^Obtaining file://", out, re.M), out
    assert re.search(r"^Requirement already satisfied: ", out, re.M), out
    assert "Successfully installed spruce-" in out
    assert re.search(r"^==> Spruce installed in \d+ s: \.venv/bin/spruce$", out, re.M), out
    assert (checkout / ".venv" / "bin" / "spruce").exists()
    # Up to date now: the next run (scripts/up runs it each time) skips pip.
    again = install(checkout)
    assert again.returncode == 0, again.stderr
    assert "==> Python packages: up to date in .venv" in again.stdout
    assert "Successfully installed" not in again.stdout
    # ...until pyproject.toml changes (or --force); a plain install is not a test install.
    assert (checkout / ".venv" / ".spruce-installed").read_text().endswith(" base\n")
    assert install(checkout, "--bogus").returncode == 2
