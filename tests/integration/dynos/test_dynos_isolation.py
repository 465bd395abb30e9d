"""Isolation between apps when the platform runs as root: users, sandbox, cgroups."""

from __future__ import annotations

import os

import pytest

from .conftest import Harness, make_slug, runtime, until
from .test_dynos_run import cli_attach

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="isolation needs root")


async def test_app_cannot_read_other_app_or_platform_files(harness: Harness) -> None:
    m = await harness.manager()
    assert m.warnings == [], m.warnings
    store = harness.tmp / "home" / "spruce.db"
    store.write_text("platform secrets")
    os.chmod(store, 0o600)
    outside_store = harness.tmp / "platform.db"
    outside_store.write_text("platform secrets")
    slug_a = make_slug(harness.tmp, "slug-a")
    slug_b = make_slug(harness.tmp, "slug-b", extra={"secret.txt": "b-secret"})
    await m.converge(runtime(slug_a, app_id="appa", formation={}))
    await m.converge(runtime(slug_b, app_id="appb", formation={"worker": (1, "basic")}))
    await until(lambda: [d.state for d in m.dynos("appb")] == ["up"])
    b_pid = m.dynos("appb")[0].pid
    b_copy = next((harness.tmp / "home" / "apps" / "appb" / "releases").iterdir())
    assert (b_copy / "secret.txt").read_text() == "b-secret"
    targets = [b_copy / "secret.txt", slug_b / "secret.txt", store, outside_store]
    script = "; ".join(
        [f"cat {t} && echo READ-OK" for t in targets]
        + [
            f"kill -0 {b_pid} && echo SIGNAL-OK",
            "echo uid=$(id -u) home=$HOME",
            "cat secret.txt 2>/dev/null || echo own-slug-ok",
            "echo x > mine && echo write-ok",
        ]
    )
    info = await m.run_one_off(runtime(slug_a, app_id="appa", formation={}), script, attach=True)
    assert info.attach_url
    out, status = await cli_attach(harness, info.attach_url)
    assert "READ-OK" not in out and "b-secret" not in out and "platform secrets" not in out
    assert "SIGNAL-OK" not in out
    assert "own-slug-ok" in out and "write-ok" in out
    uid = int(out.split("uid=")[1].split()[0])
    assert uid != 0
    # The other app runs as another user.
    b_uids = {os.stat(f"/proc/{p}").st_uid for p in _group(b_pid)}
    assert uid not in b_uids and b_uids - {0}
    # The source slug was not changed by the platform (copies live under the manager's home).
    assert os.stat(slug_a).st_uid == 0 and not (slug_a / "mine").exists()


def _group(pgid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = open(f"/proc/{entry}/stat").read()
            except OSError:
                continue
            if int(stat[stat.rfind(")") + 2 :].split()[2]) == pgid:
                out.append(int(entry))
    return out


async def test_cgroup_limits_applied(harness: Harness) -> None:
    m = await harness.manager(memory_quota_mb={"basic": 100})
    await m.converge(runtime(make_slug(harness.tmp), formation={"worker": (1, "basic")}))
    await until(lambda: [d.state for d in m.dynos("app1")] == ["up"])
    pid = m.dynos("app1")[0].pid
    cgroups = open(f"/proc/{pid}/cgroup").read()
    mem = next(line.split(":", 2)[2] for line in cgroups.splitlines() if ":memory:" in line)
    assert mem.startswith("/spruce/app1.worker.1.")
    limit = int(open(f"/sys/fs/cgroup/memory{mem}/memory.limit_in_bytes").read())
    assert limit == (100 * 3 + 64) * 1024 * 1024
    pids = next(line.split(":", 2)[2] for line in cgroups.splitlines() if ":pids:" in line)
    assert open(f"/sys/fs/cgroup/pids{pids}/pids.max").read().strip() == "256"
    await m.remove_app("app1")
    assert not os.path.exists(f"/sys/fs/cgroup/memory{mem}")


async def test_isolation_off_degrades_with_warning(harness: Harness) -> None:
    m = await harness.manager(isolation="off")
    assert any("isolation is off" in w for w in m.warnings)
    await m.converge(
        runtime(
            make_slug(harness.tmp),
            formation={"env": (1, "basic")},
            process_types={"env": "echo uid=$(id -u); sleep 1000"},
        )
    )
    await until(lambda: harness.has_line("uid=0", "env.1"))
