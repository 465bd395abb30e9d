"""Heroku's R codes on Kubernetes: R10 from the startup probe's deadline on $PORT, R14 from
the kubelet's memory figures, R15 from the kernel's OOM kill at the limit (twice the quota)."""

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
    return fast_dyno_settings(boot_timeout=4.0, metrics_interval=1.0, r14_interval=5.0)


async def test_r10_boot_timeout(dynos: Dynos, tmp_path: Path) -> None:
    b = dynos.backend
    app = runtime(make_slug(tmp_path), process_types={"web": "exec sleep 1000"})
    await b.converge(app)
    r10 = (
        "Error R10 (Boot timeout) -> Web process failed to bind to $PORT within 4 seconds of launch"
    )
    await until(lambda: r10 in dynos.lines("web.1", "heroku"), 120, "R10")
    assert b.web_endpoints(app.app_id) == []
    lines = dynos.lines("web.1", "heroku")
    assert lines[lines.index(r10) + 1] == "Stopping process with SIGKILL"
    assert lines[lines.index(r10) + 2] == "Process exited with status 137"
    assert lines[lines.index(r10) + 3] == "State changed from starting to crashed"
    # The kubelet starts it again, and the boot deadline runs again.
    await until(lambda: dynos.lines("web.1", "heroku").count(r10) >= 2, 120, "a second R10")


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
    await until(lambda: r15 in dynos.lines("hog.1", "heroku"), 120, "R15")
    lines = dynos.lines("hog.1", "heroku")
    assert lines[lines.index(r15) + 2] == "Process exited with status 137"
    # The output comes by the log stream, the R15 by the pod watch: either may come first.
    await until(lambda: "hogging" in dynos.lines("hog.1", "app"), 120, "the hog's output")


async def test_r14_and_runtime_metrics_from_the_kubelet(dynos: Dynos, tmp_path: Path) -> None:
    # 40 MB used against a 32 MB quota: over it (R14), under the 64 MB limit (no kill).
    dynos.ds.memory_quota_mb = {"basic": 32}
    b = dynos.backend
    b.images = HostSlugImages(BUSYBOX_IMAGE, host_usr=True)
    fill = "x = bytearray(40 << 20); x[::4096] = b'x' * len(x[::4096])"
    hog = f"exec python3 -c \"import time; {fill}; print('filled', flush=True); time.sleep(600)\""
    app = runtime(
        make_slug(tmp_path),
        process_types={"hog": hog},
        formation={"hog": (1, "basic")},
        features={"log-runtime-metrics"},
    )
    await b.converge(app)
    await until(lambda: "filled" in dynos.lines("hog.1", "app"), 120, "the hog filled")
    r14 = "Error R14 (Memory quota exceeded)"
    await until(lambda: r14 in dynos.lines("hog.1", "heroku"), 120, "R14")
    lines = dynos.lines("hog.1", "heroku")
    running = lines[lines.index(r14) - 1]
    assert running.startswith("Process running mem=") and running.endswith("%)"), running
    assert 100 < float(running.split("(")[1].rstrip("%)")) < 200
    samples = [x for x in lines if x.startswith("source=hog.1 ")]
    assert samples and "sample#memory_quota=32.00MB" in samples[-1]
    assert not any("R15" in x for x in lines)
    assert [d.state for d in b.dynos(app.app_id)] == ["up"]
    # The same figures feed the platform's metrics and telemetry, as the local backend's.
    await until(lambda: [x for x in dynos.samples if x.dyno == "hog.1"], 30, "a dyno sample")
    sample = [x for x in dynos.samples if x.dyno == "hog.1"][-1]
    assert sample.app_id == app.app_id and sample.memory_quota_mb == 32
    assert 35 < sample.memory_mb < 64 and sample.load_avg_1m >= 0
    (usage,) = b.usage(app.app_id)
    assert (usage.name, usage.type, usage.restarts) == ("hog.1", "hog", 0)
    assert 35 << 20 < usage.memory_bytes < 64 << 20 and usage.memory_limit_bytes == 32 << 20
    assert usage.cpu_seconds > 0
