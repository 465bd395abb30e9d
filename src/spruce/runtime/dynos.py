"""Keeps every app's dynos converged on its current release and formation.

Services publish `release`, `formation`, `app_changed` and `app_deleting`; this module
turns the store's view of an app into an `AppRuntime` and hands it to the dyno manager.
Converges of one app are coalesced: a burst of changes makes at most one more converge.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from pathlib import Path
from typing import Any

from spruce.compile import unpack_slug
from spruce.dynos import AppRuntime, DynoManager
from spruce.dynos.model import FEATURES as DYNO_FEATURES
from spruce.services import Services
from spruce.services.errors import InvalidParams
from spruce.store.models import Release

log = logging.getLogger(__name__)
RELEASE_PHASE_TIMEOUT = 3600.0


class DynoRuntime:
    def __init__(self, services: Services, manager: DynoManager, home: Path) -> None:
        self.services = services
        self.manager = manager
        self.slugs_dir = Path(home) / "slugs" / "unpacked"
        self.slugs_dir.mkdir(parents=True, exist_ok=True)
        self.outputs_dir = Path(home) / "releases"
        self.outputs_dir.mkdir(parents=True, exist_ok=True)
        self._pending: dict[str, asyncio.Task[None]] = {}
        self._again: set[str] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.release_phase_timeout = RELEASE_PHASE_TIMEOUT
        for kind in ("release", "formation", "app_changed"):
            services.events.subscribe(kind, self._on_change)
        services.events.subscribe("app_deleting", self._on_delete)

    # -- desired state -------------------------------------------------------------------
    def slug_dir(self, slug_id: str | None) -> Path:
        """The unpacked slug (unpacked once, shared by every release that uses it)."""
        if not slug_id:
            empty = self.slugs_dir / "_empty"
            empty.mkdir(exist_ok=True)
            return empty
        dest = self.slugs_dir / slug_id
        if dest.exists():
            return dest
        slug = self.services.releases.slug(slug_id)
        if slug is None or not slug.path:
            if slug is not None and slug.size:
                raise InvalidParams(
                    "This release's slug was pruned; deploy again or roll back to a newer release."
                )
            empty = self.slugs_dir / "_empty"
            empty.mkdir(exist_ok=True)
            return empty
        tmp = self.slugs_dir / f".{slug_id}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        unpack_slug(slug.path, tmp)
        tmp.rename(dest)
        return dest

    def app_runtime(self, app_id: str, release: Release | None = None) -> AppRuntime | None:
        """What should run for an app: its current release (or `release`), or None."""
        app = self.services.apps.get_internal(app_id)
        release = release or self.services.releases.current(app_id)
        if release is None or not release.slug_id:
            return None
        slug = self.services.releases.slug(release.slug_id)
        process_types = dict(slug.process_types or {}) if slug else {}
        formation = {f.type: (f.quantity, f.size) for f in self.services.formation.list(app_id)}
        features = self.services.features.enabled(app_id) & DYNO_FEATURES
        boot = float((app.settings or {}).get("boot_timeout", 60))
        return AppRuntime(
            app_id=app.id,
            app_name=app.name,
            release_id=release.id,
            release_version=release.version,
            slug_dir=self.slug_dir(release.slug_id),
            process_types=process_types,
            formation=formation,
            config=dict(release.config or {}),
            features=features,
            boot_timeout=boot,
            generation=app.generation,
        )

    # -- converging ------------------------------------------------------------------------
    def _on_change(self, kind: str, app_id: str, **payload: Any) -> None:
        if kind == "release" and payload.get("status") == "pending":
            if not payload.get("caller_runs_phase"):
                self._spawn(self._release_phase_by_id(payload["release_id"]))
            return
        if kind == "release" and payload.get("status") != "succeeded":
            return  # a failed release never runs
        self.schedule(app_id)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _release_phase_by_id(self, release_id: str) -> None:
        from spruce.store.models import Release as ReleaseRow

        with self.services.store.session() as s:
            release = s.get(ReleaseRow, release_id)
        if release is not None:
            try:
                await self.release_phase(release)
            except Exception:
                log.exception("release phase of %s failed", release_id)
                self.services.releases.finish(release_id, False)

    def schedule(self, app_id: str) -> None:
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
        except LookupError:
            return
        except Exception as e:
            if type(e).__name__ == "NotFound":
                return
            raise
        if runtime is None:
            return
        await self.manager.converge(runtime)

    async def converge_all(self) -> None:
        for app in self.services.apps.all():
            try:
                await self.converge(app.id)
            except Exception:
                log.exception("bringing back the dynos of %s failed", app.name)

    def _on_delete(self, kind: str, app_id: str, **_: Any) -> None:
        task = self._pending.pop(app_id, None)
        if task is not None:
            task.cancel()
        asyncio.get_running_loop().create_task(self.manager.remove_app(app_id))

    # -- release phase ------------------------------------------------------------------
    async def release_phase(self, release: Release, output: Any = None) -> bool:
        """Run the slug's `release` command as a one-off; the release goes live on exit 0."""
        runtime = self.app_runtime(release.app_id, release)
        slug = self.services.releases.slug(release.slug_id)
        command = (slug.process_types or {}).get("release") if slug else None
        if runtime is None or not command:
            self.services.releases.finish(release.id, True)
            return True
        router = self.services.logs.router
        seq = router.head(release.app_id)
        out_path = self.outputs_dir / f"{release.id}.log"
        out_file = open(out_path, "a", buffering=1, encoding="utf-8", errors="replace")  # noqa: SIM115
        self.services.releases.set_output_path(release.id, str(out_path))

        def both(line: str) -> None:
            out_file.write(line.strip() + "\n")
            if output is not None:
                output(line)

        try:
            info = await self.manager.run_one_off(runtime, command, process_type="release")
            done = asyncio.Event()
            tee = asyncio.create_task(self._tee(release.app_id, info.name, seq, both, done))
            status = await self.manager.wait_one_off(
                release.app_id, info.name, self.release_phase_timeout
            )
            done.set()
            await tee
            ok = status == 0
            both(
                "       Release command "
                + ("succeeded." if ok else f"failed (exit status {status}).")
            )
        finally:
            out_file.close()
        self.services.releases.finish(release.id, ok)
        return ok

    async def _tee(
        self, app_id: str, dyno: str, seq: int, output: Any, done: asyncio.Event
    ) -> None:
        """Copy a dyno's own output lines into `output` (the push) until `done`."""
        router = self.services.logs.router
        while True:
            finished = done.is_set()
            lines, seq = router.lines_after(app_id, seq, source="app", dyno=dyno)
            for line in lines:
                output("       " + line.message)
            if finished:
                return
            await asyncio.sleep(0.1)
