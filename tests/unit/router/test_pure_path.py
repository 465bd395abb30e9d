"""Where the router's modules are compiled, its pure-Python path is tested too: the unit tests
(the fuzz and hypothesis tests among them), the hostile-input battery and the fast lanes run
again in a child process with SPRUCE_ROUTER_PURE=1 (every router module from its .py file)."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from spruce.router import native

ROOT = Path(__file__).resolve().parents[3]
AGAIN = [
    "tests/unit/router",
    "tests/integration/router/test_hardening.py",
    "tests/integration/router/test_early_accept.py",
    "tests/integration/router/test_h2_refusals.py",
    "tests/integration/router/test_fast_lane.py",
    "tests/integration/router/test_fast_lane_edges.py",
    "tests/integration/router/test_h2_fast_lane.py",
]

for _name in native.COMPILED:
    importlib.import_module(_name)


@pytest.mark.slow
@pytest.mark.skipif(not native.compiled(), reason="the router runs pure Python here already")
def test_the_pure_path_passes_the_same_tests() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *AGAIN],
        cwd=ROOT,
        env=dict(os.environ, SPRUCE_ROUTER_PURE="1"),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and " failed" not in run.stdout


def test_pure_switch_reaches_worker_processes() -> None:
    """The choice is made from the environment, which worker processes inherit."""
    code = "import spruce.router.proto.fast, spruce.router.native as n; print(n.compiled())"
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=dict(os.environ, SPRUCE_ROUTER_PURE="1", PYTHONPATH=str(ROOT / "src")),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip() == "[]"
