"""Pipelines: who sees and changes them, couplings of one generation, promotions that copy
the source's code and run the release phase, review-app config and stale review apps."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from service_fakes import Harness

from spruce.services.appjson import parse_app_json
from spruce.services.errors import Forbidden, InvalidParams, NotFound
from spruce.services.views import AppView, UserView


async def settle(until: object, timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.01)):
        await asyncio.sleep(0.01)
        if until():  # type: ignore[operator]
            return
    raise AssertionError("condition not reached")


def deployed(harness: Harness, owner: UserView, name: str, tmp_path: Path) -> AppView:
    s = harness.services
    app = s.apps.create(owner, name)
    tarball = tmp_path / f"{name}.tgz"
    tarball.write_bytes(b"slug bytes")
    slug = s.releases.create_slug(
        app.id,
        {"web": "serve", "release": "migrate"},
        commit="a" * 40,
        path=str(tarball),
        size=10,
    )
    s.releases.deploy_slug(owner, app.id, slug.id)
    return app


def test_pipelines_are_seen_by_owner_and_app_collaborators(
    harness: Harness, owner: UserView, other: UserView
) -> None:
    s = harness.services
    p = s.pipelines.create(owner, "shop")
    assert p.owner_type == "user" and p.owner_id == owner.id and p.generation == "cedar"
    assert [x.name for x in s.pipelines.list_for(owner, "shop")] == ["shop"]
    assert s.pipelines.list_for(other) == []
    with pytest.raises(NotFound):
        s.pipelines.get(other, p.id)
    app = s.apps.create(owner, "shop-staging")
    s.pipelines.couple(owner, app.name, p.id, "staging")
    s.collaborators.add(owner, app.id, other.email)
    assert s.pipelines.get(other, "shop").id == p.id  # through the app it collaborates on
    with pytest.raises(Forbidden):
        s.pipelines.rename(other, p.id, "shop2")
    assert s.pipelines.rename(owner, p.id, "shop2").name == "shop2"
    with pytest.raises(InvalidParams):
        s.pipelines.create(owner, "Bad_Name")


def test_couplings_share_a_generation_and_one_pipeline_per_app(
    harness: Harness, owner: UserView, other: UserView
) -> None:
    s = harness.services
    p = s.pipelines.create(owner, "gens")
    fir = s.apps.create(owner, "gens-fir", generation="fir")
    with pytest.raises(InvalidParams, match="same generation"):
        s.pipelines.couple(owner, fir.id, p.id, "staging")
    cedar = s.apps.create(owner, "gens-cedar")
    c = s.pipelines.couple(owner, cedar.id, {"id": p.id}, "development")
    with pytest.raises(InvalidParams, match="already a part of the pipeline gens"):
        s.pipelines.couple(owner, cedar.id, p.id, "staging")
    with pytest.raises(InvalidParams, match="Stage must be one of"):
        s.pipelines.update_coupling(owner, c.id, "qa")
    assert s.pipelines.update_coupling(owner, c.id, "staging").stage == "staging"
    with pytest.raises(Forbidden):
        s.pipelines.coupling(other, c.id)
    firs = s.pipelines.create(owner, "firs", generation={"name": "fir"})
    assert s.pipelines.couple(owner, fir.id, firs.id, "production").stage == "production"
    s.pipelines.uncouple(owner, c.id)
    with pytest.raises(NotFound):
        s.pipelines.coupling_for_app(owner, cedar.id)
    s.pipelines.delete(owner, firs.id)
    assert s.pipelines.coupling_of_app_id(fir.id) is None  # the coupling went with it


async def test_promotion_copies_the_slug_and_runs_the_release_phase(
    harness: Harness, owner: UserView, tmp_path: Path
) -> None:
    s = harness.services
    source = deployed(harness, owner, "flow-dev", tmp_path)
    await settle(lambda: s.releases.get(source.id, "v2").status != "pending")
    stg = s.apps.create(owner, "flow-staging")
    prod = s.apps.create(owner, "flow-prod")
    s.releases.update_config(owner, prod.id, {"ONLY_PROD": "1"})
    p = s.pipelines.create(owner, "flow")
    for app, stage in ((source, "development"), (stg, "staging"), (prod, "production")):
        s.pipelines.couple(owner, app.id, p.id, stage)

    plan = s.promotions.plan(owner, source.name)
    assert plan.target_stage == "staging" and [t.name for t in plan.targets] == [stg.name]
    with pytest.raises(InvalidParams, match="from an app to itself"):
        s.promotions.plan(owner, source.name, [source.name])
    with pytest.raises(InvalidParams, match="from 'production' stage"):
        s.promotions.plan(owner, prod.name)

    harness.dynos.one_off_output = ["migrating for the promotion"]
    promo = s.promotions.create(
        owner, s.promotions.plan(owner, source.name, ["flow-staging", "flow-prod"]).body()
    )
    await settle(lambda: s.promotions.get(owner, promo.id).status == "completed")
    targets = s.promotions.targets(owner, promo.id)
    assert [(t.app.name, t.status) for t in targets] == [
        (stg.name, "succeeded"),
        (prod.name, "succeeded"),
    ]
    for t in targets:
        release = s.releases.find(t.release_id or "")
        assert release is not None and release.current
        assert release.description == f"Promote {source.name} v2 aaaaaaa"
        slug = s.releases.slug(release.slug_id)
        assert slug is not None and slug.app_id == t.app.id and slug.commit == "a" * 40
        path, _ = s.releases.output(release.id)
        assert path is not None and "migrating for the promotion" in path.read_text()
    # the target keeps its own config vars
    assert s.releases.current_config(prod.id)[1] == {"ONLY_PROD": "1"}
    assert s.releases.current_config(stg.id)[1] == {}
    # the copy is its own file: the source pruning its slug does not break the target
    src_slug = s.releases.slug(s.releases.current(source.id).slug_id)  # type: ignore[union-attr]
    stg_slug = s.releases.slug(s.releases.current(stg.id).slug_id)  # type: ignore[union-attr]
    assert src_slug is not None and stg_slug is not None
    assert s.releases.slug_file(stg_slug.id)[0] != s.releases.slug_file(src_slug.id)[0]

    # a failing release command fails that target, with a message
    harness.dynos.one_off_exit = 1
    promo = s.promotions.create(owner, s.promotions.plan(owner, stg.name).body())
    await settle(lambda: s.promotions.get(owner, promo.id).status == "completed")
    (target,) = s.promotions.targets(owner, promo.id)
    assert target.status == "failed" and target.error_message == "The release command failed."


async def test_promotion_needs_code_and_pipeline_members(
    harness: Harness, owner: UserView, other: UserView, tmp_path: Path
) -> None:
    s = harness.services
    empty = s.apps.create(owner, "bare-dev")
    stg = s.apps.create(owner, "bare-staging")
    outsider = s.apps.create(owner, "bare-outside")
    p = s.pipelines.create(owner, "bare")
    s.pipelines.couple(owner, empty.id, p.id, "development")
    s.pipelines.couple(owner, stg.id, p.id, "staging")
    body = {"pipeline": {"id": p.id}, "source": {"app": {"id": empty.id}}}
    with pytest.raises(InvalidParams, match="no release with code"):
        s.promotions.check(owner, body | {"targets": [{"app": {"id": stg.id}}]})
    with pytest.raises(InvalidParams, match="is not in the pipeline"):
        s.promotions.check(owner, body | {"targets": [{"app": {"id": outsider.id}}]})
    with pytest.raises(NotFound):
        s.promotions.check(other, body | {"targets": [{"app": {"id": stg.id}}]})


def test_recover_fails_what_a_restart_cut_short(
    harness: Harness, owner: UserView, tmp_path: Path
) -> None:
    s = harness.services
    source = deployed(harness, owner, "cut-dev", tmp_path)
    s.releases.finish(s.releases.get(source.id, "v2").id, True)
    stg = s.apps.create(owner, "cut-staging")
    p = s.pipelines.create(owner, "cut")
    s.pipelines.couple(owner, source.id, p.id, "development")
    s.pipelines.couple(owner, stg.id, p.id, "staging")
    promo_id = s.promotions.check(owner, s.promotions.plan(owner, source.id).body())
    s.promotions.recover()  # as on the next start
    assert s.promotions.get(owner, promo_id).status == "completed"
    (t,) = s.promotions.targets(owner, promo_id)
    assert t.status == "failed" and "restarted" in (t.error_message or "")
    release = s.releases.find(t.release_id or "")
    assert release is not None and release.status == "failed"  # not left pending


def test_app_json_review_environment_applies_over_the_top_level() -> None:
    text = (
        '{"env": {"A": "top", "B": {"value": "b"}}, "scripts": {"postdeploy": "seed"},'
        ' "environments": {"review": {"env": {"A": "review"}, "scripts": {}}}}'
    )
    top = parse_app_json(text)
    review = parse_app_json(text, "review")
    assert top.env["A"].value == "top" and top.scripts == {"postdeploy": "seed"}
    assert review.env["A"].value == "review" and review.env["B"].value == "b"
    assert review.scripts == {}
    assert parse_app_json(text, "test").env["A"].value == "top"


async def test_review_app_config_and_stale_sweep(
    harness: Harness, owner: UserView, other: UserView, tmp_path: Path
) -> None:
    s = harness.services
    p = s.pipelines.create(owner, "rev")
    with pytest.raises(NotFound, match="not enabled"):
        s.review_apps.config(owner, p.id)
    with pytest.raises(NotFound):
        s.review_apps.configure(other, p.id, {}, True)
    c = s.review_apps.configure(owner, p.id, {"destroy_stale_apps": True, "stale_days": 2}, True)
    assert c.destroy_stale_apps and c.stale_days == 2 and c.repo is None
    with pytest.raises(InvalidParams, match="stale_days"):
        s.review_apps.configure(owner, p.id, {"stale_days": 90}, False)
    with pytest.raises(InvalidParams, match="source_blob.url"):
        s.review_apps.create(owner, {"branch": "x", "pipeline": p.id})

    # a review app as its setup leaves it: created, then stale after two "days"
    from spruce.store.models import ReviewApp

    app = s.apps.create(owner, "rev-pr-1")
    s.pipelines.couple(owner, app.id, p.id, "review")
    with s.store.session() as db:
        row = ReviewApp(pipeline_id=p.id, app_id=app.id, branch="x", status="created")
        db.add(row)
        db.flush()
        review_id = row.id
    assert s.review_apps.stale() == []
    harness.clock.advance(days=2, seconds=1)
    assert s.review_apps.stale() == [(review_id, app.id)]
    assert await s.review_apps.sweep() == 1
    with pytest.raises(NotFound):
        s.apps.get(owner, app.id)
    assert s.review_apps.get(owner, review_id).status == "deleted"
    assert s.review_apps.list(owner, p.id) == []


async def test_a_fir_promotion_releases_the_source_image(
    harness: Harness, owner: UserView, tmp_path: Path
) -> None:
    s = harness.services
    src = tmp_path / "src"
    src.mkdir()
    (src / "Procfile").write_text("release: migrate\nweb: serve\n")
    dev = s.apps.create(owner, "fire-dev", generation="fir")
    build = s.builds.create_pending(owner, dev.id, {"url": "git:1", "version": "b" * 40})
    assert (await s.builds.run(owner, build, src, lambda _: None)).status == "succeeded"
    stg = s.apps.create(owner, "fire-staging", generation="fir")
    p = s.pipelines.create(owner, "fire", generation="fir")
    s.pipelines.couple(owner, dev.id, p.id, "development")
    s.pipelines.couple(owner, stg.id, p.id, "staging")
    promo = s.promotions.create(owner, s.promotions.plan(owner, dev.id).body())
    await settle(lambda: s.promotions.get(owner, promo.id).status == "completed")
    (target,) = s.promotions.targets(owner, promo.id)
    assert target.status == "succeeded", target
    release = s.releases.find(target.release_id or "")
    assert release is not None and release.slug_id is None and release.oci_image_id
    source_image = s.oci_images.list(dev.id)[0]
    image = s.oci_images.get(stg.id, release.oci_image_id)
    assert image.digest == source_image.digest and image.commit == "b" * 40
    runtime, command, name = harness.dynos.one_offs[-1]
    assert name.startswith("release.") and runtime.app_id == stg.id
    assert runtime.image is not None and runtime.image.digest == source_image.digest


async def test_a_fir_promotion_to_another_registry_copies_the_image_first(
    harness: Harness, owner: UserView, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The target keeps its images elsewhere (another region's registry): the image is
    copied there, then released; the target is pending without a release meanwhile."""
    s = harness.services
    src = tmp_path / "src"
    src.mkdir()
    (src / "Procfile").write_text("web: serve\n")
    dev = s.apps.create(owner, "firx-dev", generation="fir")
    build = s.builds.create_pending(owner, dev.id, {"url": "git:1", "version": "c" * 40})
    assert (await s.builds.run(owner, build, src, lambda _: None)).status == "succeeded"
    far = s.apps.create(owner, "firx-far", generation="fir")
    p = s.pipelines.create(owner, "firx", generation="fir")
    s.pipelines.couple(owner, dev.id, p.id, "development")
    s.pipelines.couple(owner, far.id, p.id, "staging")
    images = harness.images
    plain = images.image_repository
    monkeypatch.setattr(
        images,
        "image_repository",
        lambda app_id: f"far.test/apps/{app_id}" if app_id == far.id else plain(app_id),
    )
    copied = asyncio.Event()
    copies: list[tuple[str, str]] = []

    async def copy_image(image: str, app_id: str) -> str:
        await copied.wait()
        copies.append((image, app_id))
        return images.image_repository(app_id)

    monkeypatch.setattr(images, "copy_image", copy_image)
    promo = s.promotions.create(owner, s.promotions.plan(owner, dev.id).body())
    (waiting,) = s.promotions.targets(owner, promo.id)
    assert waiting.status == "pending" and waiting.release_id is None  # copying first
    copied.set()
    await settle(lambda: s.promotions.get(owner, promo.id).status == "completed")
    (target,) = s.promotions.targets(owner, promo.id)
    assert target.status == "succeeded", target
    source_image = s.oci_images.list(dev.id)[0]
    assert copies == [(f"{source_image.image_repo}@{source_image.digest}", far.id)]
    release = s.releases.find(target.release_id or "")
    assert release is not None and release.oci_image_id
    image = s.oci_images.get(far.id, release.oci_image_id)
    assert image.image_repo == f"far.test/apps/{far.id}" and image.digest == source_image.digest

    async def broken(image: str, app_id: str) -> str:
        raise RuntimeError("registry down")

    monkeypatch.setattr(images, "copy_image", broken)
    again = s.promotions.create(owner, s.promotions.plan(owner, dev.id).body())
    await settle(lambda: s.promotions.get(owner, again.id).status == "completed")
    (failed,) = s.promotions.targets(owner, again.id)
    assert failed.status == "failed" and "could not be copied" in (failed.error_message or "")


async def test_a_promotion_to_a_space_app_copies_the_slug_to_its_region(
    harness: Harness, owner: UserView, tmp_path: Path
) -> None:
    s = harness.services
    source = deployed(harness, owner, "slugr-dev", tmp_path)
    await settle(lambda: s.releases.get(source.id, "v2").status != "pending")
    s.teams.create(owner, "slugrtm")
    space = s.spaces.create(owner, "slugrsp", "slugrtm")
    s.spaces.allocate(space.id)
    placement = s.spaces.placement(owner, None, "slugrsp", None)
    far = s.apps.create(owner, "slugr-far", placement=placement)
    p = s.pipelines.create(owner, "slugr")
    s.pipelines.couple(owner, source.id, p.id, "development")
    s.pipelines.couple(owner, far.id, p.id, "staging")
    promo = s.promotions.create(owner, s.promotions.plan(owner, source.id).body())
    await settle(lambda: s.promotions.get(owner, promo.id).status == "completed")
    slug = s.releases.slug(s.releases.current(far.id).slug_id)  # type: ignore[union-attr]
    assert slug is not None
    path = Path(s.releases.slug_file(slug.id)[0] or "")
    region = s.builds.home / "regions" / space.region / "slugs"
    assert path.parent == region and path.is_file()
