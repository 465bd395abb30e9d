"""The dyno manager: the formation reconciler of the local (Cedar) backend."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import random
import time
from collections.abc import Callable
from pathlib import Path

from spruce.certs.ca import InternalCA
from spruce.compile.oci import RegistryClient
from spruce.dynos import procs
from spruce.dynos.dyno import AppState, Dyno
from spruce.dynos.images import ImageCache, fir_dyno_name
from spruce.dynos.lifecycle import DynoRunner
from spruce.dynos.metrics import load_line, memory_line
from spruce.dynos.model import (
    ENV_NAME_RE,
    AppRuntime,
    DynoInfo,
    DynoSettings,
    Intent,
    check_dyno_name,
    validate_runtime,
)
from spruce.dynos.process import PersistedDyno, end_leftover
from spruce.dynos.rendezvous import Attachment, RendezvousServer
from spruce.dynos.sandbox import Sandbox
from spruce.dynos.sizes import DynoError, DynoNotFound, get_size
from spruce.dynos.slugs import SlugCache
from spruce.events import LogSink
from spruce.services.catalog import default_size
from spruce.services.model import DynoSample, DynoState, DynoUsage, WebEndpoint

log = logging.getLogger(__name__)


class DynoManager:
    def __init__(
        self,
        home: Path,
        log_sink: LogSink,
        settings: DynoSettings | None = None,
        on_change: Callable[[str], None] | None = None,
        ca: InternalCA | None = None,
        registry: Callable[[], RegistryClient] | None = None,
        rendezvous: RendezvousServer | None = None,
        on_sample: Callable[[tuple[DynoSample, ...]], None] | None = None,
        registry_for: Callable[[str], RegistryClient] | None = None,
    ) -> None:
        """`registry` makes clients of the registry Fir images are pulled from
        (`registry_for`: of the one an image's host:port names); `rendezvous`
        is one shared with another backend, started and closed by its owner (else the
        manager runs its own); `on_sample` hears each round of the dynos' memory and load
        samples."""
        self.home = Path(home)
        self.sink = log_sink
        self.settings = settings or DynoSettings()
        self._notify = on_change or (lambda app_id: None)
        self._on_sample = on_sample or (lambda samples: None)
        self._ca = ca
        self.state_dir = self.home / "state"
        self.sandbox = Sandbox(self.home, self.settings)
        self.runner = DynoRunner(
            self.settings,
            log_sink,
            self.sandbox,
            self.state_dir,
            SlugCache(self.home / "slugs"),
            self._notify,
            ImageCache(self.home / "images", registry, registry_for),
        )
        self.rendezvous: RendezvousServer | None = rendezvous
        self._own_rendezvous = rendezvous is None
        self.warnings: list[str] = []
        self._apps: dict[str, AppState] = {}
        self._background: list[asyncio.Task[None]] = []
        self._started = False
        self._one_offs: dict[tuple[str, str], Dyno] = {}

    # -- lifecycle of the manager --------------------------------------------------------
    async def start(self) -> None:
        """Prepare the home, end dynos left by a manager that died, start timers."""
        if self._started:
            return
        self.home.mkdir(parents=True, exist_ok=True)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.state_dir, 0o700)
        self.warnings = await asyncio.to_thread(self.sandbox.probe)
        hosts = self.sandbox.base_hosts()
        self.warnings += await asyncio.to_thread(self.runner.network.probe, hosts)
        for w in self.warnings:
            log.warning("dyno isolation: %s", w)
        await self._end_leftovers()
        if self._own_rendezvous:
            ca = self._ca or InternalCA(self.home / "ca")
            self.rendezvous = RendezvousServer(
                ca, self.home / "rendezvous", self.settings.rendezvous_host
            )
            await self.rendezvous.start()
        self._background = [
            asyncio.create_task(self._sleeper()),
            asyncio.create_task(self._metrics()),
        ]
        self._started = True

    async def _end_leftovers(self) -> None:
        records: list[tuple[Path, PersistedDyno]] = []
        for path in sorted(self.state_dir.glob("*.json")):
            try:
                records.append((path, PersistedDyno(**json.loads(path.read_text()))))
            except (OSError, ValueError, TypeError):
                path.unlink(missing_ok=True)
        for path in self.state_dir.glob("*.tmp"):
            path.unlink(missing_ok=True)

        async def end(path: Path, rec: PersistedDyno) -> None:
            if await end_leftover(rec, self.sandbox, self.settings.stop_grace):
                log.warning(
                    "ended leftover dyno %s of app %s (pid %s)", rec.dyno_name, rec.app_id, rec.pid
                )
            path.unlink(missing_ok=True)

        await asyncio.gather(*(end(p, r) for p, r in records))
        if self.sandbox.disks is not None:
            # Their disks went with their mount namespaces; the empty mount points remain.
            await asyncio.to_thread(self.sandbox.disks.release_all)

    async def shutdown(self) -> None:
        """SIGTERM every dyno, SIGKILL after the grace time; the manager is done after."""
        for t in self._background:
            t.cancel()
        tasks: list[asyncio.Task[None]] = []
        for st in self._apps.values():
            if st.preboot_task:
                st.preboot_task.cancel()
            for d in list(st.dynos):
                self._end(d)
                if d.task:
                    tasks.append(d.task)
            tasks.extend(st.execs)
            for t in st.execs:
                t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.to_thread(self.runner.network.close)
        if self.rendezvous and self._own_rendezvous:
            await self.rendezvous.close()
        self._started = False

    # -- desired state -------------------------------------------------------------------
    def _app_state(self, app: AppRuntime) -> AppState:
        st = self._apps.get(app.app_id)
        if st is None:
            st = self._apps[app.app_id] = AppState(app)
        return st

    async def converge(self, app: AppRuntime) -> None:
        """Bring the app's dynos to `app`'s formation and release (returns once launched)."""
        self._require_started()
        validate_runtime(app, await self.runner.slugs_for(app).directory(app.slug))
        # A private copy: the caller may reuse and mutate its object for the next release.
        app = dataclasses.replace(
            app,
            process_types=dict(app.process_types),
            config=dict(app.config),
            features=set(app.features),
            formation={t: (q, get_size(s).name) for t, (q, s) in app.formation.items()},
        )
        st = self._app_state(app)
        async with st.lock:
            old = st.app if st.formation_dynos() or st.app is not app else None
            await self.runner.home_for(st, app)
            st.app = app
            if app.network is not None:  # a changed outbound ruleset reaches running dynos
                await asyncio.to_thread(self.runner.network.update, app.network)
            st.last_request = time.monotonic()
            if st.sleeping:
                self.wake(app.app_id)
            release_changed = old is not None and (
                old.release_id != app.release_id
                or old.config != app.config
                or old.features != app.features
            )
            current = [
                d for d in st.formation_dynos() if not d.preboot_old and d.want != Intent.RETIRE
            ]
            preboot_old: list[Dyno] = []
            if release_changed and "preboot" in app.features:
                # Old dynos of an unfinished earlier switch go with this one's old dynos.
                preboot_old = [d for d in current if d.type == "web"] + [
                    d for d in st.formation_dynos() if d.preboot_old and d.want != Intent.RETIRE
                ]
                for d in preboot_old:
                    d.preboot_old = True
                current = [d for d in current if d.type != "web"]
            for d in current:
                quantity, size = app.formation.get(d.type, (0, d.size))
                if d.index > quantity or d.type not in app.process_types:
                    self.runner.retire(d)
                elif release_changed or size != d.size or app.process_types[d.type] != d.command:
                    self.runner.request_restart(d)
            for ptype, (quantity, size) in sorted(app.formation.items()):
                have = {d.index for d in current if d.type == ptype and d.want != Intent.RETIRE}
                for index in range(1, quantity + 1):
                    if index not in have:
                        self._launch_formation_dyno(st, app, ptype, index, size)
            if preboot_old:
                if st.preboot_task:
                    st.preboot_task.cancel()
                st.preboot_task = asyncio.create_task(self._preboot_switch(st, preboot_old))
        self.runner.changed(app.app_id)

    def _launch_formation_dyno(
        self, st: AppState, app: AppRuntime, ptype: str, index: int, size: str
    ) -> None:
        name = f"{ptype}.{index}"
        if app.image is not None:
            name = fir_dyno_name(app.release_id, ptype, size, {x.name for x in st.dynos})
        d = Dyno(
            app.app_id,
            name,
            ptype,
            index,
            size,
            app.process_types[ptype],
            app.release_id,
            app.release_version,
        )
        st.dynos.append(d)
        d.task = asyncio.create_task(self.runner.supervise(st, d))

    async def _preboot_switch(self, st: AppState, old: list[Dyno]) -> None:
        """Old web dynos serve until the new ones are up; then the router switches, then
        the old ones get SIGTERM (Heroku waits boot timeout + 2 minutes at most)."""
        app = st.app
        wait = (self.settings.boot_timeout or app.boot_timeout) + self.settings.preboot_extra_wait
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            new = [
                d
                for d in st.formation_dynos()
                if d.type == "web" and not d.preboot_old and d.want == Intent.RUN
            ]
            if all(d.state in (DynoState.UP, DynoState.CRASHED) for d in new):
                break
            await asyncio.sleep(0.05)
        for d in old:
            d.retiring = True
        self.runner.changed(app.app_id)
        for d in old:
            self.runner.retire(d)

    async def remove_app(self, app_id: str) -> None:
        st = self._apps.get(app_id)
        if st is None:
            return
        async with st.lock:
            if st.preboot_task:
                st.preboot_task.cancel()
            tasks = [d.task for d in st.dynos if d.task]
            for d in list(st.dynos):
                self._end(d)
            for t in st.execs:
                t.cancel()
            await asyncio.gather(*tasks, *st.execs, return_exceptions=True)
            del self._apps[app_id]
            await asyncio.to_thread(self.sandbox.remove_app, app_id)
        self.runner.changed(app_id)

    # -- queries -------------------------------------------------------------------------
    def dynos(self, app_id: str) -> list[DynoInfo]:
        st = self._apps.get(app_id)
        if st is None:
            return []
        return [d.info() for d in sorted(st.dynos, key=lambda d: (d.type, d.index, d.created_at))]

    def web_endpoints(self, app_id: str) -> list[WebEndpoint]:
        st = self._apps.get(app_id)
        if st is None:
            return []
        return [
            WebEndpoint(d.name, d.id, d.host, d.port)
            for d in st.dynos
            if d.type == "web"
            and not d.one_off
            and d.state == DynoState.UP
            and not d.retiring
            and d.want == Intent.RUN
            and d.port is not None
        ]

    def apps(self) -> list[str]:
        return sorted(self._apps)

    def running_dyno(self, app_id: str, dyno_name: str) -> Dyno | None:
        """A formation dyno whose process is running (Heroku Exec's target), or None."""
        st = self._apps.get(app_id)
        found = [d for d in st.dynos if d.name == dyno_name and not d.one_off] if st else []
        return next((d for d in found if d.proc is not None and d.proc.alive()), None)

    # -- actions -------------------------------------------------------------------------
    def _select(self, app_id: str, process_type: str | None, dyno_name: str | None) -> list[Dyno]:
        st = self._apps.get(app_id)
        if st is None:
            raise DynoNotFound(f"no dynos for app {app_id!r}")
        if dyno_name is not None:
            check_dyno_name(dyno_name)
            found = [d for d in st.dynos if d.name == dyno_name and not d.preboot_old]
            if not found:
                raise DynoNotFound(f"no dyno {dyno_name!r}")
            return found
        return [
            d
            for d in st.dynos
            if (process_type is None or d.type == process_type) and not d.preboot_old
        ]

    async def restart(
        self, app_id: str, process_type: str | None = None, dyno_name: str | None = None
    ) -> None:
        """Restart dynos (all, one process type, or one); a one-off is ended."""
        for d in self._select(app_id, process_type, dyno_name):
            if d.one_off:
                self._end_one_off(d)
            else:
                if d.state == DynoState.CRASHED:
                    d.crash_count = 0
                self.runner.request_restart(d)
                d.kick.set()

    async def stop(
        self, app_id: str, process_type: str | None = None, dyno_name: str | None = None
    ) -> None:
        """Stop dynos. As on Heroku, formation dynos come back (a restart); one-offs end."""
        await self.restart(app_id, process_type, dyno_name)

    def _end(self, d: Dyno) -> None:
        if d.one_off:
            self._end_one_off(d)
        else:
            self.runner.retire(d)

    def _end_one_off(self, d: Dyno) -> None:
        if self.rendezvous and d.attach_url:
            self.rendezvous.forget(d.attach_url.rsplit("/", 1)[-1])
        self.runner.retire(d)

    def usage(self, app_id: str) -> list[DynoUsage]:
        st = self._apps.get(app_id)
        if st is None:
            return []
        out = []
        for d in st.dynos:
            proc = d.proc
            if proc is None or d.state != DynoState.UP:
                continue
            members = proc.members()
            out.append(
                DynoUsage(
                    name=d.name,
                    type=d.type,
                    memory_bytes=int(proc.memory().total_mb * 1024 * 1024),
                    memory_limit_bytes=int(self.settings.quota_mb(d.size) * 1024 * 1024),
                    cpu_seconds=sum(p.cpu_ticks for p in members) / procs.TICKS,
                    restarts=d.restarts,
                )
            )
        return out

    # -- sleeping ------------------------------------------------------------------------
    def note_request(self, app_id: str) -> None:
        """Router traffic for the app: resets the sleep timer (and wakes a sleeping app)."""
        st = self._apps.get(app_id)
        if st is None:
            return
        st.last_request = time.monotonic()
        if st.sleeping:
            self.wake(app_id)

    def wake(self, app_id: str) -> None:
        st = self._apps.get(app_id)
        if st is None:
            return
        st.last_request = time.monotonic()
        if not st.sleeping:
            return
        st.sleeping = False
        for d in st.formation_dynos():
            if d.want == Intent.IDLE:
                d.want = Intent.RUN
                d.kick.set()

    def _sleeps(self, app: AppRuntime) -> bool:
        used = [(q, s) for q, s in app.formation.values() if q > 0]
        return app.formation.get("web", (0, ""))[0] > 0 and all(get_size(s).sleeps for _, s in used)

    def _idle(self, st: AppState) -> None:
        st.sleeping = True
        for d in st.formation_dynos():
            if d.want != Intent.RUN:
                continue
            d.want = Intent.IDLE
            self.runner.heroku(d, "Idling")
            self.runner.set_state(d, DynoState.IDLE)
            d.stop_event.set()

    async def _sleeper(self) -> None:
        while True:
            await asyncio.sleep(self.settings.sleep_check_interval)
            now = time.monotonic()
            for st in list(self._apps.values()):
                if (
                    not st.sleeping
                    and self._sleeps(st.app)
                    and st.formation_dynos()
                    and now - st.last_request >= self.settings.sleep_after
                ):
                    self._idle(st)

    # -- runtime metrics -----------------------------------------------------------------
    async def _metrics(self) -> None:
        """Sample every up dyno's memory and load; the lines of log-runtime-metrics go to
        the apps that turned it on, the samples to `on_sample` (the dashboard's graphs)."""
        interval = self.settings.metrics_interval
        while True:
            await asyncio.sleep(interval)
            samples: list[DynoSample] = []
            for st in list(self._apps.values()):
                lines = "log-runtime-metrics" in st.app.features
                for d in list(st.dynos):
                    proc = d.proc
                    if proc is None or d.state != DynoState.UP:
                        continue
                    try:
                        m = await asyncio.to_thread(proc.memory)
                    except OSError:
                        continue  # the dyno ended while it was read
                    d.load.update(m.running, interval)
                    quota = self.settings.quota_mb(d.size)
                    samples.append(
                        DynoSample(d.app_id, d.name, time.time(), m.total_mb, quota, d.load.avg[0])
                    )
                    if lines:
                        self.runner.heroku(d, memory_line(d.name, d.app_id, d.launch_id, m, quota))
                        self.runner.heroku(d, load_line(d.name, d.app_id, d.launch_id, d.load))
            if samples:
                self._on_sample(tuple(samples))

    # -- one-off dynos -------------------------------------------------------------------
    def _require_started(self) -> None:
        if not self._started:
            raise RuntimeError("DynoManager.start() has not been awaited")

    async def run_one_off(
        self,
        app: AppRuntime,
        command: str,
        env: dict[str, str] | None = None,
        size: str | None = None,
        attach: bool = False,
        tty: bool = False,
        process_type: str = "run",
    ) -> DynoInfo:
        """Start a one-off dyno (`run.1234`; use process_type="release" for the release
        phase). With attach, the command starts when a client meets it at `attach_url`."""
        self._require_started()
        validate_runtime(app, await self.runner.slugs_for(app).directory(app.slug))
        if not isinstance(command, str) or not command.strip():
            raise DynoError("a one-off dyno needs a command")
        env = dict(env or {})
        for key, value in env.items():
            if not ENV_NAME_RE.match(str(key)) or not isinstance(value, str):
                raise DynoError(f"invalid env var {key!r}")
        if size is None:
            web = app.formation.get("web")
            size = web[1] if web else default_size(app.generation)
        size_name = get_size(size).name
        st = self._app_state(app)
        if not st.formation_dynos():
            st.app = app
        taken = {d.name for d in st.dynos}
        while True:
            index = random.randint(1000, 9999)
            name = f"{process_type}.{index}"
            if app.image is not None:  # a Fir one-off is a pod of its own: run-<hash>-<5>
                name = fir_dyno_name(app.release_id, process_type, size_name, taken)
            if name not in taken:
                break
        d = Dyno(
            app.app_id,
            name,
            process_type,
            index,
            size_name,
            command,
            app.release_id,
            app.release_version,
            one_off=True,
        )
        secret = None
        fut = None
        if attach:
            assert self.rendezvous is not None
            secret, fut = self.rendezvous.expect(self.settings.rendezvous_timeout)
            d.attach_url = self.rendezvous.url(secret)
        st.dynos.append(d)
        d.task = asyncio.create_task(self._one_off(st, d, app, env, tty, secret, fut))
        self._one_offs[(app.app_id, name)] = d
        if len(self._one_offs) > 200:  # forget ended one-offs nobody waited for
            for done_key, other in list(self._one_offs.items()):
                if other.task is not None and other.task.done():
                    del self._one_offs[done_key]
        self.runner.changed(app.app_id)
        return d.info()

    async def _one_off(
        self,
        st: AppState,
        d: Dyno,
        app: AppRuntime,
        env: dict[str, str],
        tty: bool,
        secret: str | None,
        fut: asyncio.Future[Attachment] | None,
    ) -> None:
        try:
            att = None
            if fut is not None:
                try:
                    att = await asyncio.wait_for(fut, self.settings.rendezvous_timeout)
                except (TimeoutError, asyncio.CancelledError):
                    if secret and self.rendezvous:
                        self.rendezvous.forget(secret)
                    if d.want != Intent.RETIRE:
                        self.runner.heroku(
                            d, "Error R13 (Attach error) -> Failed to attach to process"
                        )
                    return
                if d.want == Intent.RETIRE:
                    att.done.set()
                    return
            stdio = "log" if att is None else ("pty" if tty else "pipe")
            try:
                _, d.exit_status = await self.runner.run_once(
                    st, d, app, extra_env=env, stdio=stdio, att=att
                )
            finally:
                if att is not None:
                    att.done.set()
            self.runner.heroku(d, "State changed from up to complete")
        finally:
            d.state = DynoState.DOWN
            if d in st.dynos:
                st.dynos.remove(d)
            self.runner.gc_homes(st)
            self.runner.changed(d.app_id)

    async def wait_one_off(
        self, app_id: str, name: str, timeout: float | None = None
    ) -> int | None:
        """Wait for a one-off to end; its exit status (None: it never ran, or timed out,
        in which case it is stopped)."""
        d = self._one_offs.get((app_id, name))
        if d is None or d.task is None:
            raise DynoNotFound(f"no one-off dyno {name!r}")
        try:
            await asyncio.wait_for(asyncio.shield(d.task), timeout)
        except TimeoutError:
            await self.stop(app_id, dyno_name=name)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(d.task, self.settings.stop_grace + 5)
            return None
        finally:
            if d.task.done():
                self._one_offs.pop((app_id, name), None)
        return d.exit_status

    async def run_inside(self, app_id: str, dyno_name: str, command: str) -> DynoInfo:
        """Run a command in a running dyno's environment (same user, slug and config),
        attached through the rendezvous; returns that dyno with an `attach_url`."""
        self._require_started()
        if not isinstance(command, str) or not command.strip():
            raise DynoError("run-inside needs a command")
        targets = [d for d in self._select(app_id, None, dyno_name) if d.proc is not None]
        if not targets:
            raise DynoNotFound(f"dyno {dyno_name!r} is not running")
        target = targets[0]
        st = self._apps[app_id]
        assert self.rendezvous is not None
        secret, fut = self.rendezvous.expect(self.settings.rendezvous_timeout)
        info = dataclasses.replace(target.info(), attach_url=self.rendezvous.url(secret))
        task = asyncio.create_task(self._exec_inside(st, target, command, secret, fut))
        st.execs.add(task)
        task.add_done_callback(st.execs.discard)
        return info

    async def _exec_inside(
        self, st: AppState, target: Dyno, command: str, secret: str, fut: asyncio.Future[Attachment]
    ) -> None:
        try:
            att = await asyncio.wait_for(fut, self.settings.rendezvous_timeout)
        except (TimeoutError, asyncio.CancelledError):
            if self.rendezvous:
                self.rendezvous.forget(secret)
            return
        # A shadow of the target: same name, environment and slug; not listed as a dyno.
        shadow = Dyno(
            target.app_id,
            target.name,
            "exec",
            target.index,
            target.size,
            command,
            target.release_id,
            target.release_version,
            one_off=True,
        )
        env = {k: v for k, v in target.env.items() if k not in ("PATH", "HOME")}
        try:
            await self.runner.run_once(
                st, shadow, st.app, extra_env=env, stdio="pipe", att=att, quiet=True, inside=target
            )
        finally:
            att.done.set()
