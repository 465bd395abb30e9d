"""The platform survives itself: clean shutdown and return; leftovers after kill -9."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import textwrap
from pathlib import Path

from .conftest import Harness, make_slug, runtime, until

SRC = str(Path(__file__).resolve().parents[3] / "src")
TESTS = str(Path(__file__).resolve().parents[3] / "tests")


def alive(pid: int) -> bool:
    try:
        state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


async def test_shutdown_then_new_manager_brings_dynos_back(harness: Harness) -> None:
    m = await harness.manager()
    slug = make_slug(harness.tmp)
    app = runtime(slug, formation={"web": (2, "basic"), "worker": (1, "basic")})
    await m.converge(app)
    await until(
        lambda: len(m.web_endpoints("app1")) == 2 and all(d.state == "up" for d in m.dynos("app1"))
    )
    pids = [d.pid for d in m.dynos("app1")]
    ports = [e.port for e in m.web_endpoints("app1")]
    await m.shutdown()
    harness.managers.remove(m)
    assert not any(alive(p) for p in pids if p)  # the stubborn worker too (SIGKILL)
    assert list((harness.tmp / "home" / "state").glob("*.json")) == []
    for port in ports:  # nobody keeps the ports
        with __import__("socket").socket() as s:
            s.bind(("127.0.0.1", port))
    m2 = await harness.manager()
    await m2.converge(app)
    await until(
        lambda: (
            len(m2.web_endpoints("app1")) == 2
            and sorted(d.name for d in m2.dynos("app1")) == ["web.1", "web.2", "worker.1"]
        )
    )


PLATFORM = textwrap.dedent("""
    import asyncio, json, sys
    sys.path[:0] = [{src!r}, {tests!r}]
    from pathlib import Path
    from integration.dynos.conftest import Harness, runtime, until
    async def main():
        h = Harness(Path({tmp!r}))
        m = await h.manager()
        await m.converge(runtime(Path({slug!r}), formation={{"web": (1, "basic"),
                                                           "worker": (1, "basic")}}))
        await until(lambda: len(m.web_endpoints("app1")) == 1
                    and all(d.state == "up" for d in m.dynos("app1")))
        info = await m.run_one_off(runtime(Path({slug!r})), "sleep 1000")
        await until(lambda: len(m.dynos("app1")) == 3
                    and all(d.state == "up" and d.pid for d in m.dynos("app1")))
        print(json.dumps([[d.name, d.pid, d.port] for d in m.dynos("app1")]), flush=True)
        await asyncio.sleep(1000)
    asyncio.run(main())
""")


async def test_leftovers_of_a_killed_platform_are_ended(harness: Harness) -> None:
    slug = make_slug(harness.tmp)
    code = PLATFORM.format(src=SRC, tests=TESTS, tmp=str(harness.tmp), slug=str(slug))
    platform = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert platform.stdout
        line = await asyncio.wait_for(platform.stdout.readline(), 30)
        dynos = json.loads(line)
        assert sorted(n.split(".")[0] for n, _, _ in dynos) == ["run", "web", "worker"]
        pids = [pid for _, pid, _ in dynos]
        platform.send_signal(signal.SIGKILL)
        await platform.wait()
        assert all(alive(p) for p in pids)  # orphans: still running after the platform died
        assert len(list((harness.tmp / "home" / "state").glob("*.json"))) == 3
        m = await harness.manager()
        assert not any(alive(p) for p in pids)
        assert list((harness.tmp / "home" / "state").glob("*.json")) == []
        for _, _, port in dynos:
            if port:
                with __import__("socket").socket() as s:
                    s.bind(("127.0.0.1", port))
        if os.geteuid() == 0:
            assert not [
                p
                for p in Path("/sys/fs/cgroup/memory/spruce").iterdir()
                if p.name.startswith("app1.") and str(harness.tmp) in str(p)
            ]
        assert m.dynos("app1") == []
    finally:
        if platform.returncode is None:
            platform.kill()
            await platform.wait()
        if not harness.managers:
            await harness.manager()  # ends whatever the failed test left running
