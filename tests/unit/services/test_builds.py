"""Builds: a slug and a release on success, nothing changed on failure."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from service_fakes import Harness

from spruce.services.builds import BuildSettings
from spruce.services.errors import InvalidParams
from spruce.services.model import BuildFailed
from spruce.services.views import UserView


def source(tmp_path: Path, procfile: str = "web: serve\nworker: work\n") -> Path:
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    (src / "Procfile").write_text(procfile)
    return src


async def test_a_build_makes_a_slug_a_release_and_the_formation(
    harness: Harness, owner: UserView, tmp_path: Path
) -> None:
    s = harness.services
    app = s.apps.create(owner, "built")
    build = s.builds.create_pending(owner, app.id, {"url": "git:1", "version": "0123456789"})
    assert build.status == "pending" and build.output_stream_url.endswith(build.id)
    lines: list[str] = []
    done = await s.builds.run(owner, build, source(tmp_path), lines.append)
    assert done.status == "succeeded" and done.slug_id and done.release_id
    release = s.releases.get(app.id, done.release_id)
    assert release.description == "Deploy 0123456" and release.current
    assert {f.type: f.quantity for f in s.formation.list(app.id)} == {"web": 1, "worker": 0}
    assert lines[-2:] == ["       Released v2", "       http://built.apps.test/ deployed to Spruce"]
    path, running = s.builds.output(build.id)
    assert path is not None and not running and "Faking a build" in path.read_text()
    assert "Build succeeded" in harness.logs.messages(app.id)


async def test_a_failed_build_changes_nothing(
    harness: Harness, owner: UserView, tmp_path: Path
) -> None:
    s = harness.services
    app = s.apps.create(owner, "broken")
    harness.builds.fail_with = "No default language could be detected for this app."
    build = s.builds.create_pending(owner, app.id, {"url": "git:2"})
    lines: list[str] = []
    done = await s.builds.run(owner, build, source(tmp_path), lines.append)
    assert done.status == "failed" and done.slug_id is None and done.release_id is None
    assert " !     Push rejected, failed to compile app." in lines
    assert [r.version for r in s.releases.list(app.id)] == [1]
    # A runner that did not print its failure gets it printed, once.
    assert lines.count(" !     No default language could be detected for this app.") == 1


async def test_a_failure_the_runner_reported_reads_once(
    harness: Harness, owner: UserView, tmp_path: Path
) -> None:
    s = harness.services
    app = s.apps.create(owner, "reported")
    message = "No default language could be detected for this app."

    class Reporting(type(harness.builds)):  # type: ignore[misc]
        async def build(self, request: Any, output: Any) -> Any:
            output(" !")
            output(f" !     {message}")
            raise BuildFailed(message)

    s.builds.runner = Reporting()
    build = s.builds.create_pending(owner, app.id, {"url": "git:4"})
    lines: list[str] = []
    await s.builds.run(owner, build, source(tmp_path), lines.append)
    assert lines.count(f" !     {message}") == 1
    assert lines[-1] == " !     Push rejected, failed to compile app."


async def test_slug_size_limits(harness: Harness, owner: UserView, tmp_path: Path) -> None:
    """Heroku's limits on the compressed slug: a warning above the soft one, a failed build
    (and no slug kept) above the hard one."""
    s = harness.services
    app = s.apps.create(owner, "heavy")
    src = source(tmp_path)
    (src / "blob.bin").write_bytes(os.urandom(300_000))
    s.builds.settings = BuildSettings(slug_limit=2**20, slug_soft_limit=100_000)
    lines: list[str] = []
    build = s.builds.create_pending(owner, app.id, {"url": "git:5"})
    done = await s.builds.run(owner, build, src, lines.append)
    assert done.status == "succeeded"
    assert any("exceeds our soft limit (0 MB)" in line for line in lines), lines
    (src / "blob.bin").write_bytes(os.urandom(3 * 2**20))
    lines.clear()
    slugs = set((harness_home(s) / "slugs").iterdir())
    build = s.builds.create_pending(owner, app.id, {"url": "git:6"})
    done = await s.builds.run(owner, build, src, lines.append)
    assert done.status == "failed" and done.slug_id is None
    assert " !     Compiled slug size: 3M is too large (max is 1M)." in lines
    assert lines[-1] == " !     Push rejected, failed to compile app."
    assert lines.count(" !     Compiled slug size: 3M is too large (max is 1M).") == 1
    assert set((harness_home(s) / "slugs").iterdir()) == slugs  # the big slug is gone
    assert [r.version for r in s.releases.list(app.id)] == [1, 2]


def harness_home(s: Any) -> Path:
    return Path(s.builds.home)


async def test_a_runner_fault_fails_the_build_cleanly(
    harness: Harness, owner: UserView, tmp_path: Path
) -> None:
    s = harness.services
    app = s.apps.create(owner, "faulty")
    harness.builds.fault = PermissionError("/cache is not writable")
    build = s.builds.create_pending(owner, app.id, {"url": "git:3"})
    lines: list[str] = []
    done = await s.builds.run(owner, build, source(tmp_path), lines.append)
    assert done.status == "failed"
    assert lines[-1] == " !     Build failed: PermissionError"
    assert "/cache" not in "\n".join(lines)  # the fault's text stays in the platform's log


async def test_build_input_is_checked(harness: Harness, owner: UserView) -> None:
    s = harness.services
    app = s.apps.create(owner, "inputs")
    with pytest.raises(InvalidParams, match="source_blob.url"):
        s.builds.create_pending(owner, app.id, {"version": "x"})
    with pytest.raises(InvalidParams, match="buildpacks"):
        s.builds.create_pending(owner, app.id, {"url": "https://x/y.tgz"}, "heroku/python")
    assert s.builds.set_buildpacks(app.id, [{"buildpack": "heroku/python"}, "heroku/nodejs"]) == [
        "heroku/python",
        "heroku/nodejs",
    ]
    with pytest.raises(InvalidParams, match="twice"):
        s.builds.set_buildpacks(app.id, ["a", "a"])
    assert s.builds.buildpacks(app.id) == ["heroku/python", "heroku/nodejs"]
