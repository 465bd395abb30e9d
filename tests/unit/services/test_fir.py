"""Fir apps: CNB builds make an OCI image and a release that runs it (no slug); the
oci-image resource; image deploys and rollbacks; Fir sizes and the cnb stack."""

from __future__ import annotations

from pathlib import Path

import pytest
from service_fakes import Harness

from spruce.services.errors import InvalidParams, NotFound
from spruce.services.views import AppView, UserView

PROCFILE = "web: serve\nworker: work\n"


def source(tmp_path: Path, procfile: str = PROCFILE, name: str = "src") -> Path:
    src = tmp_path / name
    src.mkdir(exist_ok=True)
    (src / "Procfile").write_text(procfile)
    return src


async def pushed(
    harness: Harness, owner: UserView, tmp_path: Path, name: str = "firapp", **kw: str
) -> tuple[AppView, list[str]]:
    s = harness.services
    app = s.apps.create(owner, name, generation="fir")
    build = s.builds.create_pending(owner, app.id, {"url": "git:1", "version": "abcdef123456"})
    lines: list[str] = []
    done = await s.builds.run(owner, build, source(tmp_path, **kw), lines.append)
    assert done.status == "succeeded", lines
    return s.apps.get(owner, app.id), lines


def test_a_fir_app_has_the_cnb_stack_and_no_stack_setting(
    harness: Harness, owner: UserView
) -> None:
    s = harness.services
    app = s.apps.create(owner, "firstack", generation="fir")
    assert app.stack == "cnb" and app.build_stack == "cnb" and app.image is None
    with pytest.raises(InvalidParams, match="no stack setting"):
        s.apps.create(owner, "firstack2", stack="heroku-24", generation="fir")
    with pytest.raises(InvalidParams, match="no stack setting"):
        s.apps.update(owner, app.id, build_stack="heroku-24")
    assert s.apps.create(owner, "cedarapp").stack == "heroku-24"


async def test_a_fir_build_releases_an_image_not_a_slug(
    harness: Harness, owner: UserView, tmp_path: Path
) -> None:
    s = harness.services
    app, lines = await pushed(harness, owner, tmp_path)
    assert "===> EXPORTING" in lines and lines[-2] == "       Released v2"
    assert lines[-1] == f"       {app.web_url} deployed to Spruce"
    assert harness.builds.requests == []  # the classic runner never ran
    request = harness.images.requests[-1]
    assert request.app_id == app.id and request.previous_image is None
    assert request.cache_dir.parent.name == app.id  # the app's own CNB cache
    release = s.releases.current(app.id)
    assert release is not None and release.slug_id is None and release.oci_image_id
    image = s.oci_images.get(app.id, release.oci_image_id)
    assert image.commit == "abcdef123456" and image.image_repo == f"registry.test/apps/{app.id}"
    assert release.description == "Deploy abcdef1"
    # The app shows what its current image was built with.
    assert app.image is not None and app.image.base_image_name == "spruce/base:test"
    assert [b["id"] for b in app.image.buildpacks] == ["heroku/procfile"]
    # Formation from the image's process types, in Fir's default size.
    rows = {f.type: (f.quantity, f.size, f.command) for f in s.formation.list(app.id)}
    assert rows == {
        "web": (1, "dyno-1c-0.5gb", "bash -c 'serve'"),
        "worker": (0, "dyno-1c-0.5gb", "bash -c 'work'"),
    }
    # The dyno backend gets the image (by digest) instead of a slug.
    runtime = s.deployments.app_runtime(app.id)
    assert runtime is not None and runtime.slug is None and runtime.image is not None
    assert runtime.image.image == f"{image.image_repo}@{image.digest}"
    assert runtime.generation == "fir" and runtime.process_types["web"] == "bash -c 'serve'"
    await s.deployments.converge(app.id)
    assert harness.dynos.converged[-1].image == runtime.image


async def test_the_next_build_reuses_the_current_image(
    harness: Harness, owner: UserView, tmp_path: Path
) -> None:
    s = harness.services
    app, _ = await pushed(harness, owner, tmp_path)
    first = s.oci_images.list(app.id)[0]
    build = s.builds.create_pending(owner, app.id, {"url": "git:2", "version": "2" * 12})
    await s.builds.run(owner, build, source(tmp_path, "web: serve2\n", "src2"), lambda _: None)
    assert harness.images.requests[-1].previous_image == f"{first.image_repo}@{first.digest}"
    assert len(s.oci_images.list(app.id)) == 2


async def test_a_failed_fir_build_changes_nothing(
    harness: Harness, owner: UserView, tmp_path: Path
) -> None:
    s = harness.services
    app = s.apps.create(owner, "firfail", generation="fir")
    harness.images.fail_with = "No buildpack groups passed detection."
    build = s.builds.create_pending(owner, app.id, {"url": "git:3"})
    lines: list[str] = []
    done = await s.builds.run(owner, build, source(tmp_path), lines.append)
    assert done.status == "failed" and done.release_id is None and done.oci_image_id is None
    assert "ERROR: No buildpack groups passed detection." in lines
    assert " !     Push rejected, failed to build app with Cloud Native Buildpacks." in lines
    assert [r.version for r in s.releases.list(app.id)] == [1] and s.oci_images.list(app.id) == []


async def test_the_release_phase_of_an_image_runs_its_release_process(
    harness: Harness, owner: UserView, tmp_path: Path
) -> None:
    s = harness.services
    app = s.apps.create(owner, "firrel", generation="fir")
    build = s.builds.create_pending(owner, app.id, {"url": "git:4", "version": "4" * 12})
    lines: list[str] = []
    done = await s.builds.run(
        owner, build, source(tmp_path, "release: migrate\nweb: serve\n"), lines.append
    )
    assert done.status == "succeeded" and "Release command succeeded." in " ".join(lines)
    runtime, command, name = harness.dynos.one_offs[-1]
    assert name.startswith("release.") and runtime.image is not None
    assert command == "bash -c 'migrate'"
    # listed as Heroku lists it, at quantity 0: never run as dynos
    assert {f.type: f.quantity for f in s.formation.list(app.id)}["release"] == 0
    with pytest.raises(InvalidParams, match="release cannot be scaled"):
        s.formation.update(owner, app.id, [{"type": "release", "quantity": "1"}])
    assert s.formation.update(owner, app.id, [{"type": "release", "quantity": 0}])[0].quantity == 0


async def test_rollback_redeploys_the_earlier_image(
    harness: Harness, owner: UserView, tmp_path: Path
) -> None:
    s = harness.services
    app, _ = await pushed(harness, owner, tmp_path)
    v2 = s.releases.current(app.id)
    build = s.builds.create_pending(owner, app.id, {"url": "git:5", "version": "5" * 12})
    await s.builds.run(owner, build, source(tmp_path, "web: other\n", "src5"), lambda _: None)
    assert v2 is not None
    back = s.releases.rollback(owner, app.id, str(v2.version))
    assert back.oci_image_id == v2.oci_image_id and back.slug_id is None
    assert back.description == "Rollback to v2"
    runtime = s.deployments.app_runtime(app.id)
    assert runtime is not None and runtime.image is not None
    assert runtime.image.id == v2.oci_image_id


async def test_oci_images_resource_rules(harness: Harness, owner: UserView, tmp_path: Path) -> None:
    s = harness.services
    app, _ = await pushed(harness, owner, tmp_path)
    built = s.oci_images.list(app.id)[0]
    # Found by id or by digest, as an array.
    assert [i.id for i in s.oci_images.find(app.id, built.id)] == [built.id]
    assert [i.id for i in s.oci_images.find(app.id, built.digest)] == [built.id]
    with pytest.raises(NotFound):
        s.oci_images.find(app.id, "sha256:" + "f" * 64)
    body = {
        "digest": built.digest,
        "architecture": "amd64",
        "base_image_name": "spruce/base:test",
        "stack": "cnb",
        "process_types": {"web": {"command": "/cnb/process/web", "default": True}},
        "buildpacks": [{"id": "heroku/procfile", "version": "0.1.0"}],
    }
    made = await s.oci_images.create(app.id, body)
    assert made.image_repo == f"registry.test/apps/{app.id}"
    assert made.process_types["web"]["working_dir"] == "/workspace"
    for bad, message in [
        ({**body, "digest": "latest"}, "digest must be"),
        ({**body, "digest": "sha256:" + "0" * 64}, "push it first"),
        ({**body, "image_repo": "elsewhere.test/x"}, "this app's repository"),
        ({**body, "stack": "heroku-24"}, "stack must be cnb"),
        ({**body, "process_types": {"bad name": {}}}, "Invalid process type"),
        ({**body, "process_types": {"web": {"colour": "red"}}}, "unknown fields"),
        ({**body, "buildpacks": [{"version": "1"}]}, "needs an id"),
    ]:
        with pytest.raises(InvalidParams, match=message):
            await s.oci_images.create(app.id, bad)
    cedar = s.apps.create(owner, "cedarimg")
    with pytest.raises(InvalidParams, match="for Fir apps"):
        await s.oci_images.create(cedar.id, body)
    # POST /releases {oci_image}: Fir only, the app's own images only.
    release = s.releases.deploy_image(owner, app.id, made.id)
    assert release.oci_image_id == made.id and release.description.startswith("Deploy ")
    with pytest.raises(InvalidParams, match="release slugs"):
        s.releases.deploy_image(owner, cedar.id, made.id)
    other = s.apps.create(owner, "otherfir", generation="fir")
    with pytest.raises(NotFound):
        s.releases.deploy_image(owner, other.id, made.id)
    slug = s.releases.create_slug(app.id, {"web": "x"})
    with pytest.raises(InvalidParams, match="release OCI images"):
        s.releases.deploy_slug(owner, app.id, slug.id)


async def test_sizes_follow_the_generation(
    harness: Harness, owner: UserView, tmp_path: Path
) -> None:
    s = harness.services
    app, _ = await pushed(harness, owner, tmp_path)
    rows = s.formation.update(owner, app.id, [{"type": "web", "size": "dyno-2c-8gb"}])
    assert rows[0].size == "dyno-2c-8gb"
    with pytest.raises(InvalidParams, match="for a fir app"):
        s.formation.update(owner, app.id, [{"type": "web", "size": "standard-1x"}])
    cedar = s.apps.create(owner, "cedarsize")
    build = s.builds.create_pending(owner, cedar.id, {"url": "git:6"})
    await s.builds.run(owner, build, source(tmp_path, name="src6"), lambda _: None)
    with pytest.raises(InvalidParams, match="for a cedar app"):
        s.formation.update(owner, cedar.id, [{"type": "web", "size": "dyno-2c-8gb"}])


async def test_a_restart_brings_back_fir_dynos_too(
    harness: Harness, owner: UserView, tmp_path: Path
) -> None:
    s = harness.services
    fir, _ = await pushed(harness, owner, tmp_path, name="fir-back")
    cedar = s.apps.create(owner, "cedar-back")
    slug = s.releases.create_slug(cedar.id, {"web": "serve"}, path=str(tmp_path), size=1)
    s.releases.deploy_slug(owner, cedar.id, slug.id)
    wanted = {r.app_id: r for r in s.deployments.wanted_runtimes()}
    assert set(wanted) == {fir.id, cedar.id}
    assert wanted[fir.id].image is not None and wanted[fir.id].slug is None
    assert wanted[cedar.id].slug is not None and wanted[cedar.id].image is None
