"""The dyno's filesystem as Heroku documents it, through real dynos (as root: the sandbox).

/tmp and /app writable and private to the dyno, HOME=/app, /dev/shm, localhost resolving, and
a disk quota of the dyno's own: filling it gives the app ENOSPC, and its space goes back
when the dyno ends.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from .conftest import Harness, make_slug, runtime, until
from .test_dynos_run import cli_attach

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the dyno sandbox needs root")

FS_SCRIPT = "; ".join(
    [
        "echo uid=$(id -u) home=$HOME pwd=$(pwd)",
        "touch /tmp/x && echo tmp-ok",
        "echo tmpmode=$(stat -c %a /tmp) vartmpmode=$(stat -c %a /var/tmp)",
        "d=$(mktemp -d) && echo hi > $d/f && echo mktemp-ok",
        "echo mine > /app/written && echo app-ok",
        "echo changed > /app/web.py && echo slug-file-ok",
        "touch /dev/shm/seg && echo shm-ok",
        "echo localhost=$(getent hosts localhost | awk '{print $1; exit}')",
        "echo disk-kb=$(df -Pk /tmp | awk 'NR==2 {print $2}')",
        "dd if=/dev/zero of=/tmp/fill bs=1M count=200 2>&1 | grep -o 'No space left on device'",
        "rm -f /tmp/fill && echo still-alive",
    ]
)


def _loops() -> str:
    return subprocess.run(["losetup", "-a"], capture_output=True, text=True).stdout


def _loops_of(harness: Harness) -> str:
    return "\n".join(line for line in _loops().splitlines() if str(harness.tmp) in line)


async def test_tmp_app_shm_localhost_and_disk_quota(harness: Harness) -> None:
    m = await harness.manager(disk_quota_mb={"basic": 64})
    assert m.warnings == [], m.warnings
    slug = make_slug(harness.tmp)
    app = runtime(slug, formation={})
    info = await m.run_one_off(app, FS_SCRIPT, attach=True, size="basic")
    assert info.attach_url
    out, status = await cli_attach(harness, info.attach_url)
    uid = int(out.split("uid=")[1].split()[0])
    assert uid != 0 and "home=/app pwd=/app" in out, out
    for marker in ("tmp-ok", "mktemp-ok", "app-ok", "slug-file-ok", "shm-ok", "still-alive"):
        assert marker in out, (marker, out)
    assert "tmpmode=1777 vartmpmode=1777" in out
    assert "localhost=127.0.0.1" in out or "localhost=::1" in out, out
    # The quota is the dyno's (64 MB here), not the host's; filling it fails inside the dyno.
    disk_kb = int(out.split("disk-kb=")[1].split()[0])
    assert 40_000 < disk_kb <= 64 * 1024, disk_kb
    assert "No space left on device" in out
    assert status == 0
    # What the dyno wrote stayed in the dyno: the release's slug copy on the host is unchanged.
    copy = next((harness.tmp / "home" / "apps" / "app1" / "releases").iterdir())
    assert not (copy / "written").exists()
    assert (copy / "web.py").read_text() == (slug / "web.py").read_text()
    # The disk went with the dyno: no loop device, no image, no mount point left.
    await until(lambda: not list((harness.tmp / "home" / "disks").iterdir()), 10, "disk released")
    assert str(harness.tmp) not in _loops()


async def test_each_dyno_has_its_own_app_and_tmp(harness: Harness) -> None:
    m = await harness.manager(disk_quota_mb={"basic": 32})
    slug = make_slug(harness.tmp)
    app = runtime(slug, formation={})
    first = await m.run_one_off(
        app, "echo one > /app/note; echo one > /tmp/note; echo wrote", attach=True, size="basic"
    )
    assert first.attach_url
    out, _ = await cli_attach(harness, first.attach_url)
    assert "wrote" in out
    second = await m.run_one_off(
        app,
        "cat /app/note 2>/dev/null || echo no-app-note; cat /tmp/note 2>/dev/null || echo no-tmp",
        attach=True,
        size="basic",
    )
    assert second.attach_url
    out, _ = await cli_attach(harness, second.attach_url)
    assert "no-app-note" in out and "no-tmp" in out, out


async def test_formation_dyno_disk_released_when_it_stops(harness: Harness) -> None:
    """The image file is unlinked once mounted (so even a kill -9 of the platform leaks no
    space), and the loop device and mount point go when the dyno ends."""
    m = await harness.manager(disk_quota_mb={"basic": 32})
    await m.converge(runtime(make_slug(harness.tmp), formation={"worker": (1, "basic")}))
    await until(lambda: [d.state for d in m.dynos("app1")] == ["up"])
    disks = harness.tmp / "home" / "disks"
    assert [p.name for p in disks.iterdir()]  # the running dyno's mount point
    # Once mounted, the loop device holds the image, unlinked, while the dyno runs.
    await until(lambda: "(deleted)" in _loops_of(harness), 10, "disk mounted, image unlinked")
    assert not list(disks.glob(".*.img"))
    await m.shutdown()
    harness.managers.remove(m)
    await until(lambda: not list(disks.iterdir()), 10, "mount point released")
    assert str(harness.tmp) not in _loops()


async def test_run_inside_sees_the_dyno_own_files(harness: Harness) -> None:
    """run:inside joins the running dyno: its /tmp, its /app changes, its processes."""
    m = await harness.manager(disk_quota_mb={"basic": 32})
    app = runtime(
        make_slug(harness.tmp),
        process_types={"worker": "echo t > /tmp/mark; echo a > /app/mark; exec sleep 1000"},
        formation={"worker": (1, "basic")},
    )
    await m.converge(app)
    await until(lambda: [d.state for d in m.dynos("app1")] == ["up"])
    script = "sleep 0.5; cat /tmp/mark /app/mark; pgrep -x sleep >/dev/null && echo sees-sleep"
    info = await m.run_inside("app1", "worker.1", script + "; echo uid=$(id -u)")
    assert info.attach_url
    out, status = await cli_attach(harness, info.attach_url)
    assert "t\na\n" in out and "sees-sleep" in out, out
    assert status == 0 and "uid=0" not in out
