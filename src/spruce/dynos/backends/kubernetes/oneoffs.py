"""One-off dynos on Kubernetes: `heroku run` as a Pod (attached through the rendezvous and
the apiserver's attach stream, or detached with its output in the logs), the release phase
as a Job, and `run:inside` through the exec stream. The part of KubernetesBackend that runs
them, as Lifecycle is for the local manager."""

from __future__ import annotations

import abc
import asyncio
import contextlib
import dataclasses
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from spruce.dynos.backends.kubernetes import attach as attaching
from spruce.dynos.backends.kubernetes import manifests, pods
from spruce.dynos.backends.kubernetes.api import Kube, Obj
from spruce.dynos.backends.kubernetes.images import ImageSource
from spruce.dynos.backends.kubernetes.manifests import DynoSpec, KubernetesSettings
from spruce.dynos.backends.kubernetes.validation import validate_app
from spruce.dynos.backends.kubernetes.watch import LogFollower
from spruce.dynos.images import fir_dyno_name
from spruce.dynos.model import ENV_NAME_RE, AppRuntime, DynoInfo, DynoSettings, check_dyno_name
from spruce.dynos.rendezvous import Attachment, RendezvousServer
from spruce.dynos.sizes import DynoError, DynoNotFound, get_size
from spruce.events import LogSink

log = logging.getLogger(__name__)


@dataclass(eq=False)
class OneOff:
    app_id: str
    name: str
    kind: str
    """Pod, or Job for the release phase."""
    object_name: str
    info: DynoInfo
    done: asyncio.Future[int | None]
    ending: bool = False
    running: asyncio.Event = field(default_factory=asyncio.Event)
    secret: str | None = None


class OneOffDynos(abc.ABC):
    sink: LogSink
    images: ImageSource
    rendezvous: RendezvousServer | None
    ks: KubernetesSettings
    ds: DynoSettings
    kube: Kube | None
    _one_offs: dict[tuple[str, str], OneOff]
    _tasks: list[asyncio.Task[None]]
    _logs: LogFollower | None
    _apps: dict[str, Any]

    # What the backend provides.
    @abc.abstractmethod
    def _require_started(self) -> Kube: ...

    @abc.abstractmethod
    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any: ...

    @abc.abstractmethod
    async def _write(self, manifest: Obj, replace: bool = False) -> Obj: ...

    @abc.abstractmethod
    def _new_port(self) -> int: ...

    @abc.abstractmethod
    def _changed(self, app_id: str) -> None: ...

    @abc.abstractmethod
    def _follow(self, v: pods.PodView, since_seconds: int | None = None) -> None: ...

    @abc.abstractmethod
    def _placement(self, app: AppRuntime) -> tuple[tuple[str, str], ...]: ...

    @abc.abstractmethod
    def _app_pods(self, app_id: str) -> list[pods.PodView]: ...

    @abc.abstractmethod
    def _address(self, p: pods.PodView) -> str | None: ...

    @abc.abstractmethod
    async def _ensure_secret(self, rec: Any, app: AppRuntime) -> str: ...

    @abc.abstractmethod
    def _record(self, app: AppRuntime) -> Any: ...

    # -- one-off dynos and the release phase ---------------------------------------------
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
        """Start a one-off dyno as a Pod (`run.1234`), or the release phase as a Job
        (process_type="release"). Its output goes to the log sink as app[run.1234]."""
        self._require_started()
        validate_app(app)
        if attach and (self.rendezvous is None or process_type == "release"):
            raise DynoError("attached one-off dynos need a rendezvous (and are not releases)")
        if not isinstance(command, str) or not command.strip():
            raise DynoError("a one-off dyno needs a command")
        extra = dict(env or {})
        for key, value in extra.items():
            if not ENV_NAME_RE.match(str(key)) or not isinstance(value, str):
                raise DynoError(f"invalid env var {key!r}")
        if size is None:
            web = app.formation.get("web")
            size = web[1] if web else None
        size_name = get_size(size).name
        rec = self._record(app)
        if not rec.secret or not rec.deployments:
            rec.secret = await self._ensure_secret(rec, app)
        taken = {name for (a, name) in self._one_offs if a == app.app_id}
        while True:
            name = f"{process_type}.{random.randint(1000, 9999)}"
            if app.image is not None:  # a Fir one-off is a pod of its own: run-<hash>-<5>
                name = fir_dyno_name(app.release_id, process_type, size_name, taken)
            if name not in taken:
                break
        image = self.images.image_for(app)
        if extra:
            image = dataclasses.replace(image, env={**image.env, **extra})
        spec = DynoSpec(
            app, process_type, name, size_name, command, rec.secret, image,
            self._new_port(), one_off=True, attach=attach, tty=tty and attach,
            node_selector=self._placement(app),
        )  # fmt: skip
        if process_type == "release":
            body = manifests.release_job(spec, self.ds, self.ks)
        else:
            body = manifests.one_off_pod(spec, self.ds, self.ks)
        created = await self._write(body)
        info = DynoInfo(
            id=str(created["metadata"].get("uid", "")),
            app_id=app.app_id,
            name=name,
            type=process_type,
            state="starting",
            size=get_size(size_name).display_name,
            command=command,
            release_id=app.release_id,
            release_version=app.release_version,
            host="",
            port=None,
            pid=None,
            created_at=time.time(),
            updated_at=time.time(),
        )
        done: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        o = self._one_offs[(app.app_id, name)] = OneOff(
            app.app_id, name, body["kind"], body["metadata"]["name"], info, done
        )
        if attach and self.rendezvous is not None:
            o.secret, met = self.rendezvous.expect(self.ds.rendezvous_timeout)
            info = dataclasses.replace(info, attach_url=self.rendezvous.url(o.secret))
            o.info = info
            self._tasks.append(asyncio.create_task(self._attached(o, met, tty)))
        self._changed(app.app_id)
        return info

    async def _attached(self, o: OneOff, met: asyncio.Future[Attachment], tty: bool) -> None:
        """Wait for the client at the rendezvous, then relay it to the pod's attach stream."""
        kube = self._require_started()
        try:
            att = await asyncio.wait_for(met, self.ds.rendezvous_timeout)
        except (TimeoutError, asyncio.CancelledError):
            if self.rendezvous and o.secret:
                self.rendezvous.forget(o.secret)
            self.sink.emit(
                o.app_id,
                "heroku",
                o.name,
                "Error R13 (Attach error) -> Failed to attach to process",
            )
            await self._call(kube.delete, o.kind, o.object_name, 0)
            if not o.done.done():
                o.done.set_result(None)
            return
        try:
            await asyncio.wait_for(o.running.wait(), 120)

            async def status() -> int | None:
                with contextlib.suppress(TimeoutError):
                    return await asyncio.wait_for(asyncio.shield(o.done), 30)
                return None

            await attaching.session(kube, o.object_name, att, tty, status)
        except Exception as e:
            log.warning("attach to %s failed: %s", o.name, e)
            att.done.set()
            await self._call(kube.delete, o.kind, o.object_name, 0)

    async def run_inside(self, app_id: str, dyno_name: str, command: str) -> DynoInfo:
        """Run a command in a running dyno's container (`heroku run:inside`), attached through
        the rendezvous; returns that dyno with an `attach_url`."""
        kube = self._require_started()
        if not isinstance(command, str) or not command.strip():
            raise DynoError("run-inside needs a command")
        check_dyno_name(dyno_name)
        if self.rendezvous is None:
            raise DynoError("run-inside needs a rendezvous")
        running = [
            p
            for p in self._app_pods(app_id)
            if dyno_name in (p.dyno, p.heroku_name) and p.running and not p.deleting
        ]
        if not running:
            raise DynoNotFound(f"dyno {dyno_name!r} is not running")
        target = max(running, key=lambda p: p.created_at)
        secret, met = self.rendezvous.expect(self.ds.rendezvous_timeout)
        info = dataclasses.replace(
            pods.dyno_info(target, self._address(target)), attach_url=self.rendezvous.url(secret)
        )
        shell = self.images.image_for(self._apps[app_id].app).shell

        async def inside() -> None:
            try:
                att = await asyncio.wait_for(met, self.ds.rendezvous_timeout)
            except (TimeoutError, asyncio.CancelledError):
                if self.rendezvous:
                    self.rendezvous.forget(secret)
                return
            try:
                await attaching.exec_session(kube, target.name, [*shell, command], att)
            except Exception as e:
                log.warning("run-inside %s failed: %s", dyno_name, e)
                att.done.set()

        self._tasks.append(asyncio.create_task(inside()))
        return info

    def _one_off_ended(self, v: pods.PodView) -> None:
        o = self._one_offs.get((v.app_id, v.dyno))
        if o is None or o.done.done() or o.ending:
            return
        o.ending = True
        status = v.terminated[0] if v.terminated else None
        asyncio.ensure_future(self._finish_one_off(o, v, status))

    async def _finish_one_off(self, o: OneOff, v: pods.PodView, status: int | None) -> None:
        """Deliver the last lines before the exit status, then remove the pod (or Job)."""
        if self._logs is not None and not v.attached:
            # A stream that ended before the container wrote anything is read again: the
            # container has ended, so this time it gives the whole output and stops.
            self._logs.reopen(v.instance)
            if not self._logs.following(v.instance):
                self._follow(v)
            await self._logs.drained(v.instance, 30)
        self.sink.emit(v.app_id, "heroku", v.dyno, f"Process exited with status {status}")
        if not o.done.done():
            o.done.set_result(status)
        if self.kube is not None:
            with contextlib.suppress(Exception):
                await self._call(self.kube.delete, o.kind, o.object_name, 0)

    async def wait_one_off(
        self, app_id: str, name: str, timeout: float | None = None
    ) -> int | None:
        """Wait for a one-off to end; its exit status (None: it never ran, or timed out,
        in which case it is stopped)."""
        o = self._one_offs.get((app_id, name))
        if o is None:
            raise DynoNotFound(f"no one-off dyno {name!r}")
        try:
            return await asyncio.wait_for(asyncio.shield(o.done), timeout)
        except TimeoutError:
            if self.kube is not None:
                await self._call(self.kube.delete, o.kind, o.object_name)
            return None
        finally:
            if o.done.done():
                self._one_offs.pop((app_id, name), None)
