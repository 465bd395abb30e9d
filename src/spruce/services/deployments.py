"""Keeps every app's dynos converged on its current release and formation.

The store says what should run; this turns it into an `AppRuntime` and hands it to the
dyno backend whenever a release goes live, the formation or the app changes. Converges of
one app are coalesced: a burst of changes makes at most one more converge.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from spruce.store.db import Store
from spruce.store.models import App, AppFeature, Formation, OciImage, Release, Slug

from .errors import InvalidParams, NotFound, ServiceError
from .events import (
    AppChanged,
    AppDeleted,
    AppDeleting,
    EventBus,
    FormationChanged,
    ReleaseCreated,
    ReleaseFinished,
)
from .model import AppRuntime, ImageArtifact, ReleaseStatus, SlugArtifact
from .oci_images import display_commands
from .ports import DynoBackend
from .settings import AppSettings
from .spaces import space_network

log = logging.getLogger(__name__)


class Deployments:
    def __init__(
        self,
        store: Store,
        events: EventBus,
        backend: DynoBackend,
        otlp_endpoint: Callable[[str], str] | None = None,
    ) -> None:
        self.store = store
        self.backend = backend
        self.otlp_endpoint = otlp_endpoint
        self._pending: dict[str, asyncio.Task[None]] = {}
        self._again: set[str] = set()
        self._deleting: set[str] = set()
        events.subscribe(ReleaseCreated, self._on_release_created)
        events.subscribe(ReleaseFinished, self._on_release_finished)
        events.subscribe(FormationChanged, lambda e: self.schedule(e.app_id))
        events.subscribe(AppChanged, lambda e: self.schedule(e.app_id))
        events.subscribe(AppDeleting, self._on_deleting)
        events.subscribe(AppDeleted, lambda e: self._deleting.discard(e.app_id))

    # -- desired state -------------------------------------------------------------------
    def _metadata(self, s: Session, app: App, release: Release) -> dict[str, str]:
        """Heroku's dyno metadata, on by default on Fir (the OTel resource comes from it)."""
        meta = {
            "HEROKU_APP_ID": app.id,
            "HEROKU_APP_NAME": app.name,
            "HEROKU_RELEASE_VERSION": f"v{release.version}",
            "HEROKU_RELEASE_CREATED_AT": release.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        image = s.get(OciImage, release.oci_image_id) if release.oci_image_id else None
        if image is not None and image.commit:
            meta["HEROKU_SLUG_COMMIT"] = image.commit
            meta["HEROKU_BUILD_COMMIT"] = image.commit
            meta["HEROKU_SLUG_DESCRIPTION"] = release.description
        if self.otlp_endpoint is not None:
            meta["OTEL_EXPORTER_OTLP_ENDPOINT"] = self.otlp_endpoint(app.id)
            meta["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf"
            meta["OTEL_SERVICE_NAME"] = app.name
        return meta

    def app_runtime(self, app_id: str, release_id: str | None = None) -> AppRuntime | None:
        """What should run for an app: its current release (or `release_id`), or None when
        it has no code yet. InvalidParams when the release's slug was pruned."""
        with self.store.session() as s:
            app = s.get(App, app_id)
            if app is None:
                raise NotFound("Couldn't find that app.")
            if release_id is not None:
                release = s.get(Release, release_id)
            else:
                release = s.scalar(
                    select(Release)
                    .where(Release.app_id == app_id, Release.status == ReleaseStatus.SUCCEEDED)
                    .order_by(Release.version.desc())
                    .limit(1)
                )
            if release is None:
                return None
            artifact, image = None, None
            if release.oci_image_id:
                row = s.get(OciImage, release.oci_image_id)
                if row is None:
                    return None
                image = ImageArtifact(row.id, f"{row.image_repo}@{row.digest}", row.digest)
                process_types = display_commands(dict(row.process_types or {}))
            else:
                slug = s.get(Slug, release.slug_id) if release.slug_id else None
                if slug is None:
                    return None
                if slug.path:
                    artifact = SlugArtifact(slug.id, Path(slug.path))
                elif slug.size:
                    raise InvalidParams(
                        "This release's slug was pruned; deploy again or roll back to a newer "
                        "release."
                    )
                process_types = dict(slug.process_types or {})
            formation = {
                f.type: (f.quantity, f.size)
                for f in s.scalars(select(Formation).where(Formation.app_id == app_id))
            }
            features = set(
                s.scalars(
                    select(AppFeature.name).where(
                        AppFeature.app_id == app_id, AppFeature.enabled.is_(True)
                    )
                )
            )
            return AppRuntime(
                app_id=app.id,
                app_name=app.name,
                release_id=release.id,
                release_version=release.version,
                slug=artifact,
                process_types=process_types,
                formation=formation,
                config=dict(release.config or {}),
                features=features,
                boot_timeout=float(AppSettings.from_stored(app.settings).boot_timeout),
                generation=app.generation,
                image=image,
                region=app.region or "",
                metadata=self._metadata(s, app, release) if image is not None else {},
                network=space_network(s, app.space_id) if app.space_id else None,
            )

    # -- converging ----------------------------------------------------------------------
    def _on_release_created(self, event: ReleaseCreated) -> None:
        if not event.pending:
            self.schedule(event.app_id)

    def _on_release_finished(self, event: ReleaseFinished) -> None:
        if event.succeeded:  # a failed release never runs
            self.schedule(event.app_id)

    def schedule(self, app_id: str) -> None:
        if app_id in self._deleting:
            return  # its add-ons' detach releases must not bring dynos back
        task = self._pending.get(app_id)
        if task is not None and not task.done():
            self._again.add(app_id)
            return
        self._pending[app_id] = asyncio.get_running_loop().create_task(self._converge_loop(app_id))

    async def _converge_loop(self, app_id: str) -> None:
        while True:
            self._again.discard(app_id)
            try:
                await self.converge(app_id)
            except Exception:
                log.exception("converging %s failed", app_id)
            if app_id not in self._again:
                return

    async def converge(self, app_id: str) -> None:
        try:
            runtime = self.app_runtime(app_id)
        except NotFound:
            return  # deleted meanwhile
        if runtime is not None:
            await self.backend.converge(runtime)

    def wanted_runtimes(self) -> list[AppRuntime]:
        """Every app that should run dynos, in a constant number of queries (at start)."""
        with self.store.session() as s:
            formations: dict[str, dict[str, tuple[int, str]]] = {}
            for app_id, ptype, quantity, size in s.execute(
                select(Formation.app_id, Formation.type, Formation.quantity, Formation.size)
            ):
                formations.setdefault(app_id, {})[ptype] = (quantity, size)
            wanted = [a for a, f in formations.items() if any(q for q, _ in f.values())]
            if not wanted:
                return []
            latest = (
                select(Release.app_id, func.max(Release.version).label("version"))
                .where(Release.status == ReleaseStatus.SUCCEEDED, Release.app_id.in_(wanted))
                .group_by(Release.app_id)
                .subquery()
            )
            releases = s.scalars(
                select(Release).join(
                    latest,
                    (Release.app_id == latest.c.app_id) & (Release.version == latest.c.version),
                )
            ).all()
            slugs = {
                slug.id: slug
                for slug in s.scalars(
                    select(Slug).where(Slug.id.in_([r.slug_id for r in releases if r.slug_id]))
                )
            }
            apps = {a.id: a for a in s.scalars(select(App).where(App.id.in_(wanted)))}
            features: dict[str, set[str]] = {}
            for app_id, name in s.execute(
                select(AppFeature.app_id, AppFeature.name).where(
                    AppFeature.enabled.is_(True), AppFeature.app_id.in_(wanted)
                )
            ):
                features.setdefault(app_id, set()).add(name)
            out = []
            # Fir apps and apps in a space: one by one below.
            images = {
                r.app_id
                for r in releases
                if r.oci_image_id or (r.app_id in apps and apps[r.app_id].space_id)
            }
            for release in releases:
                if release.app_id in images:
                    continue
                slug = slugs.get(release.slug_id or "")
                app = apps.get(release.app_id)
                if slug is None or app is None or (slug.size and not slug.path):
                    continue
                out.append(
                    AppRuntime(
                        app_id=app.id,
                        app_name=app.name,
                        release_id=release.id,
                        release_version=release.version,
                        slug=SlugArtifact(slug.id, Path(slug.path)) if slug.path else None,
                        process_types=dict(slug.process_types or {}),
                        formation=formations.get(app.id, {}),
                        config=dict(release.config or {}),
                        features=features.get(app.id, set()),
                        boot_timeout=float(AppSettings.from_stored(app.settings).boot_timeout),
                        generation=app.generation,
                    )
                )
        for app_id in sorted(images):
            try:
                runtime = self.app_runtime(app_id)
            except ServiceError:
                continue  # the app went away meanwhile
            if runtime is not None:
                out.append(runtime)
        return out

    async def converge_all(self) -> None:
        """At start: bring back every app's dynos (apps scaled to zero have nothing to do)."""
        for runtime in self.wanted_runtimes():
            try:
                await self.backend.converge(runtime)
            except Exception:
                log.exception("bringing back the dynos of %s failed", runtime.app_name)

    def _on_deleting(self, event: AppDeleting) -> None:
        self._deleting.add(event.app_id)
        task = self._pending.pop(event.app_id, None)
        if task is not None:
            task.cancel()

    async def remove(self, app_id: str) -> None:
        """Stop every dyno of an app that is going away."""
        self._on_deleting(AppDeleting(app_id))
        await self.backend.remove_app(app_id)

    async def stop(self) -> None:
        for task in self._pending.values():
            task.cancel()
        await asyncio.gather(*self._pending.values(), return_exceptions=True)
