"""Pipeline promotions: the source app's current code, released on each target, no build.

Cedar copies the slug (the tarball is hard-linked, so pruning one app's slugs never breaks
another's release; into the target's region's data root for a space's app); Fir copies the
OCI image record, the image itself staying in the registry by digest, unless the target
keeps its images in another registry (another region's): then the image is copied there
first, in the background, and the target's release follows it (the target stays `pending`
without a release meanwhile, which Heroku's CLI polls through). Each target gets a new release with its own config vars; a release
command runs through the release phase (services/release_phase.py), its output on the
release's `output_stream_url` as Heroku's CLI streams it. A target whose release command
fails is `failed` with a message; the promotion is `completed` once no target is pending.
A promotion that a platform restart interrupted has its pending targets failed on start.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import shutil
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from spruce.store.db import Store
from spruce.store.models import (
    App,
    OciImage,
    PipelinePromotion,
    PipelinePromotionTarget,
    Release,
    Slug,
)

from .apps import Apps
from .errors import InvalidParams, NotFound, ServiceError
from .model import Generation, ReleaseStatus
from .pipelines import Pipelines, downstream_stage
from .ports import ImageBuildRunner
from .release_phase import PhaseOutcome, ReleasePhase
from .releases import Releases
from .views import Ref, UserView

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PromotionTargetView:
    id: str
    app: Ref
    release_id: str | None
    status: str
    error_message: str | None
    promotion_id: str


@dataclass(frozen=True)
class PromotionView:
    id: str
    pipeline: Ref
    source_app: Ref
    source_release_id: str
    status: str
    created_at: dt.datetime
    updated_at: dt.datetime


def _ident(value: object, *path: str) -> str | None:
    """value[path[0]][path[1]]...: `{"app": {"id": X}}` as the CLI sends references."""
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    if isinstance(value, dict):
        value = value.get("id") or value.get("name")
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True)
class PromotionPlan:
    """What `pipelines:promote -a APP [--to A,B]` promotes: from where, to which apps."""

    pipeline: Ref
    source: Ref
    target_stage: str | None
    """None when the targets were named (--to)."""
    targets: tuple[Ref, ...]

    def body(self) -> dict[str, object]:
        return {
            "pipeline": {"id": self.pipeline.id},
            "source": {"app": {"id": self.source.id}},
            "targets": [{"app": {"id": t.id}} for t in self.targets],
        }


class _CopyFirst(Exception):
    """The target keeps its images in another registry: copy the image there first."""


class Promotions:
    def __init__(
        self,
        store: Store,
        apps: Apps,
        pipelines: Pipelines,
        releases: Releases,
        release_phase: ReleasePhase,
        slugs_dir: Path | Callable[[str], Path],
        images: ImageBuildRunner | None = None,
    ) -> None:
        """`slugs_dir`: where a target app's slug copies go (by app id: its region's
        root for a space's app); `images` copies a Fir image to another registry."""
        self.store = store
        self.apps = apps
        self.pipelines = pipelines
        self.releases = releases
        self.release_phase = release_phase
        where = slugs_dir
        self._slugs_dir: Callable[[str], Path] = (
            where if callable(where) else (lambda _app_id: Path(where))
        )
        self.images = images
        self._tasks: set[asyncio.Task[None]] = set()

    # -- views ---------------------------------------------------------------------------
    def get(self, actor: UserView, promotion_id: str) -> PromotionView:
        with self.store.session() as s:
            row = s.get(PipelinePromotion, promotion_id) if _is_uuid(promotion_id) else None
            if row is None:
                raise NotFound("Couldn't find that pipeline promotion.")
            p = self.pipelines.find_row(s, actor, row.pipeline_id)
            source = s.get(App, row.source_app_id)
            return PromotionView(
                row.id,
                Ref(p.id, p.name),
                Ref(row.source_app_id, source.name if source else ""),
                row.source_release_id,
                row.status,
                row.created_at,
                row.updated_at,
            )

    def targets(self, actor: UserView, promotion_id: str) -> list[PromotionTargetView]:
        self.get(actor, promotion_id)
        with self.store.session() as s:
            rows = list(
                s.scalars(
                    select(PipelinePromotionTarget)
                    .where(PipelinePromotionTarget.promotion_id == promotion_id)
                    .order_by(PipelinePromotionTarget.ordinal)
                )
            )
            names = self.apps.names([r.app_id for r in rows])
            return [
                PromotionTargetView(
                    r.id,
                    Ref(r.app_id, names.get(r.app_id, "")),
                    r.release_id,
                    r.status,
                    r.error_message,
                    r.promotion_id,
                )
                for r in rows
            ]

    # -- promoting -------------------------------------------------------------------------
    def plan(
        self, actor: UserView, app_identity: str, to: Sequence[str] | None = None
    ) -> PromotionPlan:
        """The targets as Heroku's CLI picks them: the named apps of the pipeline, or all
        apps of the next stage (development -> staging -> production)."""
        app = self.apps.get(actor, app_identity)
        coupling = self.pipelines.coupling_of_app_id(app.id)
        if coupling is None:
            raise NotFound(f"{app.name} is not part of any pipeline.")
        members = {
            a.id: a
            for a in self.apps.list_for(actor)
            if a.id in set(self.pipelines.app_ids(coupling.pipeline.id))
        }
        if to:
            targets = []
            for name in to:
                if name in (app.name, app.id):
                    raise InvalidParams(
                        f"Cannot promote from an app to itself: {name}. "
                        "Specify a different target app."
                    )
                found = [a for a in members.values() if name in (a.name, a.id)]
                if not found:
                    raise NotFound(f"Cannot find app {name} in the pipeline.")
                targets.append(found[0].ref)
            return PromotionPlan(coupling.pipeline, app.ref, None, tuple(targets))
        stage = downstream_stage(coupling.stage)
        if stage is None:
            raise InvalidParams(f"Cannot promote {app.name} from '{coupling.stage}' stage")
        ids = self.pipelines.app_ids(coupling.pipeline.id, [stage])
        refs = tuple(members[i].ref for i in ids if i in members)
        if not refs:
            raise InvalidParams(
                f"Cannot promote from {app.name} as there are no downstream apps in {stage} stage"
            )
        return PromotionPlan(coupling.pipeline, app.ref, stage, refs)

    def create(self, actor: UserView, body: object) -> PromotionView:
        """POST /pipeline-promotions {pipeline: {id}, source: {app: {id}}, targets: [...]}.
        Needs a running loop: the targets are released in the background."""
        return self.start(actor, self.check(actor, body))

    def check(self, actor: UserView, body: object) -> str:
        """Validate a promotion and record it pending (store work only): its id."""
        pipe_ident = _ident(body, "pipeline")
        source_ident = _ident(body, "source", "app")
        raw_targets = body.get("targets") if isinstance(body, dict) else None
        if pipe_ident is None:
            raise InvalidParams("pipeline is required.")
        if source_ident is None:
            raise InvalidParams("source.app is required.")
        if not isinstance(raw_targets, list) or not raw_targets:
            raise InvalidParams("targets must list at least one app.")
        target_idents = [_ident(t, "app") for t in raw_targets]
        with self.store.session() as s:
            p = self.pipelines.find_row(s, actor, pipe_ident)
            members = set(self.pipelines.app_ids(p.id))
            source = Apps.find_row(s, source_ident)
            self.apps.check_access(s, source, actor)
            if source.id not in members:
                raise InvalidParams(f"{source.name} is not in the pipeline {p.name}.")
            targets: list[App] = []
            for ident in target_idents:
                if ident is None:
                    raise InvalidParams("Each target needs an app.")
                app = Apps.find_row(s, ident)
                self.apps.check_access(s, app, actor, need="deploy")  # a release on it
                if app.id == source.id:
                    raise InvalidParams(f"Cannot promote from an app to itself: {app.name}.")
                if app.id not in members:
                    raise InvalidParams(f"{app.name} is not in the pipeline {p.name}.")
                if app.id not in {t.id for t in targets}:
                    targets.append(app)
            current = s.scalar(
                select(Release)
                .where(Release.app_id == source.id, Release.status == ReleaseStatus.SUCCEEDED)
                .order_by(Release.version.desc())
                .limit(1)
            )
            if current is None or not (current.slug_id or current.oci_image_id):
                raise InvalidParams(
                    f"{source.name} has no release with code to promote: deploy it first."
                )
            promo = PipelinePromotion(
                pipeline_id=p.id,
                source_app_id=source.id,
                source_release_id=current.id,
                status="pending",
            )
            s.add(promo)
            s.flush()
            for i, app in enumerate(targets):
                s.add(
                    PipelinePromotionTarget(
                        promotion_id=promo.id, app_id=app.id, status="pending", ordinal=i
                    )
                )
            promo_id = promo.id
            target_rows = [
                (r.id, r.app_id)
                for r in s.scalars(
                    select(PipelinePromotionTarget)
                    .where(PipelinePromotionTarget.promotion_id == promo_id)
                    .order_by(PipelinePromotionTarget.ordinal)
                )
            ]
        # The targets' releases exist before the caller hears of the promotion: Heroku's CLI
        # streams a lone target's release phase as soon as it sees the release.
        for target_id, app_id in target_rows:
            self._release_target(actor, promo_id, target_id, app_id)
        return promo_id

    def _release_target(
        self, actor: UserView, promotion_id: str, target_id: str, app_id: str
    ) -> None:
        try:
            release_id, pending = self._release_on(actor, promotion_id, app_id)
        except _CopyFirst:
            return  # pending, without a release until the image is copied (_run)
        except ServiceError as e:
            self._update_target(target_id, status="failed", error_message=e.message)
            return
        except Exception as e:
            log.exception("promotion %s to app %s failed", promotion_id, app_id)
            self._update_target(
                target_id, status="failed", error_message=f"Internal error: {type(e).__name__}"
            )
            return
        if pending:
            self._update_target(target_id, release_id=release_id)
        else:
            self._update_target(target_id, release_id=release_id, status="succeeded")

    def start(self, actor: UserView, promotion_id: str) -> PromotionView:
        """Run the release phases of a checked promotion's targets in the background (on
        the loop); the promotion is completed once none is pending."""
        task = asyncio.get_running_loop().create_task(self._run(promotion_id, actor))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return self.get(actor, promotion_id)

    async def _run(self, promotion_id: str, actor: UserView) -> None:
        with self.store.session() as s:
            rows = s.scalars(
                select(PipelinePromotionTarget).where(
                    PipelinePromotionTarget.promotion_id == promotion_id,
                    PipelinePromotionTarget.status == "pending",
                )
            )
            targets = [(r.id, r.release_id, r.app_id) for r in rows]

        async def one(target_id: str, release_id: str | None, app_id: str) -> None:
            if release_id is None:  # its image goes to its own registry first
                release_id = await self._copied_release(actor, promotion_id, target_id, app_id)
            if release_id is not None:
                await self._phase(target_id, release_id)

        try:
            await asyncio.gather(*(one(t, r, a) for t, r, a in targets))
        finally:
            with self.store.session() as s:
                promo = s.get(PipelinePromotion, promotion_id)
                if promo is not None:
                    promo.status = "completed"

    async def _copied_release(
        self, actor: UserView, promotion_id: str, target_id: str, app_id: str
    ) -> str | None:
        """Copy the source's image to the target's registry, then release it there: the
        release id when its release phase is to run."""
        try:
            with self.store.session() as s:
                promo = s.get_one(PipelinePromotion, promotion_id)
                release = s.get(Release, promo.source_release_id)
                image = s.get(OciImage, release.oci_image_id or "") if release else None
                if image is None:
                    raise NotFound("The OCI image of the source app's release is gone.")
                ref = f"{image.image_repo}@{image.digest}"
            assert self.images is not None  # _CopyFirst is raised only with images
            repo = await self.images.copy_image(ref, app_id)
            release_id, pending = self._release_on(actor, promotion_id, app_id, image_repo=repo)
        except ServiceError as e:
            self._update_target(target_id, status="failed", error_message=e.message)
            return None
        except Exception as e:
            log.warning(
                "promotion %s: copying the image to app %s failed: %s", promotion_id, app_id, e
            )
            self._update_target(
                target_id,
                status="failed",
                error_message="The image could not be copied to the target app's registry.",
            )
            return None
        if pending:
            self._update_target(target_id, release_id=release_id)
            return release_id
        self._update_target(target_id, release_id=release_id, status="succeeded")
        return None

    async def _phase(self, target_id: str, release_id: str) -> None:
        try:
            outcome = await self.release_phase.run(release_id)
        except asyncio.CancelledError:
            self._update_target(
                target_id, status="failed", error_message="The promotion was interrupted."
            )
            raise
        if outcome == PhaseOutcome.SUCCEEDED:
            self._update_target(target_id, status="succeeded")
        elif outcome == PhaseOutcome.FAILED:
            self._update_target(
                target_id, status="failed", error_message="The release command failed."
            )
        else:
            self._update_target(
                target_id,
                status="failed",
                error_message="The release phase could not run; see the release output.",
            )

    def _update_target(self, target_id: str, **fields: object) -> None:
        with self.store.session() as s:
            row = s.get(PipelinePromotionTarget, target_id)
            if row is not None:
                for k, v in fields.items():
                    setattr(row, k, v)

    def _release_on(
        self, actor: UserView, promotion_id: str, app_id: str, image_repo: str | None = None
    ) -> tuple[str, bool]:
        """Copy the source release's code to `app_id` and release it there: (release id,
        whether its release phase is to run). A Fir image in another registry than the
        target's raises _CopyFirst, unless `image_repo` says where it was copied."""
        with self.store.session() as s:
            promo = s.get_one(PipelinePromotion, promotion_id)
            source_release = s.get(Release, promo.source_release_id)
            source = s.get(App, promo.source_app_id)
            target = s.get(App, app_id)
            if source_release is None or source is None:
                raise NotFound("The source app or its release is gone.")
            if target is None:
                raise NotFound("The target app is gone.")
            if target.generation != source.generation:
                raise InvalidParams("Apps in a pipeline must be of the same generation.")
            slug_id: str | None = None
            image_id: str | None = None
            commit: str | None = None
            if source.generation == Generation.FIR:
                image = s.get(OciImage, source_release.oci_image_id or "")
                if image is None:
                    raise NotFound(f"The OCI image of {source.name}'s release is gone.")
                if image_repo is None and self._elsewhere(image.image_repo, app_id):
                    raise _CopyFirst
                copy = OciImage(
                    app_id=app_id,
                    digest=image.digest,
                    image_repo=image_repo or image.image_repo,
                    architecture=image.architecture,
                    base_image_name=image.base_image_name,
                    base_top_layer=image.base_top_layer,
                    commit=image.commit,
                    commit_description=image.commit_description,
                    process_types=dict(image.process_types or {}),
                    buildpacks=list(image.buildpacks or []),
                )
                s.add(copy)
                s.flush()
                image_id, commit = copy.id, image.commit
            else:
                slug = s.get(Slug, source_release.slug_id or "")
                if slug is None:
                    raise NotFound(f"The slug of {source.name}'s release is gone.")
                path = self._copy_slug_file(slug.path, self._slugs_dir(app_id))
                copied = Slug(
                    app_id=app_id,
                    checksum=slug.checksum,
                    size=slug.size,
                    path=path,
                    commit=slug.commit,
                    commit_description=slug.commit_description,
                    buildpack_provided_description=slug.buildpack_provided_description,
                    process_types=dict(slug.process_types or {}),
                    stack=slug.stack,
                )
                s.add(copied)
                if slug.size is not None:
                    target.slug_size = slug.size
                if slug.buildpack_provided_description:
                    target.buildpack_provided_description = slug.buildpack_provided_description
                s.flush()
                slug_id, commit = copied.id, slug.commit
            version = source_release.version
            source_name = source.name
        short = f" {commit[:7]}" if commit else ""
        release = self.releases.create(
            actor,
            app_id,
            f"Promote {source_name} v{version}{short}",
            slug_id=slug_id,
            oci_image_id=image_id,
            phase_by_caller=True,
        )
        return release.id, release.status == ReleaseStatus.PENDING

    def _elsewhere(self, image_repo: str, app_id: str) -> bool:
        """Whether the app keeps its images in another registry than `image_repo`'s."""
        if self.images is None:
            return False
        mine = self.images.image_repository(app_id)
        return mine.split("/", 1)[0] != image_repo.split("/", 1)[0]

    def _copy_slug_file(self, path: str | None, slugs_dir: Path) -> str | None:
        if not path or not os.path.exists(path):
            return path  # a slug without a file (POST /slugs metadata only): nothing to copy
        slugs_dir.mkdir(parents=True, exist_ok=True)
        dest = slugs_dir / f"{uuid.uuid4()}{''.join(Path(path).suffixes) or '.tgz'}"
        try:
            os.link(path, dest)
        except OSError:
            shutil.copy2(path, dest)
        return str(dest)

    # -- lifecycle -------------------------------------------------------------------------
    def recover(self) -> None:
        """On start: promotions a stop or crash cut short end, their pending targets failed."""
        cut: list[str] = []
        with self.store.session() as s:
            for promo in s.scalars(
                select(PipelinePromotion).where(PipelinePromotion.status == "pending")
            ):
                for t in s.scalars(
                    select(PipelinePromotionTarget).where(
                        PipelinePromotionTarget.promotion_id == promo.id,
                        PipelinePromotionTarget.status == "pending",
                    )
                ):
                    t.status = "failed"
                    t.error_message = "The platform restarted during the promotion."
                    if t.release_id:
                        cut.append(t.release_id)
                promo.status = "completed"
        for release_id in cut:  # their release phases will not run again: no release stays pending
            release = self.releases.find(release_id)
            if release is not None and release.status == ReleaseStatus.PENDING:
                self.releases.finish(release_id, False)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
        return True
    except ValueError:
        return False
