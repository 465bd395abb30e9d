"""Heroku's R codes on Kubernetes: R10 from the startup probe's deadline on $PORT, R15 from
the kernel's OOM kill at the memory limit (twice the quota)."""

from __future__ import annotations

from pathlib import Path

import pytest

from spruce.dynos.backends.kubernetes import HostSlugImages
from spruce.dynos.model import DynoSettings
from spruce.kube import BUSYBOX_IMAGE

from .conftest import Dynos, fast_dyno_settings, make_slug, runtime, until

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


async def test_r15_when_the_kernel_kills_a_dyno_at_twice_its_quota(
    dynos: Dynos, tmp_path: Path
) -> None:
    # A 16 MB quota (the limit is twice that): the host's Python, mounted read-only at /usr,
    # allocates far beyond it and the kernel's OOM killer ends it.
    dynos.ds.memory_quota_mb = {"basic": 16}
    b = dynos.backend
    b.images = HostSlugImages(BUSYBOX_IMAGE, host_usr=True)
    hog = "echo hogging; exec python3 -c 'import time; x = bytearray(200 << 20); time.sleep(60)'"
    app = runtime(make_slug(tmp_path), process_types={"hog": hog}, formation={"hog": (1, "basic")})
    await b.converge(app)
    r15 = "Error R15 (Memory quota vastly exceeded)"
    await until(lambda: r15 in dynos.lines("hog.1", "heroku"), 60, "R15")
    lines = dynos.lines("hog.1", "heroku")
    assert lines[lines.index(r15) + 2] == "Process exited with status 137"
    assert "hogging" in dynos.lines("hog.1", "app")
