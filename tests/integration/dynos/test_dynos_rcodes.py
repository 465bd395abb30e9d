"""R10 boot timeout, R14/R15 memory, crash restarts of a killed dyno, runtime metrics."""

from __future__ import annotations

import os
import re
import signal

from .conftest import Harness, make_slug, runtime, until


async def test_r10_boot_timeout(harness: Harness) -> None:
    m = await harness.manager(boot_timeout=0.8)
    app = runtime(make_slug(harness.tmp), process_types={"web": "sleep 1000"})
    await m.converge(app)
    await until(lambda: harness.has_line("Error R10", "web.1"), timeout=10)
    await until(lambda: harness.has_line("State changed from starting to crashed", "web.1"))
    lines = harness.lines("heroku", "web.1")
    i = lines.index(
        "Error R10 (Boot timeout) -> Web process failed to bind to $PORT within "
        "0.8 seconds of launch"
    )
    assert lines[i + 1] == "Stopping process with SIGKILL"
    assert lines[i + 2] == "Process exited with status 137"
    assert m.web_endpoints("app1") == []


async def test_per_app_boot_timeout(harness: Harness) -> None:
    m = await harness.manager(boot_timeout=None)
    app = runtime(make_slug(harness.tmp), process_types={"web": "sleep 1000"}, boot_timeout=0.5)
    await m.converge(app)
    await until(lambda: harness.has_line("within 0.5 seconds of launch", "web.1"), timeout=10)


async def test_r14_then_r15_kill(harness: Harness) -> None:
    m = await harness.manager(memory_quota_mb={"basic": 40})
    # 10 MB steps every 0.25 s up to 100 MB: above 40 MB (R14), then at 80 MB (R15).
    app = runtime(
        make_slug(harness.tmp),
        formation={"hog": (1, "basic")},
        process_types={"hog": "python3 hog.py 10 10 0.25"},
    )
    await m.converge(app)
    await until(
        lambda: harness.has_line("Error R15 (Memory quota vastly exceeded)", "hog.1"), timeout=15
    )
    lines = harness.lines("heroku", "hog.1")
    r14 = lines.index("Error R14 (Memory quota exceeded)")
    assert re.fullmatch(r"Process running mem=\d+M\(\d+\.\d%\)", lines[r14 - 1])
    pct = float(lines[r14 - 1].split("(")[1].rstrip("%)"))
    assert 100 < pct < 200
    r15 = lines.index("Error R15 (Memory quota vastly exceeded)")
    assert r15 > r14
    assert float(lines[r15 - 1].split("(")[1].rstrip("%)")) >= 200
    assert lines[r15 + 1] == "Stopping process with SIGKILL"
    await until(lambda: "Process exited with status 137" in harness.lines("heroku", "hog.1"))
    await until(lambda: "State changed from up to crashed" in harness.lines("heroku", "hog.1"))


async def test_killed_dyno_is_restarted(harness: Harness) -> None:
    m = await harness.manager()
    app = runtime(make_slug(harness.tmp), formation={"web": (1, "basic")})
    await m.converge(app)
    await until(lambda: len(m.web_endpoints("app1")) == 1)
    first = m.dynos("app1")[0]
    assert first.pid
    os.killpg(first.pid, signal.SIGKILL)
    await until(lambda: harness.has_line("State changed from up to crashed", "web.1"))
    # First crash: restarted at once.
    await until(
        lambda: (
            [d.state for d in m.dynos("app1")] == ["up"] and m.dynos("app1")[0].pid != first.pid
        ),
        what="restarted",
    )
    second = m.dynos("app1")[0]
    assert second.port is not None
    os.killpg(second.pid, signal.SIGKILL)  # type: ignore[arg-type]
    # Second crash: a cool-off (0.6 s in these settings) during which it stays crashed.
    await until(lambda: m.dynos("app1")[0].state == "crashed", timeout=5)
    assert m.web_endpoints("app1") == []
    await until(lambda: m.dynos("app1")[0].state == "up", timeout=10, what="back after cool-off")


async def test_runtime_metrics_lines(harness: Harness) -> None:
    m = await harness.manager()
    app = runtime(make_slug(harness.tmp), features={"log-runtime-metrics"})
    await m.converge(app)
    await until(lambda: harness.has_line("sample#load_avg_1m=", "web.1"), timeout=10)
    mem = next(line for line in harness.lines("heroku", "web.1") if "sample#memory_total" in line)
    assert re.fullmatch(
        r"source=web\.1 dyno=heroku\.app1\.[0-9a-f-]{36} sample#memory_total=\d+\.\d\dMB "
        r"sample#memory_rss=\d+\.\d\dMB sample#memory_cache=\d+\.\d\dMB "
        r"sample#memory_swap=\d+\.\d\dMB sample#memory_pgpgin=\d+pages "
        r"sample#memory_pgpgout=\d+pages sample#memory_quota=512\.00MB",
        mem,
    ), mem
    total = float(mem.split("memory_total=")[1].split("MB")[0])
    assert 2 < total < 200  # a python http server
    load = next(line for line in harness.lines("heroku", "web.1") if "load_avg_1m" in line)
    assert re.fullmatch(
        r"source=web\.1 dyno=heroku\.app1\.\S+ sample#load_avg_1m=\d+\.\d\d "
        r"sample#load_avg_5m=\d+\.\d\d sample#load_avg_15m=\d+\.\d\d",
        load,
    )


async def test_no_metrics_without_feature(harness: Harness) -> None:
    m = await harness.manager(metrics_interval=0.1)
    await m.converge(runtime(make_slug(harness.tmp)))
    await until(lambda: len(m.web_endpoints("app1")) == 1)
    await until(lambda: harness.has_line("web listening", "web.1"))
    import asyncio

    await asyncio.sleep(0.4)
    assert not harness.has_line("sample#memory_total")
