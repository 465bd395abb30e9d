"""Scaling, launch environment, log lines, releases, restarts (real processes)."""

from __future__ import annotations

import urllib.request

import pytest

from spruce.dynos import DynoError, DynoNotFound, InvalidFormation, UnknownSize

from .conftest import Harness, make_slug, runtime, until


def fetch(port: int, path: str = "/") -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


async def test_scale_up_and_down_with_heroku_lines(harness: Harness) -> None:
    m = await harness.manager()
    slug = make_slug(harness.tmp)
    app = runtime(slug, formation={"web": (2, "standard-1x"), "worker": (1, "basic")})
    await m.converge(app)
    await until(lambda: len(m.web_endpoints("app1")) == 2, what="two web dynos up")
    names = sorted(d.name for d in m.dynos("app1"))
    assert names == ["web.1", "web.2", "worker.1"]
    for ep in m.web_endpoints("app1"):
        status, body = await __import__("asyncio").to_thread(fetch, ep.port)
        assert status == 200 and body.startswith(f"{ep.dyno_name} r1 ")
    web1 = next(d for d in m.dynos("app1") if d.name == "web.1")
    assert web1.state == "up" and web1.pid and web1.size == "Standard-1X"
    assert harness.has_line("Starting process with command `python3 web.py`", "web.1")
    assert harness.has_line("State changed from starting to up", "web.1")
    await until(lambda: harness.has_line("web listening", "web.1"), what="app output logged")
    assert ("app1", "app", "web.1") in {
        (a, s, p) for a, s, p, _ in harness.sink.lines if "web listening" in _
    }
    n_changes = len(harness.changes)

    app.formation = {"web": (1, "standard-1x"), "worker": (0, "basic")}
    await m.converge(app)
    await until(
        lambda: sorted(d.name for d in m.dynos("app1")) == ["web.1"], timeout=15, what="scaled down"
    )
    assert harness.has_line("Stopping all processes with SIGTERM", "web.2")
    assert harness.has_line("State changed from up to down", "web.2")
    assert harness.has_line("Process exited with status 143", "web.2")
    assert len(harness.changes) > n_changes and set(harness.changes) == {"app1"}
    # The worker ignores SIGTERM: R12 then SIGKILL after the (short) grace time.
    assert harness.has_line(
        "Error R12 (Exit timeout) -> At least one process failed to exit "
        "within 1 seconds of SIGTERM",
        "worker.1",
    )
    assert harness.has_line("Process exited with status 137", "worker.1")


async def test_environment_profile_and_metadata(harness: Harness) -> None:
    m = await harness.manager()
    slug = make_slug(harness.tmp, extra={".profile": "export FROM_PROFILE=$PROFILE_D_RAN-too\n"})
    app = runtime(
        slug,
        formation={"env": (1, "basic")},
        process_types={"env": "env | sort; sleep 1000"},
        config={"GREETING": "hello world", "PORT": "1"},
        features={"runtime-dyno-metadata"},
    )
    await m.converge(app)
    await until(lambda: harness.has_line("HEROKU_DYNO_ID=", "env.1"), what="env printed")
    await until(lambda: harness.has_line("PS=env.1", "env.1"))
    env = dict(line.split("=", 1) for line in harness.lines("app", "env.1") if "=" in line)
    assert env["DYNO"] == "env.1" and env["PS"] == "env.1"
    assert env["GREETING"] == "hello world"
    assert env["PROFILE_D_RAN"] == "yes" and env["FROM_PROFILE"] == "yes-too"
    assert env["HEROKU_APP_ID"] == "app1" and env["HEROKU_APP_NAME"] == "app1-name"
    assert env["HEROKU_RELEASE_VERSION"] == "v1"
    assert env["PWD"] == env["HOME"]
    assert "PORT" in env and env["PORT"] == "1"  # non-web: the config var is left alone


async def test_new_release_restarts_on_new_slug(harness: Harness) -> None:
    m = await harness.manager()
    slug = make_slug(harness.tmp)
    await m.converge(runtime(slug))
    await until(lambda: len(m.web_endpoints("app1")) == 1)
    old_pid = m.dynos("app1")[0].pid
    slug2 = make_slug(harness.tmp, "slug2")
    await m.converge(runtime(slug2, release=2))
    await until(
        lambda: [(d.release_version, d.state) for d in m.dynos("app1")] == [(2, "up")],
        what="web.1 up on v2",
    )
    ep = m.web_endpoints("app1")[0]
    status, body = await __import__("asyncio").to_thread(fetch, ep.port)
    assert body.startswith("web.1 r2")
    assert m.dynos("app1")[0].pid != old_pid
    assert harness.has_line("Restarting", "web.1")
    assert harness.has_line("State changed from up to starting", "web.1")


async def test_restart_and_stop_formation_dyno(harness: Harness) -> None:
    m = await harness.manager()
    await m.converge(runtime(make_slug(harness.tmp), formation={"web": (2, "basic")}))
    await until(lambda: len(m.web_endpoints("app1")) == 2)
    pids = {d.name: d.pid for d in m.dynos("app1")}
    await m.restart("app1", dyno_name="web.2")
    await until(
        lambda: any(
            d.name == "web.2" and d.state == "up" and d.pid != pids["web.2"]
            for d in m.dynos("app1")
        ),
        what="web.2 restarted",
    )
    assert next(d for d in m.dynos("app1") if d.name == "web.1").pid == pids["web.1"]
    # Heroku: a stopped formation dyno is started again.
    await m.stop("app1", process_type="web")
    await until(
        lambda: (
            all(d.state == "up" for d in m.dynos("app1"))
            and not ({d.pid for d in m.dynos("app1")} & set(pids.values()))
        ),
        what="both web dynos back",
    )
    with pytest.raises(DynoNotFound):
        await m.restart("app1", dyno_name="web.9")


async def test_crash_restart_policy(harness: Harness) -> None:
    m = await harness.manager()
    await m.converge(runtime(make_slug(harness.tmp), formation={"crash": (1, "basic")}))
    await until(
        lambda: harness.lines("heroku", "crash.1").count("Process exited with status 3") >= 4,
        timeout=10,
    )
    lines = harness.lines("heroku", "crash.1")
    assert "State changed from up to crashed" in lines
    assert "State changed from crashed to starting" in lines
    assert harness.has_line("boom", "crash.1")
    # First restart at once, then a growing cool-off (0.6 s, then 1.2 s).
    starts = [
        t
        for (_, _, proc, msg), t in zip(harness.sink.lines, harness.sink.times, strict=True)
        if proc == "crash.1" and msg.startswith("Starting process")
    ]
    assert len(starts) >= 4
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    # Each gap is the cool-off plus a launch (its own disk: 0.1-0.3 s, more on busy cores):
    # the cool-offs are lower bounds, and the growth between them is what the policy says.
    assert gaps[0] < 0.6, gaps
    assert 0.55 <= gaps[1] < 1.6, gaps
    assert 1.1 <= gaps[2] < 2.4, gaps
    assert gaps[2] - gaps[1] > 0.3, gaps
    info = m.dynos("app1")[0]
    assert info.state in ("crashed", "starting", "up")


async def test_bad_input_is_a_value_error(harness: Harness) -> None:
    m = await harness.manager()
    slug = make_slug(harness.tmp)
    with pytest.raises(UnknownSize):
        await m.converge(runtime(slug, formation={"web": (1, "huge-9x")}))
    with pytest.raises(InvalidFormation):
        await m.converge(runtime(slug, formation={"nope": (1, "basic")}))
    with pytest.raises(InvalidFormation):
        await m.converge(runtime(slug, formation={"web": (-1, "basic")}))
    with pytest.raises(DynoError):
        await m.converge(runtime(slug, config={"BAD NAME": "x"}))
    with pytest.raises(ValueError):
        await m.run_one_off(runtime(slug), "", attach=False)
    assert m.dynos("app1") == []
