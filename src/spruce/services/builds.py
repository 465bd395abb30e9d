"""Builds: source in, slug and release out.

One build per app at a time (later ones queue). A failed build leaves no slug, no release
and the running release untouched. Cedar apps build with classic buildpacks into a slug
(the BuildRunner port); Fir apps with Cloud Native Buildpacks into an OCI image pushed to the
registry (the ImageBuildRunner port), which the release then runs instead of a slug. A slug that declares a `release` process makes a
pending release whose release phase (streamed into the build) decides whether it goes live.
"""

from __future__ import annotations

import asyncio
import builtins
import shutil
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from spruce.store.db import Store
from spruce.store.models import App, Build, BuildpackInstallation, User

from .errors import InvalidParams, NotFound
from .events import ApiActivity, AppDeleting, BuildFinished, EventBus
from .model import BuildFailed, BuildRequest, BuildStatus, Generation, ImageBuildRequest
from .oci_images import OciImages, current_image
from .ports import BuildRunner, ImageBuildRunner, Output
from .regions import region_root
from .release_phase import PhaseOutcome, ReleasePhase
from .releases import Releases
from .settings import PlatformAddresses
from .sources import Sources
from .views import BuildView, UserView


@dataclass(frozen=True)
class BuildSettings:
    timeout: float = 15 * 60.0
    slug_retention: int = 20  # slugs of the newest N releases (and builds) are kept
    run_as: tuple[int, int] | None = None
    slug_limit: int = 500 * 2**20  # Heroku's: a bigger compressed slug fails the build
    slug_soft_limit: int = 300 * 2**20  # above it, a warning


class Builds:
    def __init__(
        self,
        store: Store,
        events: EventBus,
        releases: Releases,
        release_phase: ReleasePhase,
        runner: BuildRunner,
        sources: Sources,
        addresses: PlatformAddresses,
        home: Path,
        settings: BuildSettings | None = None,
        *,
        images: ImageBuildRunner,
        oci_images: OciImages,
    ) -> None:
        self.store = store
        self.images = images
        self.oci_images = oci_images
        self.events = events
        self.releases = releases
        self.release_phase = release_phase
        self.runner = runner
        self.sources = sources
        self.addresses = addresses
        self.home = Path(home)
        self.settings = settings or BuildSettings()
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: dict[str, set[asyncio.Task[BuildView]]] = {}
        for d in ("builds", "slugs", "cache", "work"):
            (self.home / d).mkdir(parents=True, exist_ok=True)
        events.subscribe(AppDeleting, lambda e: self.cancel(e.app_id))

    def data_root(self, app_id: str) -> Path:
        """Where an app's build work, cache, slugs and build logs go: its region's data
        root when it runs in a space (data residency), else the platform's home."""
        with self.store.session() as s:
            app = s.get(App, app_id)
            if app is None or not app.space_id or not app.region:
                return self.home
        root = region_root(self.home, app.region)
        for d in ("builds", "slugs", "cache", "work"):
            (root / d).mkdir(parents=True, exist_ok=True)
        return root

    # -- buildpack installations -----------------------------------------------------------
    def buildpacks(self, app_id: str) -> builtins.list[str]:
        with self.store.session() as s:
            return self._buildpacks(s, app_id)

    @staticmethod
    def _buildpacks(s: Session, app_id: str) -> builtins.list[str]:
        rows = s.scalars(
            select(BuildpackInstallation.url)
            .where(BuildpackInstallation.app_id == app_id)
            .order_by(BuildpackInstallation.ordinal)
        )
        return builtins.list(rows)

    def set_buildpacks(self, app_id: str, urls: object) -> builtins.list[str]:
        if not isinstance(urls, builtins.list):
            raise InvalidParams("updates must be a list of {buildpack}.")
        clean: builtins.list[str] = []
        for u in urls:
            if isinstance(u, dict):
                u = u.get("buildpack") or u.get("url") or u.get("name")
            if not isinstance(u, str) or not u.strip():
                raise InvalidParams("Each buildpack needs a name or URL.")
            clean.append(u.strip())
        if len(set(clean)) != len(clean):
            raise InvalidParams("The same buildpack is listed twice.")
        with self.store.session() as s:
            for r in s.scalars(
                select(BuildpackInstallation).where(BuildpackInstallation.app_id == app_id)
            ):
                s.delete(r)
            s.flush()
            for i, u in enumerate(clean):
                s.add(BuildpackInstallation(app_id=app_id, ordinal=i, url=u))
        return clean

    # -- views ---------------------------------------------------------------------------
    def _view(self, b: Build, email: str | None) -> BuildView:
        blob = b.source_blob or {}
        return BuildView(
            id=b.id,
            app_id=b.app_id,
            status=b.status,
            user_id=b.user_id,
            user_email=email,
            source_blob={
                k: blob.get(k) for k in ("checksum", "url", "version", "version_description")
            },
            buildpacks=tuple(b.buildpacks or ()),
            slug_id=b.slug_id,
            release_id=b.release_id,
            stack=b.stack,
            output_stream_url=self.addresses.stream_url("builds", b.id),
            created_at=b.created_at,
            updated_at=b.updated_at,
            oci_image_id=b.oci_image_id,
        )

    def _view_of(self, s: Session, b: Build) -> BuildView:
        user = s.get(User, b.user_id) if b.user_id else None
        return self._view(b, user.email if user else None)

    def get(self, app_id: str, build_id: str) -> BuildView:
        with self.store.session() as s:
            b = s.get(Build, build_id)
            if b is None or b.app_id != app_id:
                raise NotFound("Couldn't find that build.")
            return self._view_of(s, b)

    def find(self, build_id: str) -> BuildView | None:
        with self.store.session() as s:
            b = s.get(Build, build_id)
            return self._view_of(s, b) if b is not None else None

    def output(self, build_id: str) -> tuple[Path | None, bool]:
        """The build's output file, and whether the build is still running."""
        with self.store.session() as s:
            b = s.get(Build, build_id)
            if b is None or not b.output_path:
                return None, False
            return Path(b.output_path), b.status == BuildStatus.PENDING

    def list(self, app_id: str) -> builtins.list[BuildView]:
        with self.store.session() as s:
            rows = s.execute(
                select(Build, User.email)
                .outerjoin(User, User.id == Build.user_id)
                .where(Build.app_id == app_id)
                .order_by(Build.created_at)
            )
            return [self._view(b, email) for b, email in rows]

    # -- running builds ----------------------------------------------------------------------
    def create_pending(
        self,
        actor: UserView | None,
        app_id: str,
        source_blob: object,
        buildpacks: object = None,
    ) -> BuildView:
        if (
            not isinstance(source_blob, dict)
            or not isinstance(source_blob.get("url"), str)
            or not source_blob["url"]
        ):
            raise InvalidParams("source_blob.url is required.")
        blob = {
            k: source_blob.get(k) for k in ("url", "version", "checksum", "version_description")
        }
        packs = self._requested_buildpacks(buildpacks)
        with self.store.session() as s:
            app = s.get(App, app_id)
            if app is None:
                raise NotFound("Couldn't find that app.")
            b = Build(
                app_id=app_id,
                user_id=actor.id if actor else None,
                source_blob=blob,
                buildpacks=packs if packs is not None else self._buildpacks(s, app_id),
                stack=app.build_stack,
                status=BuildStatus.PENDING,
            )
            s.add(b)
            s.flush()
            root = self._log_root(app)
            b.output_path = str(root / "builds" / f"{b.id}.log")
            Path(b.output_path).touch()
            return self._view_of(s, b)

    @staticmethod
    def _requested_buildpacks(packs: object) -> builtins.list[str] | None:
        if packs is None:
            return None
        if not isinstance(packs, builtins.list):
            raise InvalidParams("buildpacks must be a list.")
        raw = [p.get("url") or p.get("name") if isinstance(p, dict) else p for p in packs]
        if not all(isinstance(u, str) and u for u in raw):
            raise InvalidParams("Each buildpack needs a url or name.")
        return [str(u) for u in raw]

    def lock(self, app_id: str) -> asyncio.Lock:
        return self._locks.setdefault(app_id, asyncio.Lock())

    async def run(
        self,
        actor: UserView | None,
        build: BuildView,
        source_dir: Path,
        output: Output | None = None,
    ) -> BuildView:
        """Build `source_dir` for `build`; streams lines to `output` and the build log."""
        emit = _BuildOutput(self._log_path(build.id), output)

        who = actor.email if actor else "Spruce"
        try:
            async with self.lock(build.app_id):
                self.events.publish(ApiActivity(build.app_id, f"Build started by user {who}"))
                try:
                    result = await self._run_locked(actor, build, source_dir, emit)
                except asyncio.CancelledError:
                    self._finish(build.id, BuildStatus.FAILED)
                    raise
                except Exception as e:  # an unexpected fault still fails the build cleanly
                    emit(f" !     Build failed: {type(e).__name__}")
                    result = self._finish(build.id, BuildStatus.FAILED)
        finally:
            emit.close()
        outcome = "succeeded" if result.status == BuildStatus.SUCCEEDED else "failed"
        self.events.publish(ApiActivity(build.app_id, f"Build {outcome}"))
        return result

    async def _run_locked(
        self, actor: UserView | None, build: BuildView, source_dir: Path, emit: _BuildOutput
    ) -> BuildView:
        with self.store.session() as s:
            app = s.get(App, build.app_id)
            generation = app.generation if app is not None else Generation.CEDAR
        if generation == Generation.FIR:
            return await self._run_fir(actor, build, source_dir, emit)
        app_id = build.app_id
        config = self.releases.config(app_id)
        root = self.data_root(app_id)
        work = root / "work" / build.id
        req = BuildRequest(
            source_dir=source_dir,
            work_dir=work,
            cache_dir=root / "cache" / app_id,
            slugs_dir=root / "slugs",
            buildpacks=list(build.buildpacks),
            env=config,
            stack=build.stack,
            timeout=self.settings.timeout,
            run_as=self.settings.run_as,
            buildpack_cache_dir=self.home / "cache" / "_buildpacks",
            source_version=build.source_blob.get("version"),
        )
        try:
            result = await self.runner.build(req, emit)
            self._check_slug_size(result.slug_size, result.slug_path, emit)
        except BuildFailed as e:
            if not emit.said(e.message):  # runners report their failure; the fake may not
                for line in e.message.splitlines():
                    emit(f" !     {line}")
            emit(" !     Push rejected, failed to compile app.")
            return self._finish(build.id, BuildStatus.FAILED)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        version = build.source_blob.get("version") or ""
        slug = self.releases.create_slug(
            app_id,
            result.process_types,
            commit=version or None,
            commit_description=build.source_blob.get("version_description"),
            buildpack_provided_description=result.buildpack_description,
            stack=result.stack,
            path=str(result.slug_path),
            size=result.slug_size,
            checksum=result.checksum,
        )
        # bin/release config_vars are defaults: they never override what the user set.
        defaults = {k: v for k, v in (result.config_vars or {}).items() if k not in config}
        if defaults:
            self.releases.update_config(
                actor,
                app_id,
                defaults,
                description=f"Set {', '.join(defaults)} config vars from the buildpack",
            )
        emit("-----> Launching...")
        short = version[:7] if version else slug.id[:7]
        release = self.releases.create(
            actor, app_id, f"Deploy {short}", slug_id=slug.id, phase_by_caller=True
        )
        if release.status == "pending":
            emit("-----> Running release command...")
            outcome = await self.release_phase.run(release.id, emit)
            if outcome == PhaseOutcome.FAULT:
                return self._finish(build.id, BuildStatus.FAILED, slug.id, release.id)
            if outcome == PhaseOutcome.FAILED:
                emit(" !     Release command failed: the previous release stays live.")
                return self._finish(build.id, BuildStatus.SUCCEEDED, slug.id, release.id)
        emit(f"       Released v{release.version}")
        emit(f"       {self._web_url(app_id)} deployed to Spruce")
        self.releases.prune_slugs(app_id, self.settings.slug_retention)
        return self._finish(build.id, BuildStatus.SUCCEEDED, slug.id, release.id)

    async def _run_fir(
        self, actor: UserView | None, build: BuildView, source_dir: Path, emit: Output
    ) -> BuildView:
        """A Fir build: the CNB phases stream as the lifecycle prints them, the image is
        pushed to the registry, and a release runs it (its release phase from the image)."""
        app_id = build.app_id
        with self.store.session() as s:
            previous = current_image(s, app_id)
            previous_ref = f"{previous.image_repo}@{previous.digest}" if previous else None
        root = self.data_root(app_id)
        work = root / "work" / build.id
        req = ImageBuildRequest(
            app_id=app_id,
            source_dir=source_dir,
            work_dir=work,
            cache_dir=root / "cache" / app_id / "cnb",
            buildpacks=list(build.buildpacks),
            env=self.releases.config(app_id),
            timeout=self.settings.timeout,
            source_version=build.source_blob.get("version"),
            previous_image=previous_ref,
            buildpack_cache_dir=self.home / "cache" / "_buildpacks",
        )
        try:
            result = await self.images.build_image(req, emit)
        except BuildFailed:
            # The lifecycle's ERROR: line is out already; say what it means for the push.
            emit(" !     Push rejected, failed to build app with Cloud Native Buildpacks.")
            return self._finish(build.id, BuildStatus.FAILED)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        version = build.source_blob.get("version") or ""
        image = self.oci_images.record(
            app_id, result, version or None, build.source_blob.get("version_description")
        )
        self._set_image(build.id, image.id)
        emit("-----> Launching...")
        short = version[:7] if version else image.digest.removeprefix("sha256:")[:7]
        release = self.releases.create(
            actor,
            app_id,
            f"Deploy {short}",
            slug_id=None,
            oci_image_id=image.id,
            phase_by_caller=True,
        )
        if release.status == "pending":
            emit("-----> Running release command...")
            outcome = await self.release_phase.run(release.id, emit)
            if outcome == PhaseOutcome.FAULT:
                return self._finish(build.id, BuildStatus.FAILED, None, release.id)
            if outcome == PhaseOutcome.FAILED:
                emit(" !     Release command failed: the previous release stays live.")
                return self._finish(build.id, BuildStatus.SUCCEEDED, None, release.id)
        emit(f"       Released v{release.version}")
        emit(f"       {self._web_url(app_id)} deployed to Spruce")
        return self._finish(build.id, BuildStatus.SUCCEEDED, None, release.id)

    def _set_image(self, build_id: str, image_id: str) -> None:
        with self.store.session() as s:
            b = s.get(Build, build_id)
            if b is not None:
                b.oci_image_id = image_id

    def _web_url(self, app_id: str) -> str:
        with self.store.session() as s:
            app = s.get(App, app_id)
            return self.addresses.web_url(app.name) if app is not None else ""

    def _check_slug_size(self, size: int, slug_path: Path, emit: Output) -> None:
        mib = size / 2**20
        if size > self.settings.slug_limit:
            slug_path.unlink(missing_ok=True)
            limit = self.settings.slug_limit / 2**20
            message = f"Compiled slug size: {mib:.0f}M is too large (max is {limit:.0f}M)."
            emit(f" !     {message}")
            emit(" !     Keep big files out of the slug with a .slugignore file.")
            raise BuildFailed(message)
        if size > self.settings.slug_soft_limit:
            soft = self.settings.slug_soft_limit / 2**20
            emit(
                f" !     Warning: Your slug size ({mib:.0f} MB) exceeds our soft limit "
                f"({soft:.0f} MB) which may affect boot time."
            )

    def _finish(
        self,
        build_id: str,
        status: BuildStatus,
        slug_id: str | None = None,
        release_id: str | None = None,
    ) -> BuildView:
        with self.store.session() as s:
            b = s.get(Build, build_id)
            if b is None:
                raise NotFound("Couldn't find that build.")
            b.status = status
            b.slug_id = slug_id
            b.release_id = release_id
            s.flush()
            view = self._view_of(s, b)
        self.events.publish(
            BuildFinished(view.app_id, build_id=view.id, succeeded=status == BuildStatus.SUCCEEDED)
        )
        return view

    def submit(self, actor: UserView | None, build: BuildView) -> None:
        """Run a pending API build in the background (fetch its source blob, build)."""
        task = asyncio.get_running_loop().create_task(self.run_from_blob(actor, build))
        tasks = self._tasks.setdefault(build.app_id, set())
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def cancel(self, app_id: str) -> None:
        for task in self._tasks.pop(app_id, set()):
            task.cancel()

    async def stop(self) -> None:
        tasks = [t for ts in self._tasks.values() for t in ts]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def run_from_blob(self, actor: UserView | None, build: BuildView) -> BuildView:
        url = str(build.source_blob.get("url") or "")
        try:
            async with self.sources.fetched(url) as src:
                return await self.run(actor, build, src)
        except InvalidParams as e:
            self._append_output(build.id, f" !     {e.message}")
            return self._finish(build.id, BuildStatus.FAILED)

    def _append_output(self, build_id: str, line: str) -> None:
        with open(self._log_path(build_id), "a") as f:
            f.write(line + "\n")

    def _log_root(self, app: App) -> Path:
        if not app.space_id or not app.region:
            return self.home
        root = region_root(self.home, app.region)
        (root / "builds").mkdir(parents=True, exist_ok=True)
        return root

    def _log_path(self, build_id: str) -> Path:
        """The build's log file, where create_pending put it (its app's region's root)."""
        path, _ = self.output(build_id)
        return path if path is not None else self.home / "builds" / f"{build_id}.log"


class _BuildOutput:
    """A build's output: its log file and the caller's stream. It remembers the error lines
    shown, so a failure the runner has already reported is not printed twice."""

    def __init__(self, log_path: Path, output: Output | None) -> None:
        self._file = open(log_path, "a", buffering=1, encoding="utf-8", errors="replace")  # noqa: SIM115
        self._output = output
        self._errors: set[str] = set()

    def __call__(self, line: str) -> None:
        self._file.write(line.rstrip("\n") + "\n")
        if line.startswith((" !", "ERROR:")):
            self._errors.add(line.removeprefix("ERROR:").lstrip(" !").strip())
        if self._output is not None:
            self._output(line)

    def said(self, message: str) -> bool:
        first = message.strip().splitlines()[0].strip() if message.strip() else ""
        return first in self._errors

    def close(self) -> None:
        self._file.close()
