"""Running one dyno: launch, boot check (R10), memory (R14/R15), stop (R12), crash restarts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path

from spruce.dynos import procs
from spruce.dynos.disk import disk_quota_mb
from spruce.dynos.dyno import HOST, AppState, Dyno
from spruce.dynos.images import (
    WORKSPACE,
    ImageCache,
    ImageUnavailable,
    fir_dyno_name,
    image_argv,
    image_process_env,
    template_hash,
)
from spruce.dynos.metrics import mem_running_line
from spruce.dynos.model import AppRuntime, DynoSettings, Intent
from spruce.dynos.network import SPACE_PORT, DynoNet, SpaceNetworks, local_ports
from spruce.dynos.process import DynoProcess, LaunchSpec
from spruce.dynos.rendezvous import Attachment, bridge, exit_status_line
from spruce.dynos.sandbox import Sandbox
from spruce.dynos.sizes import get_size
from spruce.dynos.slugs import SlugCache
from spruce.events import LogSink
from spruce.netutil import free_port
from spruce.services.model import DynoState

log = logging.getLogger(__name__)


class Outcome(StrEnum):
    """How one run of a dyno's process ended."""

    STOPPED = "stopped"  # asked to stop (restart, scale down, idle, shutdown)
    CRASHED = "crashed"  # exited on its own, or killed for R10/R15


STOPPED, CRASHED = Outcome.STOPPED, Outcome.CRASHED


class DynoRunner:
    """Runs dynos' processes: launch, boot check, memory, stop, crash restarts. The
    manager (formation, one-offs, sleeping) holds one and asks it to run each dyno."""

    def __init__(
        self,
        settings: DynoSettings,
        sink: LogSink,
        sandbox: Sandbox,
        state_dir: Path,
        slugs: SlugCache,
        notify: Callable[[str], None],
        images: ImageCache,
    ) -> None:
        self.settings = settings
        self.sink = sink
        self.sandbox = sandbox
        self.state_dir = state_dir
        self.slugs = slugs
        self.images = images
        self._notify = notify
        self.network = SpaceNetworks(state_dir.parent, settings.isolation)
        self._placed: dict[Path, tuple[SlugCache, ImageCache]] = {}

    # -- where an app's files go -----------------------------------------------------------
    def _region_caches(self, app: AppRuntime) -> tuple[SlugCache, ImageCache] | None:
        """A space's app keeps its unpacked slugs, images and release copies under its
        region's data root; other apps under the manager's home."""
        base = self.settings.regions_root
        if app.network is None or not app.region or base is None:
            return None
        root = base / app.region / "dynos"
        found = self._placed.get(root)
        if found is None:
            found = (SlugCache(root / "slugs"), self.images.elsewhere(root / "images"))
            self._placed[root] = found
        self.sandbox.place(app.app_id, root)
        return found

    def slugs_for(self, app: AppRuntime) -> SlugCache:
        placed = self._region_caches(app)
        return placed[0] if placed else self.slugs

    def images_for(self, app: AppRuntime) -> ImageCache:
        placed = self._region_caches(app)
        return placed[1] if placed else self.images

    # -- log lines ----------------------------------------------------------------------
    def heroku(self, d: Dyno, message: str) -> None:
        self.sink.emit(d.app_id, "heroku", d.name, message)

    def set_state(self, d: Dyno, state: DynoState, log_line: bool = True) -> None:
        if d.state == state:
            return
        if log_line:
            shown = DynoState.DOWN if state == DynoState.IDLE else state
            before = DynoState.DOWN if d.state == DynoState.IDLE else d.state
            if shown != before:
                self.heroku(d, f"State changed from {before} to {shown}")
        d.state = state
        d.updated_at = time.time()
        self.changed(d.app_id)

    def changed(self, app_id: str) -> None:
        try:
            self._notify(app_id)
        except Exception:  # the control plane's bug must not stop a dyno's supervisor
            log.exception("on_change callback failed for app %s", app_id)

    # -- requests from the API side ------------------------------------------------------
    def request_restart(self, d: Dyno) -> None:
        if d.want != Intent.RUN:
            return
        if d.state in (DynoState.UP, DynoState.STARTING) and d.proc is not None:
            self.heroku(d, "Restarting")
            self.set_state(d, DynoState.STARTING)
        d.stop_event.set()
        d.kick.set()

    def retire(self, d: Dyno) -> None:
        if d.want == Intent.RETIRE:
            return
        d.want = Intent.RETIRE
        if d.state != DynoState.DOWN:
            self.set_state(d, DynoState.DOWN)
        d.stop_event.set()
        d.kick.set()

    # -- environment ---------------------------------------------------------------------
    def build_env(
        self, app: AppRuntime, d: Dyno, home: str, port: int | None, extra: dict[str, str] | None
    ) -> dict[str, str]:
        env = {"PATH": self.settings.base_path, "HOME": home}
        if app.metadata:  # Fir: dyno metadata and the OTLP endpoint, under the config vars
            env.update(app.metadata)
            env["HEROKU_DYNO_ID"] = d.launch_id
        env.update(app.config)
        if port is not None:
            env["PORT"] = str(port)
        env.update(extra or {})
        env["HOME"] = home
        env["DYNO"] = d.name
        env["PS"] = d.name
        if "runtime-dyno-metadata" in app.features:
            env["HEROKU_APP_ID"] = app.app_id
            env["HEROKU_APP_NAME"] = app.app_name
            env["HEROKU_RELEASE_VERSION"] = f"v{app.release_version}"
            env["HEROKU_DYNO_ID"] = d.launch_id
        return env

    async def home_for(self, st: AppState, app: AppRuntime) -> tuple[Path, str]:
        found = st.homes.get(app.release_id)
        if found is not None:
            return found
        # One copy per release, however many dynos ask for it at once.
        task = st.preparing.get(app.release_id)
        if task is None:
            if app.image is not None:
                image = await self.images_for(app).unpacked(app.image)
                task = asyncio.ensure_future(self._workspace(app, image.rootfs / "workspace"))
            else:
                slug_dir = await self.slugs_for(app).directory(app.slug)
                task = asyncio.ensure_future(
                    asyncio.to_thread(
                        self.sandbox.prepare_slug, app.app_id, app.release_id, slug_dir
                    )
                )
            st.preparing[app.release_id] = task
        try:
            found = await asyncio.shield(task)
        finally:
            if task.done():
                st.preparing.pop(app.release_id, None)
        st.homes[app.release_id] = found
        return found

    async def _workspace(self, app: AppRuntime, source: Path) -> tuple[Path, str]:
        path = await asyncio.to_thread(
            self.sandbox.prepare_workspace, app.app_id, app.release_id, source
        )
        return path, WORKSPACE

    def gc_homes(self, st: AppState) -> None:
        keep = {st.app.release_id} | {d.release_id for d in st.dynos} | set(st.preparing)
        for rid in list(st.homes):
            if rid not in keep:
                del st.homes[rid]
        if self.sandbox.users or st.app.image is not None:
            self.sandbox.gc_releases(st.app.app_id, keep)

    @staticmethod
    def fir_rename(d: Dyno, app: AppRuntime, taken: set[str]) -> None:
        """A Fir dyno of a new release (or size) is a new pod: it gets a new name."""
        if app.image is None or d.one_off:
            return
        if f"-{template_hash(app.release_id, d.type, d.size)}-" not in d.name:
            d.name = fir_dyno_name(app.release_id, d.type, d.size, taken)

    # -- one run of a dyno's process -----------------------------------------------------
    async def run_once(
        self,
        st: AppState,
        d: Dyno,
        app: AppRuntime,
        *,
        extra_env: dict[str, str] | None = None,
        stdio: str = "log",
        att: Attachment | None = None,
        quiet: bool = False,
        inside: Dyno | None = None,
    ) -> tuple[Outcome, int]:
        """Launch d's process and wait until it ends (quiet: no platform lines or changes,
        for commands run inside another dyno: `inside`, whose namespaces it then enters)."""

        def heroku(msg: str) -> None:
            if not quiet:
                self.heroku(d, msg)

        d.stop_event.clear()
        d.launch_id = str(uuid.uuid4())
        if not quiet:
            self.fir_rename(d, app, {x.name for x in st.dynos})
        d.release_id, d.release_version = app.release_id, app.release_version
        try:
            host_dir, home = await self.home_for(st, app)
            images = self.images_for(app)
            image = await images.unpacked(app.image) if app.image is not None else None
            inner = (
                image_argv(
                    image,
                    process_type=d.type,
                    command=d.command,
                    run_process=not d.one_off or d.type == "release",
                )
                if image is not None
                else None
            )
        except ImageUnavailable as e:
            heroku(f"Error: {e}")
            heroku("Process exited with status 127")
            if not quiet:
                self.set_state(d, DynoState.CRASHED)
            return CRASHED, 127
        net: DynoNet | None = None
        if app.network is not None and self.network.enabled and inside is None:
            try:
                net = await asyncio.to_thread(
                    self.network.attach,
                    app.network,
                    d.launch_id,
                    None if d.one_off else f"{d.type}.{app.app_name}.app.localspace",
                    local_ports([*app.config.values(), *app.metadata.values()]),
                )
            except OSError as e:
                log.warning("no network namespace for %s of %s: %s", d.name, d.app_id, e)
                heroku(f"Error: the dyno's network could not be set up ({e})")
                heroku("Process exited with status 127")
                if not quiet:
                    self.set_state(d, DynoState.CRASHED)
                return CRASHED, 127
        port = None
        if d.type == "web" or d.one_off:
            port = SPACE_PORT if net is not None else free_port(HOST)
        env = self.build_env(app, d, home, port, extra_env)
        if image is not None:
            env = image_process_env(image, env)
        uid = self.sandbox.app_uid(app.app_id)
        quota = self.settings.quota_mb(d.size)
        winsize = None
        if stdio == "pty" and env.get("LINES", "").isdigit() and env.get("COLUMNS", "").isdigit():
            winsize = (int(env["LINES"]), int(env["COLUMNS"]))
        spec = LaunchSpec(
            app.app_id,
            d.name,
            d.launch_id,
            d.command,
            env,
            host_dir,
            home,
            uid,
            # The kernel's limit is a backstop well above Heroku's R15 point (2x quota).
            memory_limit=int((quota * 3 + 64) * 1024 * 1024),
            pids_max=get_size(d.size).pids_max,
            disk_mb=0 if inside else disk_quota_mb(d.size, self.settings.disk_quota_mb),
            shm_bytes=int(quota * 1024 * 1024),
            stdio=stdio,
            winsize=winsize,
            image=image,
            image_argv=inner,
            netns=net.path if net else None,
            hosts=net.hosts if net else None,
            enter_pid=await self._inner_pid(inside) if inside else None,
        )
        d.env, d.host_dir, d.home, d.uid = env, host_dir, home, uid
        d.launch_features = frozenset(app.features)  # Heroku Exec needs its flag at boot
        if not quiet:
            self.set_state(d, DynoState.STARTING, log_line=False)
        heroku(f"Starting process with command `{d.command}`")
        proc = DynoProcess(
            spec,
            self.sandbox,
            self.state_dir,
            lambda line: self.sink.emit(d.app_id, "app", d.name, line),
            port,
        )
        try:
            await proc.spawn()
        except OSError as e:
            if net is not None:
                await asyncio.to_thread(self.network.detach, net)
            log.warning("could not start %s of %s: %s", d.name, d.app_id, e)
            heroku("Process exited with status 127")
            if not quiet:
                self.set_state(d, DynoState.CRASHED)
            return CRASHED, 127
        d.proc, d.port = proc, port
        d.host = net.address if net else HOST
        d.updated_at = time.time()
        if not quiet:
            self.changed(d.app_id)
        exit_task = asyncio.create_task(proc.wait())
        monitor = asyncio.create_task(
            self.monitor(d, proc, app) if not quiet else asyncio.Event().wait()
        )
        stop_wait = asyncio.create_task(d.stop_event.wait())
        relay = None
        if att is not None:
            assert proc.proc is not None
            relay = asyncio.create_task(
                bridge(
                    att,
                    proc.proc.stdout,
                    proc.proc.stdin,
                    proc.pty_master,
                    lambda: self.client_gone(d),
                )
            )
        try:
            await asyncio.wait({exit_task, monitor, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
            outcome = CRASHED
            if not exit_task.done() and stop_wait.done() and not monitor.done():
                outcome = STOPPED
                await self.terminate(d, proc, exit_task)
            status = await exit_task
            if d.stop_event.is_set() and outcome == CRASHED and not monitor.done():
                outcome = STOPPED
        except asyncio.CancelledError:
            proc.signal(procs.SIGKILL)
            raise
        finally:
            monitor.cancel()
            stop_wait.cancel()
            if net is not None:
                self.network.detach(net)
        if relay is not None and att is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(relay, 2)
            with contextlib.suppress(Exception):
                att.writer.write(exit_status_line(status))
                await asyncio.wait_for(att.writer.drain(), 2)
            att.done.set()
        heroku(f"Process exited with status {status}")
        d.proc, d.port, d.host = None, None, HOST
        if quiet:
            pass
        elif outcome == CRASHED and not d.one_off:
            self.set_state(d, DynoState.CRASHED)
        else:
            d.updated_at = time.time()
            self.changed(d.app_id)
        return outcome, status

    async def _inner_pid(self, target: Dyno, wait: float = 5.0) -> int | None:
        """A process in the target's sandbox, once it has one (a dyno is `up` as soon as it
        is started, before its sandbox exists)."""
        deadline = time.monotonic() + wait
        while True:
            pid = target.proc.inner_pid() if target.proc else None
            if pid is not None or time.monotonic() > deadline or target.proc is None:
                return pid
            await asyncio.sleep(0.05)

    def client_gone(self, d: Dyno) -> None:
        if d.proc is not None and d.proc.alive():
            d.want = Intent.RETIRE
            d.stop_event.set()

    async def terminate(self, d: Dyno, proc: DynoProcess, exit_task: asyncio.Task[int]) -> None:
        grace = self.settings.stop_grace
        self.heroku(d, "Stopping all processes with SIGTERM")
        proc.signal(procs.SIGTERM)
        done, _ = await asyncio.wait({exit_task}, timeout=grace)
        if not done:
            self.heroku(
                d,
                f"Error R12 (Exit timeout) -> At least one process failed to exit "
                f"within {grace:g} seconds of SIGTERM",
            )
            self.heroku(d, "Stopping remaining processes with SIGKILL")
            proc.signal(procs.SIGKILL)

    async def port_open(self, port: int, host: str = HOST) -> bool:
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 1.0)
        except (OSError, TimeoutError):
            return False
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
        return True

    async def monitor(self, d: Dyno, proc: DynoProcess, app: AppRuntime) -> None:
        """Returns only after killing the process (R10, R15); cancelled otherwise."""
        s = self.settings
        if d.type == "web" and not d.one_off and d.port is not None:
            boot_timeout = s.boot_timeout or app.boot_timeout
            deadline = time.monotonic() + boot_timeout
            next_mem = time.monotonic() + s.memory_check_interval
            while not await self.port_open(d.port, d.host):
                if time.monotonic() >= deadline:
                    self.heroku(
                        d,
                        f"Error R10 (Boot timeout) -> Web process failed to bind to "
                        f"$PORT within {boot_timeout:g} seconds of launch",
                    )
                    self.heroku(d, "Stopping process with SIGKILL")
                    proc.signal(procs.SIGKILL)
                    return
                if time.monotonic() >= next_mem:
                    next_mem += s.memory_check_interval
                    if self.check_memory(d, proc):
                        return
                await asyncio.sleep(s.boot_poll_interval)
        if d.want == Intent.RUN and d.state == DynoState.STARTING and not d.stop_event.is_set():
            d.up_since = time.monotonic()
            self.set_state(d, DynoState.UP)
        while True:
            await asyncio.sleep(s.memory_check_interval)
            if self.check_memory(d, proc):
                return

    def check_memory(self, d: Dyno, proc: DynoProcess) -> bool:
        """R14 above the quota, R15 and SIGKILL at twice it. True when killed."""
        quota = self.settings.quota_mb(d.size)
        m = proc.memory()
        if m.total_mb >= 2 * quota:
            self.heroku(d, mem_running_line(m, quota))
            self.heroku(d, "Error R15 (Memory quota vastly exceeded)")
            self.heroku(d, "Stopping process with SIGKILL")
            proc.signal(procs.SIGKILL)
            return True
        now = time.monotonic()
        if m.total_mb > quota and now - d.r14_at >= self.settings.r14_interval:
            d.r14_at = now
            self.heroku(d, mem_running_line(m, quota))
            self.heroku(d, "Error R14 (Memory quota exceeded)")
        return False

    # -- a formation dyno's supervisor ---------------------------------------------------
    async def supervise(self, st: AppState, d: Dyno) -> None:
        s = self.settings
        try:
            while d.want != Intent.RETIRE:
                if d.want == Intent.IDLE:
                    d.kick.clear()
                    while d.want == Intent.IDLE:
                        await d.kick.wait()
                        d.kick.clear()
                    if d.want == Intent.RUN:
                        self.heroku(d, "Unidling")
                        self.set_state(d, DynoState.STARTING)
                    continue
                app = st.app
                if not d.preboot_old:
                    d.command = app.process_types.get(d.type, d.command)
                    d.size = app.formation.get(d.type, (0, d.size))[1] or d.size
                outcome, _ = await self.run_once(st, d, app)
                # run_once may have been told to retire the dyno meanwhile
                if d.want == Intent.RETIRE or d.preboot_old:  # type: ignore[comparison-overlap]
                    break
                d.restarts += 1
                if outcome == STOPPED:
                    continue
                if d.up_since is not None and time.monotonic() - d.up_since >= s.crash_reset_after:
                    d.crash_count = 0
                d.up_since = None
                d.crash_count += 1
                delay = s.cooloff(d.crash_count)
                if delay > 0:
                    d.kick.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(d.kick.wait(), delay)
                if d.want == Intent.RUN:
                    self.set_state(d, DynoState.STARTING)
        finally:
            if d.proc is not None and d.proc.alive():
                d.proc.signal(procs.SIGKILL)
            if d in st.dynos:
                st.dynos.remove(d)
            if d.state != DynoState.DOWN:
                d.state = DynoState.DOWN
            self.gc_homes(st)
            self.changed(d.app_id)
