"""The release phase: one entry point, and no release is ever left pending."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from service_fakes import Harness

from spruce.services.views import AppView, UserView


async def settle(harness: Harness, until: object = None, timeout: float = 5.0) -> None:
    """Let the background work the events started run."""
    for _ in range(int(timeout / 0.01)):
        await asyncio.sleep(0.01)
        if until is not None and until():  # type: ignore[operator]
            return
    if until is not None:
        raise AssertionError("condition not reached")


def app_with_release_phase(harness: Harness, owner: UserView) -> AppView:
    app = harness.services.apps.create(owner, "phased")
    slug = harness.services.releases.create_slug(
        app.id, {"web": "serve", "release": "migrate"}, path=str(Path("/dev/null")), size=1
    )
    harness.services.releases.deploy_slug(owner, app.id, slug.id)
    return app


async def test_a_config_change_runs_the_phase_and_goes_live(
    harness: Harness, owner: UserView
) -> None:
    app = app_with_release_phase(harness, owner)
    r = harness.services.releases
    await settle(harness, lambda: r.get(app.id, "v2").status != "pending")
    assert r.get(app.id, "v2").status == "succeeded"
    harness.dynos.one_off_output = ["migrated 3 tables"]
    _, v3 = r.update_config(owner, app.id, {"A": "1"})
    assert v3 is not None and v3.status == "pending" and not v3.current
    await settle(harness, lambda: r.get(app.id, "v3").status != "pending")
    assert r.get(app.id, "v3").status == "succeeded" and r.get(app.id, "v3").current
    assert harness.dynos.one_offs[-1][1] == "migrate"
    path, running = r.output(v3.id)
    assert path is not None and not running
    assert "migrated 3 tables" in path.read_text()
    assert "Release command succeeded." in path.read_text()
    # The dynos converge on the release once it succeeded (the converge is a reaction of
    # its own, which may come a moment after the status).
    conv = harness.dynos.converged
    await settle(harness, lambda: bool(conv) and conv[-1].release_id == v3.id)
    assert conv[-1].release_id == v3.id


async def test_a_failing_command_fails_the_release(harness: Harness, owner: UserView) -> None:
    harness.dynos.one_off_exit = 3
    app = app_with_release_phase(harness, owner)
    r = harness.services.releases
    await settle(harness, lambda: r.get(app.id, "v2").status != "pending")
    failed = r.get(app.id, "v2")
    assert failed.status == "failed" and not failed.current
    assert r.current(app.id).version == 1  # type: ignore[union-attr]
    assert harness.dynos.converged == []
    path, _ = r.output(failed.id)
    assert path is not None and "failed (exit status 3)" in path.read_text()


async def test_a_platform_fault_fails_the_release_with_a_message(
    harness: Harness, owner: UserView, caplog: pytest.LogCaptureFixture
) -> None:
    harness.dynos.one_off_fault = RuntimeError("the backend broke")
    app = app_with_release_phase(harness, owner)
    r = harness.services.releases
    await settle(harness, lambda: r.get(app.id, "v2").status != "pending")
    release = r.get(app.id, "v2")
    assert release.status == "failed"
    path, _ = r.output(release.id)
    assert path is not None
    assert "The release phase could not run: RuntimeError" in path.read_text()
    assert any("Release v2 failed: RuntimeError" in m for m in harness.logs.messages(app.id))
    assert "Traceback" not in caplog.text


async def test_a_fault_during_a_build_fails_build_and_release(
    harness: Harness, owner: UserView, tmp_path: Path
) -> None:
    app = harness.services.apps.create(owner, "built")
    src = tmp_path / "src"
    src.mkdir()
    (src / "Procfile").write_text("web: serve\nrelease: migrate\n")
    harness.dynos.one_off_fault = OSError("no more processes")
    builds = harness.services.builds
    build = builds.create_pending(owner, app.id, {"url": "git:abc", "version": "abc1234"})
    lines: list[str] = []
    result = await builds.run(owner, build, src, lines.append)
    assert result.status == "failed"
    assert result.release_id is not None
    assert harness.services.releases.get(app.id, result.release_id).status == "failed"
    assert any("The release phase could not run: OSError" in ln for ln in lines)


async def test_destroying_the_app_cancels_its_release_phase(
    harness: Harness, owner: UserView, caplog: pytest.LogCaptureFixture
) -> None:
    harness.dynos.one_off_delay = 30.0  # a long migration
    app = app_with_release_phase(harness, owner)
    await settle(harness, lambda: harness.dynos.one_offs)
    with caplog.at_level(logging.WARNING):
        await harness.services.delete_app(owner, app.id)
        await settle(harness, timeout=0.2)
    assert "Traceback" not in caplog.text and "NotFound" not in caplog.text
    assert app.id in harness.dynos.removed
    assert harness.services.release_phase._tasks.get(app.id) is None
