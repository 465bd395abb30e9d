"""The release phase: a pending release's `release` command, run once in a one-off dyno.

One entry point, `ReleasePhase.run`, whoever created the release: a build (which streams
the output into the push) or a config change, rollback or add-on change (run in the
background when their ReleaseCreated event arrives). Exit 0 makes the release live; any
other exit status fails it. Any fault of the platform's own fails it too, with a line in the
output and in the app's log, so no release stays pending forever. Destroying the app
cancels its release phases cleanly.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from enum import StrEnum
from pathlib import Path
from typing import Any

from .errors import NotFound, ServiceError
from .events import AppDeleted, AppDeleting, EventBus, ReleaseCreated
from .model import AppRuntime
from .ports import DynoBackend, LogPort, Output
from .releases import Releases

log = logging.getLogger(__name__)
RELEASE_PHASE_TIMEOUT = 3600.0  # Heroku: one hour


class PhaseOutcome(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    """The release command exited non-zero (or timed out): the user's to fix."""
    FAULT = "fault"
    """The platform could not run it: the user's code never got its chance."""


class ReleasePhase:
    def __init__(
        self,
        events: EventBus,
        releases: Releases,
        runtime_of: Callable[[str, str | None], AppRuntime | None],
        backend: DynoBackend,
        logs: LogPort,
        outputs_dir: Path,
        timeout: float = RELEASE_PHASE_TIMEOUT,
    ) -> None:
        """`runtime_of(app_id, release_id)` gives the release's AppRuntime (Deployments)."""
        self.releases = releases
        self.runtime_of = runtime_of
        self.backend = backend
        self.logs = logs
        self.outputs_dir = outputs_dir
        self.outputs_dir.mkdir(parents=True, exist_ok=True)
        self.timeout = timeout
        self._tasks: dict[str, set[asyncio.Task[PhaseOutcome]]] = {}
        self._deleting: set[str] = set()
        events.subscribe(ReleaseCreated, self._on_created)
        events.subscribe(AppDeleting, lambda e: self.cancel(e.app_id))
        events.subscribe(AppDeleted, lambda e: self._deleting.discard(e.app_id))

    def _on_created(self, event: ReleaseCreated) -> None:
        if event.app_id in self._deleting:
            return
        if event.pending and not event.phase_by_caller:
            self._spawn(event.app_id, self.run(event.release_id))

    def _spawn(self, app_id: str, coro: Coroutine[Any, Any, PhaseOutcome]) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop: a synchronous caller (a script) runs no phases
            coro.close()
            log.warning("no event loop: the release phase of app %s did not run", app_id)
            return
        task = loop.create_task(coro)
        tasks = self._tasks.setdefault(app_id, set())
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def cancel(self, app_id: str) -> None:
        """The app is going away: its release phases end without a trace."""
        self._deleting.add(app_id)
        for task in self._tasks.pop(app_id, set()):
            task.cancel()

    async def stop(self) -> None:
        tasks = [t for ts in self._tasks.values() for t in ts]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def run(self, release_id: str, output: Output | None = None) -> PhaseOutcome:
        """Run a pending release's phase and close the release: the one entry point."""
        release = self.releases.find(release_id)
        if release is None:
            return PhaseOutcome.FAULT  # the app went away first
        app_id = release.app.id
        out_path = self.outputs_dir / f"{release.id}.log"
        out_file = open(out_path, "a", buffering=1, encoding="utf-8", errors="replace")  # noqa: SIM115
        try:
            self.releases.set_output_path(release.id, str(out_path))
        except NotFound:
            out_file.close()
            return PhaseOutcome.FAULT

        def both(line: str) -> None:
            out_file.write(line.rstrip("\n") + "\n")
            if output is not None:
                output(line)

        try:
            outcome = await self._run(app_id, release.id, both)
        except asyncio.CancelledError:
            both(" !     The release phase was interrupted (the app or the platform stopped).")
            out_file.close()
            self._finish(release.id, False)
            raise
        except Exception as e:
            out_file.close()
            if app_id in self._deleting or self.releases.find(release.id) is None:
                return PhaseOutcome.FAULT  # the app is being destroyed: nothing to report
            reason = e.message if isinstance(e, ServiceError) else type(e).__name__
            log.warning("release phase of %s could not run: %r", release.id, e)
            with open(out_path, "a", encoding="utf-8") as f:
                f.write(f" !     The release phase could not run: {reason}\n")
            if output is not None:
                output(f" !     The release phase could not run: {reason}")
            self.logs.emit(
                app_id, "heroku", "release", f"Release v{release.version} failed: {reason}"
            )
            outcome = PhaseOutcome.FAULT
        finally:
            out_file.close()
        self._finish(release.id, outcome == PhaseOutcome.SUCCEEDED)
        return outcome

    def _finish(self, release_id: str, ok: bool) -> None:
        try:
            self.releases.finish(release_id, ok)
        except NotFound:
            pass  # the app was destroyed meanwhile: no release is left to close

    async def _run(self, app_id: str, release_id: str, output: Output) -> PhaseOutcome:
        runtime = self.runtime_of(app_id, release_id)
        command = runtime.process_types.get("release") if runtime else None
        if runtime is None or not command:
            return PhaseOutcome.SUCCEEDED
        seq = self.logs.head(app_id)
        info = await self.backend.run_one_off(runtime, command, process_type="release")
        done = asyncio.Event()
        tee = asyncio.create_task(self._tee(app_id, info.name, seq, output, done))
        try:
            status = await self.backend.wait_one_off(app_id, info.name, self.timeout)
        finally:
            done.set()
            await tee
        ok = status == 0
        what = "succeeded." if ok else f"failed (exit status {status})."
        output(f"       Release command {what}")
        return PhaseOutcome.SUCCEEDED if ok else PhaseOutcome.FAILED

    async def _tee(
        self, app_id: str, dyno: str, seq: int, output: Output, done: asyncio.Event
    ) -> None:
        """Copy the release dyno's own output lines into `output` until `done`."""
        while True:
            finished = done.is_set()
            lines, seq = self.logs.lines_after(app_id, seq, source="app", dyno=dyno)
            for line in lines:
                output("       " + line.message)
            if finished:
                return
            await asyncio.sleep(0.1)
