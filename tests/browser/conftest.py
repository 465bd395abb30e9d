"""A real platform, an app pushed with git, and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright
from support import REPO, RunningPlatform, start_platform

CHROMIUM = os.environ.get("SPRUCE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("SPRUCE_ARTIFACTS", REPO / ".artifacts")) / "browser"
# Dynos sampled every second and metrics kept in 5 s buckets, so graphs fill in a test's time.
TUNING = {
    "dynos": {"stop_grace": 3.0, "boot_timeout": 30.0, "metrics_interval": 1.0},
    "router": {"boot_wait": 20.0},
    "metrics": {"bucket_seconds": 5, "retention_seconds": 3600},
}


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    p = start_platform(
        tmp_path_factory.mktemp("browser-home"), extra_env={"SPRUCE_TUNING": json.dumps(TUNING)}
    )
    yield p
    p.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"no Chromium at {CHROMIUM}: scripts/install puts Debian's there")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Path:
    """Where a test saves its screenshots (kept as the run's artefacts)."""
    d = ARTIFACTS / request.node.name
    d.mkdir(parents=True, exist_ok=True)
    return d
