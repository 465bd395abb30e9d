"""The router's modules stay within `mypy --strict` (pyproject's [tool.spruce] mypy_strict)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_router_modules_pass_mypy_strict() -> None:
    listed = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["spruce"]["mypy_strict"]
    paths = [p for p in listed if p.startswith("src/spruce/router")]
    assert "src/spruce/router" in paths  # (proto/ included: issue 12's list)
    run = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", *paths],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout + run.stderr
