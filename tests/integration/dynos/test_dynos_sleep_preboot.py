"""Eco sleeping and waking; preboot's switch order."""

from __future__ import annotations

import asyncio

from .conftest import Harness, make_slug, runtime, until


async def test_eco_app_sleeps_and_wakes(harness: Harness) -> None:
    # Long enough for a web dyno to boot on a busy machine (each launch makes its disk).
    m = await harness.manager(sleep_after=1.5)
    app = runtime(make_slug(harness.tmp), formation={"web": (1, "eco"), "worker": (1, "eco")})
    await m.converge(app)
    await until(lambda: len(m.web_endpoints("app1")) == 1)
    # Traffic keeps it awake.
    for _ in range(20):
        m.note_request("app1")
        await asyncio.sleep(0.1)
    assert all(d.state == "up" for d in m.dynos("app1"))
    await until(
        lambda: [d.state for d in m.dynos("app1")] == ["idle", "idle"], timeout=5, what="idle"
    )
    assert m.web_endpoints("app1") == []
    assert harness.has_line("Idling", "web.1") and harness.has_line("Idling", "worker.1")
    assert harness.has_line("State changed from up to down", "web.1")
    await until(lambda: all(d.pid is None for d in m.dynos("app1")), what="processes ended")
    m.wake("app1")
    await until(lambda: len(m.web_endpoints("app1")) == 1, what="woken")
    assert harness.has_line("Unidling", "web.1")
    assert harness.has_line("State changed from down to starting", "web.1")
    await until(lambda: [d.state for d in m.dynos("app1")] == ["up", "up"])


async def test_non_eco_app_never_sleeps(harness: Harness) -> None:
    m = await harness.manager(sleep_after=0.2)
    await m.converge(runtime(make_slug(harness.tmp), formation={"web": (1, "basic")}))
    await until(lambda: len(m.web_endpoints("app1")) == 1)
    await asyncio.sleep(0.6)
    assert [d.state for d in m.dynos("app1")] == ["up"]


async def test_preboot_new_up_before_old_stopped(harness: Harness) -> None:
    # (each dyno's (release, state), the router table) after every change
    events: list[tuple[list[tuple[int, str]], list[tuple[str, int]]]] = []

    def on_change(app_id: str) -> None:
        eps = [(e.dyno_name, e.port) for e in m.web_endpoints(app_id)]
        states = [(d.release_version, str(d.state)) for d in m.dynos(app_id)]
        events.append((states, eps))

    m = await harness.manager(on_change)
    slug = make_slug(harness.tmp)
    await m.converge(runtime(slug, formation={"web": (2, "basic")}, features={"preboot"}))
    await until(lambda: len(m.web_endpoints("app1")) == 2)
    old_ports = {e.port for e in m.web_endpoints("app1")}
    events.clear()
    await m.converge(
        runtime(
            make_slug(harness.tmp, "slug2"),
            release=2,
            formation={"web": (2, "basic")},
            features={"preboot"},
        )
    )
    await until(
        lambda: [(d.release_version, d.state) for d in m.dynos("app1")] == [(2, "up"), (2, "up")],
        timeout=15,
        what="only v2 dynos left",
    )
    # Never an empty router table during the switch.
    assert all(eps for _, eps in events), events
    # The first table without old dynos comes after both new ones were up, and while the
    # old processes were still running (they get SIGTERM after the switch).
    switch = next(
        i for i, (_, eps) in enumerate(events) if eps and not ({p for _, p in eps} & old_ports)
    )
    assert events[switch][0].count((2, "up")) == 2
    assert events[switch][0].count((1, "up")) == 2
    before = events[:switch]
    assert not any((1, "down") in s for s, _ in before)
    lines = harness.lines("heroku", "web.1")
    assert lines.count("Stopping all processes with SIGTERM") == 1
    assert "Restarting" not in lines
