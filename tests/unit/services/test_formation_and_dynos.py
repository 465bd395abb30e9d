"""The formation's limits, and dynos as users act on them."""

from __future__ import annotations

import asyncio

import pytest
from service_fakes import Harness

from spruce.services.errors import InvalidParams, NotFound
from spruce.services.formation import parse_scale
from spruce.services.views import AppView, UserView


def deployed(harness: Harness, owner: UserView, name: str = "scaled") -> AppView:
    s = harness.services
    app = s.apps.create(owner, name)
    slug = s.releases.create_slug(app.id, {"web": "serve", "worker": "work"})
    s.releases.deploy_slug(owner, app.id, slug.id)
    return app


def test_sizes_and_limits(harness: Harness, owner: UserView) -> None:
    f = harness.services.formation
    app = deployed(harness, owner)
    assert {x.type: (x.quantity, x.size) for x in f.list(app.id)} == {
        "web": (1, "basic"),
        "worker": (0, "basic"),
    }
    with pytest.raises(InvalidParams, match="more than 1 basic"):
        f.update(owner, app.id, [{"type": "web", "quantity": "2"}])
    f.update(owner, app.id, [{"type": "web", "quantity": "3", "size": "Standard-1X"}])
    assert f.get(app.id, "web").quantity == 3 and f.get(app.id, "web").size == "standard-1x"
    harness.services.apps.update_settings(owner, app.id, {"formation_limit": 2})
    with pytest.raises(InvalidParams, match="limited to 2"):
        f.update(owner, app.id, [{"type": "web", "quantity": 3}])
    with pytest.raises(NotFound, match="process type"):
        f.update(owner, app.id, [{"type": "clock", "quantity": 1}])
    # A batch is all or nothing.
    with pytest.raises(NotFound):
        f.update(owner, app.id, [{"type": "worker", "quantity": 1}, {"type": "x", "quantity": 1}])
    assert f.get(app.id, "worker").quantity == 0
    for bad in ([], None, [{"quantity": 1}], [{"type": "web", "quantity": -1}]):
        with pytest.raises((InvalidParams, NotFound)):
            f.update(owner, app.id, bad)


def test_parse_scale() -> None:
    """ps:scale's arguments, the one parser of the CLI and the MCP tool; relative amounts
    stay relative (Heroku's API counts them from the quantity at the time)."""
    assert parse_scale(["web=3:standard-2x", "worker+2"]) == [
        {"type": "web", "quantity": 3, "size": "standard-2x"},
        {"type": "worker", "quantity": "+2"},
    ]
    assert parse_scale(["worker-5"]) == [{"type": "worker", "quantity": "-5"}]
    assert parse_scale(["web=:basic"]) == [{"type": "web", "size": "basic"}]
    # One string (the MCP tool's `dyno`), spaces or commas between the words.
    assert parse_scale("web=1, worker+1  clock=0") == [
        {"type": "web", "quantity": 1},
        {"type": "worker", "quantity": "+1"},
        {"type": "clock", "quantity": 0},
    ]
    for bad in (["web==2"], ["web+:basic"], ["=2"], [], "", " , ", ["web=2:"], ["web 2"]):
        with pytest.raises(InvalidParams, match="web=2:standard-1x"):
            parse_scale(bad)


def test_scale_counts_relative_amounts_from_the_formation(
    harness: Harness, owner: UserView
) -> None:
    f = harness.services.formation
    app = deployed(harness, owner, "scaled-by-args")
    changed = f.scale(owner, app.id, "worker+2:standard-1x web=0")
    assert [(x.type, x.quantity, x.size) for x in changed] == [
        ("worker", 2, "standard-1x"),
        ("web", 0, "basic"),
    ]
    f.scale(owner, app.id, ["worker-1"])
    assert f.get(app.id, "worker").quantity == 1
    f.scale(owner, app.id, "worker-5")  # never below 0
    assert f.get(app.id, "worker").quantity == 0
    # Heroku's CLI sends these as the API's quantities.
    f.update(owner, app.id, [{"type": "worker", "quantity": "+3"}])
    f.update(owner, app.id, [{"type": "worker", "quantity": "-1"}])
    assert f.get(app.id, "worker").quantity == 2
    for bad in ("worker=x", "worker+1 clock=1"):
        with pytest.raises((InvalidParams, NotFound)):
            f.scale(owner, app.id, bad)
    assert f.get(app.id, "worker").quantity == 2  # a failed batch changes nothing


async def test_scaling_converges_the_dynos(harness: Harness, owner: UserView) -> None:
    s = harness.services
    app = deployed(harness, owner, "converged")
    s.formation.update(owner, app.id, [{"type": "worker", "quantity": 2, "size": "standard-2x"}])
    for _ in range(100):
        await asyncio.sleep(0.01)
        if len(harness.dynos.dynos(app.id)) == 3:
            break
    names = [(d.name, d.size) for d in s.dynos.list(app)]
    assert names == [("web.1", "basic"), ("worker.1", "standard-2x"), ("worker.2", "standard-2x")]
    assert harness.dynos.converged[-1].formation["worker"] == (2, "standard-2x")


async def test_restart_by_name_or_type(harness: Harness, owner: UserView) -> None:
    s = harness.services
    app = deployed(harness, owner, "restarted")
    await s.deployments.converge(app.id)
    await s.dynos.restart_named(owner, app, "web.1")
    await s.dynos.restart_named(owner, app, "web")  # `ps:restart web`: every web dyno
    assert harness.dynos.restarts[-2:] == [(app.id, None, "web.1"), (app.id, "web", None)]
    with pytest.raises(NotFound):
        await s.dynos.restart_named(owner, app, "web.7")
    with pytest.raises(NotFound, match="process type"):
        await s.dynos.restart_named(owner, app, "clock")
    assert "Restart web by user owner@example.com" in harness.logs.messages(app.id)


async def test_restarting_what_does_not_run_is_a_no_op(harness: Harness, owner: UserView) -> None:
    """As on Heroku (202, nothing done), not an error naming the app's id."""
    s = harness.services
    fresh = s.apps.create(owner, "never-pushed")
    await s.dynos.restart(owner, fresh)
    app = deployed(harness, owner, "workerless")
    await s.deployments.converge(app.id)
    await s.dynos.restart(owner, app, process_type="worker")  # scaled to 0
    assert harness.dynos.restarts == []
    await s.dynos.restart(owner, app)
    assert harness.dynos.restarts == [(app.id, None, None)]


async def test_one_off_input_is_checked(harness: Harness, owner: UserView) -> None:
    s = harness.services
    empty = s.apps.create(owner, "no-code")
    with pytest.raises(InvalidParams, match="deploy it first"):
        await s.dynos.run(owner, empty, "bash")
    app = deployed(harness, owner, "runs")
    for command, env in (("", None), ("ls", {"1BAD": "x"}), ("ls", ["A"])):
        with pytest.raises(InvalidParams):
            await s.dynos.run(owner, app, command, env)
    info = await s.dynos.run(owner, app, "ls -la", {"A": 1}, attach=True)
    assert info.type == "run" and info.attach_url and info.attach_url.startswith("rendezvous://")
