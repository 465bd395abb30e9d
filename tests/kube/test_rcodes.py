"""Heroku's R codes on Kubernetes: R10 from the startup probe's deadline on $PORT."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import Dynos, fast_dyno_settings, make_slug, runtime, until

from spruce.dynos.model import DynoSettings

pytestmark = pytest.mark.slow


@pytest.fixture
def dyno_settings() -> DynoSettings:
    return fast_dyno_settings(boot_timeout=4.0)


async def test_r10_boot_timeout(dynos: Dynos, tmp_path: Path) -> None:
    b = dynos.backend
    app = runtime(make_slug(tmp_path), process_types={"web": "exec sleep 1000"})
    await b.converge(app)
    r10 = (
        "Error R10 (Boot timeout) -> Web process failed to bind to $PORT within 4 seconds of launch"
    )
    await until(lambda: r10 in dynos.lines("web.1", "heroku"), 90, "R10")
    assert b.web_endpoints(app.app_id) == []
    lines = dynos.lines("web.1", "heroku")
    assert lines[lines.index(r10) + 1] == "Stopping process with SIGKILL"
    assert lines[lines.index(r10) + 2] == "Process exited with status 137"
    assert lines[lines.index(r10) + 3] == "State changed from starting to crashed"
    # The kubelet starts it again, and the boot deadline runs again.
    await until(lambda: dynos.lines("web.1", "heroku").count(r10) >= 2, 60, "a second R10")
