"""Builds: source in, slug and release out.

One build per app at a time (later ones queue). A failed build leaves no slug, no release
and the running release untouched. A slug that declares a `release` process makes a
pending release; the release phase (run by the runtime) decides whether it goes live.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import os
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from spruce.compile import (
    BuildFailed,
    BuildRequest,
    SourceArchiveError,
    extract_source_tarball,
    run_build,
)
from spruce.store.db import Store
from spruce.store.models import App, Build, BuildpackInstallation, Release, Slug, User

from .errors import InvalidParams, NotFound
from .events import EventBus
from .releases import Releases

Output = Callable[[str], None]
ReleasePhase = Callable[[Release, Output], Awaitable[bool]]
MAX_SOURCE_BYTES = 500 * 1024 * 1024


@dataclass
class BuildSettings:
    timeout: float = 15 * 60.0
    slug_retention: int = 20  # slugs of the newest N releases (and builds) are kept
    run_as: tuple[int, int] | None = None


class Builds:
    def __init__(
        self,
        store: Store,
        events: EventBus,
        releases: Releases,
        home: Path,
        settings: BuildSettings | None = None,
    ) -> None:
        self.store = store
        self.events = events
        self.releases = releases
        self.home = Path(home)
        self.settings = settings or BuildSettings()
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[Build]] = set()
        self.release_phase: ReleasePhase | None = None
        for d in ("builds", "slugs", "cache", "work", "sources"):
            (self.home / d).mkdir(parents=True, exist_ok=True)

    # -- buildpack installations ---------------------------------------------------
    def buildpacks(self, app_id: str) -> list[str]:
        with self.store.session() as s:
            rows = s.scalars(
                select(BuildpackInstallation)
                .where(BuildpackInstallation.app_id == app_id)
                .order_by(BuildpackInstallation.ordinal)
            )
            return [r.url for r in rows]

    def set_buildpacks(self, app_id: str, urls: list[Any]) -> list[str]:
        clean: list[str] = []
        for u in urls:
            if isinstance(u, dict):
                u = u.get("buildpack") or u.get("url")
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

    # -- builds ---------------------------------------------------------------------
    def get(self, app_id: str, build_id: str) -> Build:
        with self.store.session() as s:
            b = s.get(Build, build_id)
            if b is None or b.app_id != app_id:
                raise NotFound("Couldn't find that build.")
            return b

    def find(self, build_id: str) -> Build | None:
        with self.store.session() as s:
            return s.get(Build, build_id)

    def list(self, app_id: str) -> list[Build]:
        with self.store.session() as s:
            return list(
                s.scalars(select(Build).where(Build.app_id == app_id).order_by(Build.created_at))
            )

    def create_pending(
        self,
        actor: User | None,
        app_id: str,
        source_blob: dict[str, Any],
        buildpacks: builtins.list[str] | None = None,
    ) -> Build:
        with self.store.session() as s:
            app = s.get(App, app_id)
            if app is None:
                raise NotFound("Couldn't find that app.")
            b = Build(
                app_id=app_id,
                user_id=actor.id if actor else None,
                source_blob=source_blob,
                buildpacks=buildpacks if buildpacks is not None else self.buildpacks(app_id),
                stack=app.build_stack,
                status="pending",
            )
            s.add(b)
            s.flush()
            b.output_path = str(self.home / "builds" / f"{b.id}.log")
        Path(b.output_path).touch()  # type: ignore[arg-type]
        return b

    def lock(self, app_id: str) -> asyncio.Lock:
        return self._locks.setdefault(app_id, asyncio.Lock())

    async def run(
        self, actor: User | None, build: Build, source_dir: Path, output: Output | None = None
    ) -> Build:
        """Build `source_dir` for `build`; streams lines to `output` and the build log."""
        log_path = Path(build.output_path or self.home / "builds" / f"{build.id}.log")
        log_file = open(log_path, "a", buffering=1, encoding="utf-8", errors="replace")  # noqa: SIM115

        def emit(line: str) -> None:
            log_file.write(line.rstrip("\n") + "\n")
            if output is not None:
                output(line)

        who = actor.email if actor else "Spruce"
        async with self.lock(build.app_id):
            self.events.publish(
                "api_log", app_id=build.app_id, message=f"Build started by user {who}"
            )
            try:
                result = await self._run_locked(actor, build, source_dir, emit)
            finally:
                log_file.close()
        outcome = "succeeded" if result.status == "succeeded" else "failed"
        self.events.publish("api_log", app_id=build.app_id, message=f"Build {outcome}")
        return result

    async def _run_locked(
        self, actor: User | None, build: Build, source_dir: Path, emit: Output
    ) -> Build:
        app_id = build.app_id
        config = self.releases.config(app_id)
        work = self.home / "work" / build.id
        req = BuildRequest(
            source_dir=source_dir,
            work_dir=work,
            cache_dir=self.home / "cache" / app_id,
            slugs_dir=self.home / "slugs",
            buildpacks=list(build.buildpacks or []),
            env=config,
            stack=build.stack,
            timeout=self.settings.timeout,
            run_as=self.settings.run_as,
            buildpack_cache_dir=self.home / "cache" / "_buildpacks",
            source_version=(build.source_blob or {}).get("version"),
        )
        try:
            result = await run_build(req, emit)
        except BuildFailed as e:
            emit(f" !     {e}")
            emit(" !     Push rejected, failed to compile app.")
            return self._finish(build.id, "failed")
        except Exception as e:  # an unexpected fault still fails the build cleanly
            emit(f" !     Build failed: {type(e).__name__}: {e}")
            return self._finish(build.id, "failed")
        finally:
            shutil.rmtree(work, ignore_errors=True)
        version = (build.source_blob or {}).get("version") or ""
        slug = self.releases.create_slug(
            app_id,
            result.process_types,
            commit=version or None,
            commit_description=(build.source_blob or {}).get("version_description"),
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
            actor,
            app_id,
            f"Deploy {short}",
            slug_id=slug.id,
            caller_runs_phase=self.release_phase is not None,
        )
        if release.status == "pending":
            ok = await self._release_phase(release, emit)
            if not ok:
                emit(" !     Release command failed: the previous release stays live.")
                return self._finish(build.id, "succeeded", slug.id, release.id)
        emit(f"       Released v{release.version}")
        self.prune_slugs(app_id)
        return self._finish(build.id, "succeeded", slug.id, release.id)

    async def _release_phase(self, release: Release, emit: Output) -> bool:
        if self.release_phase is None:
            self.releases.finish(release.id, True)
            return True
        emit("-----> Running release command...")
        return await self.release_phase(release, emit)

    def _finish(
        self, build_id: str, status: str, slug_id: str | None = None, release_id: str | None = None
    ) -> Build:
        with self.store.session() as s:
            b = s.get(Build, build_id)
            assert b is not None
            b.status = status
            b.slug_id = slug_id
            b.release_id = release_id
        self.events.publish("build", app_id=b.app_id, build_id=b.id, status=status)
        return b

    def submit(
        self, actor: User | None, build: Build, local_source: Callable[[str], Path | None]
    ) -> asyncio.Task[Build]:
        """Run a pending API build in the background (fetch its source blob, build)."""
        task = asyncio.create_task(self.run_from_blob(actor, build, local_source))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def run_from_blob(
        self, actor: User | None, build: Build, local_source: Callable[[str], Path | None]
    ) -> Build:
        tmp = Path(tempfile.mkdtemp(prefix="src-", dir=self.home / "work"))
        try:
            try:
                src = await self.fetch_source(
                    (build.source_blob or {}).get("url", ""), tmp / "src", local_source
                )
            except InvalidParams as e:
                with open(build.output_path or os.devnull, "a") as f:
                    f.write(f" !     {e.message}\n")
                return self._finish(build.id, "failed")
            return await self.run(actor, build, src)
        except Exception as e:
            with open(build.output_path or os.devnull, "a") as f:
                f.write(f" !     Build failed: {type(e).__name__}\n")
            return self._finish(build.id, "failed")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    # -- sources --------------------------------------------------------------------
    def new_source(self) -> str:
        import uuid

        return str(uuid.uuid4())

    def source_path(self, source_id: str) -> Path:
        if not all(c in "0123456789abcdef-" for c in source_id) or len(source_id) != 36:
            raise NotFound("Couldn't find that source.")
        return self.home / "sources" / f"{source_id}.tgz"

    async def fetch_source(
        self, url: str, dest_dir: Path, local_source: Callable[[str], Path | None]
    ) -> Path:
        """Download (or find locally) a source tarball and extract it safely."""
        archive = local_source(url)
        tmp: str | None = None
        try:
            if archive is None:
                if not url.startswith(("http://", "https://")):
                    raise InvalidParams("source_blob.url must be an http(s) URL.")
                fd, tmp = tempfile.mkstemp(suffix=".tgz", dir=self.home / "sources")
                size = 0
                try:
                    async with httpx.AsyncClient(follow_redirects=True, timeout=60) as client:
                        async with client.stream("GET", url) as resp:
                            if resp.status_code >= 400:
                                raise InvalidParams(
                                    f"Could not download the source: HTTP {resp.status_code}."
                                )
                            with os.fdopen(fd, "wb") as f:
                                async for chunk in resp.aiter_bytes():
                                    size += len(chunk)
                                    if size > MAX_SOURCE_BYTES:
                                        raise InvalidParams(
                                            "The source archive is larger than 500 MB."
                                        )
                                    f.write(chunk)
                except httpx.HTTPError as e:
                    raise InvalidParams(
                        f"Could not download the source: {type(e).__name__}."
                    ) from None
                archive = Path(tmp)
            try:
                return extract_source_tarball(archive, dest_dir)
            except SourceArchiveError as e:
                raise InvalidParams(f"The source is not a usable tarball: {e}") from None
        finally:
            if tmp:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)

    # -- slugs ----------------------------------------------------------------------
    def prune_slugs(self, app_id: str) -> None:
        """Delete slug files that no recent release uses (rollback beyond them is refused)."""
        keep_n = self.settings.slug_retention
        with self.store.session() as s:
            recent = s.scalars(
                select(Release.slug_id)
                .where(Release.app_id == app_id)
                .order_by(Release.version.desc())
                .limit(keep_n)
            )
            keep = {x for x in recent if x}
            for slug in s.scalars(select(Slug).where(Slug.app_id == app_id)):
                # Runs under the app's build lock, so no build is writing a slug meanwhile.
                if slug.id not in keep and slug.path and os.path.exists(slug.path):
                    os.unlink(slug.path)
                    slug.path = None
