"""The Kubernetes dyno backend: the local dyno manager's interface, with dynos as workloads.

converge() writes the app's config Secret and one Deployment per formation dyno, rolling out
only what changed; dyno states, routing endpoints and platform log lines follow the pod
watch; one-off dynos are Pods, the release phase a Job; Eco apps sleep as a scale to 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import logging
import random
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spruce.dynos.backends.kubernetes import manifests, memory, names, pods
from spruce.dynos.backends.kubernetes.api import Kube, Obj
from spruce.dynos.backends.kubernetes.images import ImageSource
from spruce.dynos.backends.kubernetes.manifests import DynoSpec, KubernetesSettings
from spruce.dynos.backends.kubernetes.oneoffs import OneOff, OneOffDynos
from spruce.dynos.backends.kubernetes.validation import validate_app
from spruce.dynos.backends.kubernetes.watch import LogFollower, PodWatch
from spruce.dynos.images import template_hash
from spruce.dynos.model import (
    DYNO_NAME_RE,
    AppRuntime,
    DynoInfo,
    DynoSettings,
    check_dyno_name,
)
from spruce.dynos.rendezvous import RendezvousServer
from spruce.dynos.sizes import DynoError, DynoNotFound, get_size
from spruce.events import LogSink
from spruce.services.model import DynoSample, DynoUsage, WebEndpoint

log = logging.getLogger(__name__)


class ClusterUnreachable(OSError):
    """start() could not reach the cluster, or may not use its namespace."""


def _reason(e: Exception) -> str:
    """The first line of what the client says, without the request it retried."""
    reason = getattr(e, "reason", None) or str(e)
    return str(reason).splitlines()[0][:300]


@dataclass(eq=False)
class AppRecord:
    app: AppRuntime
    secret: str = ""
    deployments: dict[str, Obj] = field(default_factory=dict)
    """Dyno name -> the Deployment as last written or listed."""
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    last_request: float = field(default_factory=time.monotonic)
    sleeping: bool = False


class KubernetesBackend(OneOffDynos):
    def __init__(
        self,
        log_sink: LogSink,
        images: ImageSource,
        *,
        kubeconfig: Path | None = None,
        settings: KubernetesSettings | None = None,
        dyno_settings: DynoSettings | None = None,
        on_change: Callable[[str], None] | None = None,
        rendezvous: RendezvousServer | None = None,
        placement: Callable[[AppRuntime], dict[str, str]] | None = None,
        on_sample: Callable[[tuple[DynoSample, ...]], None] | None = None,
    ) -> None:
        """`on_sample` hears each round of the dynos' memory and load (the platform's
        metrics and telemetry), as from the local dyno manager."""
        self.sink = log_sink
        self.rendezvous = rendezvous
        """Where `heroku run` clients meet their one-off dynos (started by the caller)."""
        self.placement = placement
        """The node labels an app's dynos need (a space's region: topology labels)."""
        self.images = images
        self.kubeconfig = kubeconfig
        self.ks = settings or KubernetesSettings()
        self.ds = dyno_settings or DynoSettings()
        self._notify = on_change or (lambda app_id: None)
        self.kube: Kube | None = None
        self._apps: dict[str, AppRecord] = {}
        self._pods: dict[str, pods.PodView] = {}
        self._one_offs: dict[tuple[str, str], OneOff] = {}
        self._reserved_ports: set[int] = set()
        self._meter_rules = memory.Meter(self.ds, self._heroku, on_sample)
        self._watch: PodWatch | None = None
        self._logs: LogFollower | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._started = False

    @property
    def warnings(self) -> list[str]:
        """The cluster provides the isolation: nothing for the operator here."""
        return []

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        """Connect, adopt what runs already (nothing restarts), start the pod watch."""
        if self._started:
            return
        loop = asyncio.get_running_loop()
        try:
            self.kube = kube = await asyncio.to_thread(Kube, self.kubeconfig, self.ks.namespace)
            await asyncio.to_thread(kube.ensure_namespace)
            for secret in self.images.pull_secrets():  # the registry's login, as it is now
                if await asyncio.to_thread(kube.get, "Secret", secret["metadata"]["name"]):
                    await asyncio.to_thread(kube.replace, secret)
                else:
                    await asyncio.to_thread(kube.create, secret)
            selector = names.MANAGED_BY + "=spruce"
            listed = await asyncio.to_thread(kube.list, "Deployment", selector)
        except Exception as e:
            raise ClusterUnreachable(
                f"the Kubernetes cluster of {self.kubeconfig or 'the default kubeconfig'} "
                f"refused or did not answer ({type(e).__name__}: {_reason(e)})"
            ) from None
        for dep in listed.get("items") or []:
            self._adopt(dep)
        self._logs = LogFollower(kube, loop)
        self._watch = PodWatch(kube, loop, self._on_snapshot, self._on_pod_event)
        self._watch.start()
        await asyncio.wait_for(self._watch.synced.wait(), 60)
        self._tasks = [asyncio.create_task(self._sleeper()), asyncio.create_task(self._meter())]
        self._started = True

    def _adopt(self, dep: Obj) -> None:
        meta = dep["metadata"]
        ann, labels = meta.get("annotations") or {}, meta.get("labels") or {}
        app_id, dyno = ann.get(names.APP_ID), labels.get(names.DYNO)
        if not app_id or not dyno:
            return
        rec = self._apps.get(app_id)
        if rec is None:
            # A stand-in until the platform converges the app again (with its real runtime).
            stub = AppRuntime(app_id, app_id, ann.get(names.RELEASE_ID, ""), 0, None, {}, {})
            rec = self._apps[app_id] = AppRecord(stub)
        rec.deployments[dyno] = dep
        rec.sleeping = rec.sleeping or (dep["spec"].get("replicas") == 0)
        rec.secret = ann.get(names.CONFIG_SECRET, rec.secret) or manifests.secret_of(dep)

    async def shutdown(self) -> None:
        """Stop watching. Dynos keep running on the cluster; a later start() adopts them."""
        for t in self._tasks:
            t.cancel()
        if self._watch:
            self._watch.stop()
            # A watch blocked in a read ends by itself at its next event or timeout.
            await asyncio.to_thread(self._watch.join, 1)
        for o in self._one_offs.values():
            if not o.done.done():
                o.done.cancel()
        if self.kube:
            self.kube.close()
        self._started = False

    def _require_started(self) -> Kube:
        if not self._started or self.kube is None:
            raise RuntimeError("KubernetesBackend.start() has not been awaited")
        return self.kube

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.to_thread(fn, *args)

    async def _write(self, manifest: Obj, replace: bool = False) -> Obj:
        if self.ks.validate_against:
            manifests.validate(manifest, self.ks.validate_against)
        kube = self._require_started()
        return dict(await self._call(kube.replace if replace else kube.create, manifest))

    def _record(self, app: AppRuntime) -> AppRecord:
        rec = self._apps.get(app.app_id)
        if rec is None:
            rec = self._apps[app.app_id] = AppRecord(app)
        return rec

    # -- desired state -------------------------------------------------------------------
    async def converge(self, app: AppRuntime) -> None:
        """Write the app's formation and release to the cluster (returns once written)."""
        kube = self._require_started()
        validate_app(app)
        app = dataclasses.replace(
            app,
            process_types=dict(app.process_types),
            config=dict(app.config),
            features=set(app.features),
            formation={t: (q, get_size(s).name) for t, (q, s) in app.formation.items()},
        )
        rec = self._record(app)
        async with rec.lock:
            rec.app = app
            rec.last_request = time.monotonic()
            rec.secret = await self._ensure_secret(rec, app)
            image = self.images.image_for(app)
            want: dict[str, Obj] = {}
            for ptype, (quantity, size) in sorted(app.formation.items()):
                for index in range(1, quantity + 1):
                    dyno = f"{ptype}.{index}"
                    cur = rec.deployments.get(dyno)
                    spec = DynoSpec(
                        app, ptype, dyno, size, app.process_types[ptype], rec.secret, image,
                        manifests.port_of(cur) if cur else None,
                        node_selector=self._placement(app), fir_hash=self._fir_hash(app, ptype),
                    )  # fmt: skip
                    if ptype == "web" and spec.port is None:
                        spec = dataclasses.replace(spec, port=self._new_port())
                    replicas = 0 if rec.sleeping else 1
                    body = manifests.deployment(spec, self.ds, self.ks, replicas)
                    if cur is not None and manifests.hash_of(cur) == manifests.hash_of(body):
                        if cur["spec"].get("replicas") != replicas:
                            cur = await self._call(
                                kube.patch, "Deployment", cur["metadata"]["name"],
                                {"spec": {"replicas": replicas}},
                            )  # fmt: skip
                        want[dyno] = cur
                        continue
                    if cur is not None and ptype == "web":  # a rollout: the new pod's own port
                        spec = dataclasses.replace(spec, port=self._new_port())
                        body = manifests.deployment(spec, self.ds, self.ks, replicas)
                    want[dyno] = await self._write(body, replace=cur is not None)
            for dyno, dep in rec.deployments.items():
                if dyno not in want:
                    await self._call(kube.delete, "Deployment", dep["metadata"]["name"])
            rec.deployments = want
            await self._gc_secrets(rec)
        self._changed(app.app_id)

    @staticmethod
    def _fir_hash(app: AppRuntime, process_type: str, size: str | None = None) -> str:
        """A Fir image's dynos are named as on Fir (and as the local backend names them)."""
        if app.image is None:
            return ""
        if size is None:
            size = app.formation[process_type][1]
        return template_hash(app.release_id, process_type, get_size(size).name)

    def _new_port(self) -> int:
        """A port no dyno of this backend uses (hostNetwork), or the pod network's PORT."""
        if not self.ks.host_network:
            return self.ks.pod_port
        used = set(self._reserved_ports)
        used |= {p.port for p in self._pods.values() if p.port is not None}
        for rec in self._apps.values():
            used |= {p for p in map(manifests.port_of, rec.deployments.values()) if p is not None}
        low, high = self.ks.port_range
        for _ in range(1000):
            port = random.randint(low, high)
            if port not in used and self._free_here(port):
                self._reserved_ports.add(port)
                return port
        raise DynoError("no free dyno port left in the configured range")

    def _free_here(self, port: int) -> bool:
        """When the nodes are this host, a port someone else listens on is no use either."""
        if self.ks.endpoint_host is None:
            return True
        with socket.socket() as s:
            try:
                s.bind((self.ks.endpoint_host, port))
            except OSError:
                return False
        return True

    async def _ensure_secret(self, rec: AppRecord, app: AppRuntime) -> str:
        """The Secret holding the config vars; a new one (and so a rollout) when they change."""
        kube = self._require_started()
        if rec.secret:
            cur = await self._call(kube.get, "Secret", rec.secret)
            if cur is not None and manifests.secret_data(cur) == app.config:
                return rec.secret
        name = names.object_name(app.app_name, "config", secrets.token_hex(4))
        await self._write(manifests.config_secret(app, name))
        return name

    async def _gc_secrets(self, rec: AppRecord) -> None:
        """Drop config Secrets no Deployment or pod of the app refers to any more."""
        kube = self._require_started()
        listed = await self._call(kube.list, "Secret", names.app_selector(rec.app.app_id))
        in_use = {rec.secret} | {manifests.secret_of(d) for d in rec.deployments.values()}
        for secret in listed.get("items") or []:
            name = secret["metadata"]["name"]
            if name not in in_use and not self._pod_uses(name):
                await self._call(kube.delete, "Secret", name)

    def _pod_uses(self, secret: str) -> bool:
        return any(p.secret == secret for p in self._pods.values())

    # -- the pod watch -------------------------------------------------------------------
    def _boot_timeout(self, app_id: str) -> float:
        rec = self._apps.get(app_id)
        return self.ds.boot_timeout or (rec.app.boot_timeout if rec else 60.0)

    def _on_snapshot(self, items: list[Obj]) -> None:
        """The first list (or a relist): adopt running pods, follow their logs from now."""
        seen = {}
        for obj in items:
            v = pods.view(obj)
            seen[v.uid] = v
            self._follow(v, since_seconds=1)
        gone = set(self._pods) - set(seen)
        self._pods = seen
        for uid in gone:
            if self._logs:
                self._logs.forget(uid)
        for app_id in {v.app_id for v in seen.values()}:
            self._changed(app_id)

    def _on_pod_event(self, kind: str, obj: Obj) -> None:
        new = pods.view(obj)
        if not new.app_id:
            return
        old = self._pods.get(new.uid)
        if kind == "DELETED":
            self._pods.pop(new.uid, None)
            if old is not None and not old.deleting and not old.one_off:
                self._heroku(new, "Stopping all processes with SIGTERM")
            if self._logs:
                self._logs.forget(new.uid)
        else:
            self._pods[new.uid] = new
            for line in pods.lines(old, new, self._boot_timeout(new.app_id)):
                self._heroku(new, line)
            self._follow(new)
            o = self._one_offs.get((new.app_id, new.dyno)) if new.one_off else None
            if o is not None and (new.running or new.terminated):
                o.running.set()
            if new.one_off and new.phase in ("Succeeded", "Failed"):
                self._one_off_ended(new)
        if old is None or kind == "DELETED" or self._routing_key(old) != self._routing_key(new):
            self._changed(new.app_id)

    def _placement(self, app: AppRuntime) -> tuple[tuple[str, str], ...]:
        return tuple(sorted((self.placement(app) if self.placement else {}).items()))

    @staticmethod
    def _routing_key(v: pods.PodView) -> tuple[Any, ...]:
        return (v.state, v.ready, v.pod_ip, v.port, v.deleting, v.restart_count)

    def _follow(self, v: pods.PodView, since_seconds: int | None = None) -> None:
        if self._logs is None or not (v.running or v.terminated) or not v.dyno or v.attached:
            return
        app_id, dyno = v.app_id, v.heroku_name

        def emit(line: str) -> None:
            self.sink.emit(app_id, "app", dyno, line)

        before = (v.uid, v.restart_count - 1)
        if since_seconds is None and v.restart_count > 0 and not self._logs.following(before):
            # A run that ended before its stream was opened (a quick crash): what the
            # kubelet kept of it.
            self._logs.follow(before, v.name, emit, previous=True)
        self._logs.follow(v.instance, v.name, emit, since_seconds)

    def _heroku(self, v: pods.PodView, message: str) -> None:
        self.sink.emit(v.app_id, "heroku", v.heroku_name, message)

    def _changed(self, app_id: str) -> None:
        try:
            self._notify(app_id)
        except Exception:  # the control plane's bug must not stop the watch
            log.exception("on_change callback failed for app %s", app_id)

    # -- queries -------------------------------------------------------------------------
    def apps(self) -> list[str]:
        return sorted(self._apps)

    def _app_pods(self, app_id: str) -> list[pods.PodView]:
        return [p for p in self._pods.values() if p.app_id == app_id]

    def dynos(self, app_id: str) -> list[DynoInfo]:
        """One entry per dyno: its newest pod, and during a surge rollout (preboot) the
        older pod too while it still serves, so that the router keeps sending to it until
        the new one is ready (the routing table is made from this list)."""
        rec = self._apps.get(app_id)
        by_dyno: dict[str, pods.PodView] = {}
        serving: list[pods.PodView] = []
        for p in sorted(self._app_pods(app_id), key=lambda p: (p.deleting, -p.created_at)):
            if p.dyno not in by_dyno:
                by_dyno[p.dyno] = p
            elif p.ready and not p.one_off:
                serving.append(p)
        out = [
            (p.dyno, pods.dyno_info(p, self._address(p)))
            for p in [*by_dyno.values(), *serving]
            if p.state != "down" or not p.one_off
        ]
        if rec is not None:  # formation dynos with no pod yet (or asleep)
            for dyno, dep in rec.deployments.items():
                if dyno not in by_dyno:
                    out.append((dyno, pods.idle_info(rec.app.app_id, dyno, dep, rec.sleeping)))
        return [info for _, info in sorted(out, key=lambda x: _order(x[0], x[1]))]

    def _key_of(self, app_id: str, dyno_name: str) -> str | None:
        """The Deployment key (`web.1`) or one-off of a dyno named as the API names it."""
        rec = self._apps.get(app_id)
        if rec is not None and dyno_name in rec.deployments:
            return dyno_name
        if (app_id, dyno_name) in self._one_offs:
            return dyno_name
        for p in self._app_pods(app_id):
            if p.heroku_name == dyno_name:
                return p.dyno
        if rec is not None:
            for dyno, dep in rec.deployments.items():
                if pods.idle_name(dyno, dep) == dyno_name:
                    return dyno
        return None

    def _address(self, p: pods.PodView) -> str | None:
        return self.ks.endpoint_host or p.pod_ip

    def web_endpoints(self, app_id: str) -> list[WebEndpoint]:
        """Ready, not terminating web pods (Kubernetes' readiness follows $PORT)."""
        out = []
        for p in self._app_pods(app_id):
            address = self._address(p)
            if p.process_type == "web" and not p.one_off and p.ready and p.port and address:
                out.append(WebEndpoint(p.heroku_name, p.uid, address, p.port))
        return sorted(out, key=lambda e: e.dyno_name)

    # -- actions -------------------------------------------------------------------------
    async def restart(
        self, app_id: str, process_type: str | None = None, dyno_name: str | None = None
    ) -> None:
        """Roll formation dynos out again (new pods); a one-off is ended."""
        kube = self._require_started()
        rec = self._apps.get(app_id)
        if rec is None:
            raise DynoNotFound(f"no dynos for app {app_id!r}")
        if dyno_name is not None:
            check_dyno_name(dyno_name)
            one_off = self._one_offs.get((app_id, dyno_name))
            if one_off is not None:
                await self._call(kube.delete, one_off.kind, one_off.object_name)
                return
            key = self._key_of(app_id, dyno_name)
            if key is None or key not in rec.deployments:
                raise DynoNotFound(f"no dyno {dyno_name!r}")
            dyno_name = key
        stamp = datetime.datetime.now(datetime.UTC).isoformat()
        async with rec.lock:
            for dyno, dep in list(rec.deployments.items()):
                if (dyno_name and dyno != dyno_name) or (
                    process_type and dyno.split(".")[0] != process_type
                ):
                    continue
                port = manifests.port_of(dep)
                if port is not None and self.ks.host_network:
                    port = self._new_port()
                body = manifests.restarted(dep, port, stamp)
                rec.deployments[dyno] = await self._write(body, replace=True)
            if dyno_name is None:
                for o in list(self._one_offs.values()):
                    if o.app_id == app_id and (process_type in (None, o.info.type)):
                        await self._call(kube.delete, o.kind, o.object_name)

    async def stop(
        self, app_id: str, process_type: str | None = None, dyno_name: str | None = None
    ) -> None:
        """As on Heroku, stopped formation dynos come back (a restart); one-offs end."""
        await self.restart(app_id, process_type, dyno_name)

    async def remove_app(self, app_id: str) -> None:
        kube = self._require_started()
        selector = names.app_selector(app_id)
        rec = self._apps.pop(app_id, None)
        for kind in ("Deployment", "Job", "Pod", "Secret"):
            listed = await self._call(kube.list, kind, selector)
            for obj in listed.get("items") or []:
                await self._call(kube.delete, kind, obj["metadata"]["name"])
        for key, o in list(self._one_offs.items()):
            if o.app_id == app_id:
                if not o.done.done():
                    o.done.set_result(None)
                del self._one_offs[key]
        if rec is not None:
            self._changed(app_id)

    # -- memory: R14 and log-runtime-metrics ---------------------------------------------
    async def _meter(self) -> None:
        """Every metrics interval: each node's summary once, for memory.Meter's round."""
        kube = self._require_started()
        while True:
            await asyncio.sleep(self.ds.metrics_interval)
            running = [p for p in self._pods.values() if p.running and p.node and not p.deleting]
            found: dict[str, dict[str, memory.PodStats]] = {}
            for node in sorted({p.node for p in running if p.node}):
                try:
                    found[node] = memory.samples(await self._call(memory.node_summary, kube, node))
                except Exception as e:  # a node gone or not serving stats yet
                    log.debug("no memory stats from %s: %s", node, e)
            self._meter_rules.round(running, found, self._features)

    def _features(self, app_id: str) -> set[str]:
        rec = self._apps.get(app_id)
        return rec.app.features if rec is not None else set()

    # -- Eco sleeping: a scale to 0 ------------------------------------------------------
    def usage(self, app_id: str) -> list[DynoUsage]:
        """The app's running dynos as the kubelets measured them at the last round."""
        return self._meter_rules.usage(app_id, self._pods)

    def note_request(self, app_id: str) -> None:
        """Router traffic for the app: resets the sleep timer (and wakes a sleeping app)."""
        rec = self._apps.get(app_id)
        if rec is None:
            return
        rec.last_request = time.monotonic()
        if rec.sleeping:
            self.wake(app_id)

    def wake(self, app_id: str) -> None:
        rec = self._apps.get(app_id)
        if rec is None:
            return
        rec.last_request = time.monotonic()
        if rec.sleeping:
            rec.sleeping = False
            self._tasks.append(asyncio.create_task(self._scale_all(rec, 1, "Unidling")))

    def _sleeps(self, app: AppRuntime) -> bool:
        used = [(q, s) for q, s in app.formation.values() if q > 0]
        return app.formation.get("web", (0, ""))[0] > 0 and all(get_size(s).sleeps for _, s in used)

    async def _scale_all(self, rec: AppRecord, replicas: int, line: str) -> None:
        kube = self._require_started()
        async with rec.lock:
            for dyno, dep in list(rec.deployments.items()):
                for name in self._names_of(rec, dyno, dep):
                    self.sink.emit(rec.app.app_id, "heroku", name, line)
                rec.deployments[dyno] = await self._call(
                    kube.patch, "Deployment", dep["metadata"]["name"],
                    {"spec": {"replicas": replicas}},
                )  # fmt: skip
        self._changed(rec.app.app_id)

    def _names_of(self, rec: AppRecord, dyno: str, dep: Obj) -> list[str]:
        """What the logs call a formation dyno now: its pods' names, else its idle name."""
        found = {
            p.heroku_name
            for p in self._app_pods(rec.app.app_id)
            if p.dyno == dyno and not p.one_off and not p.deleting
        }
        return sorted(found) or [pods.idle_name(dyno, dep)]

    async def _sleeper(self) -> None:
        while True:
            await asyncio.sleep(self.ds.sleep_check_interval)
            now = time.monotonic()
            self._tasks = [t for t in self._tasks if not t.done()]
            for rec in list(self._apps.values()):
                if (
                    not rec.sleeping
                    and rec.deployments
                    and self._sleeps(rec.app)
                    and now - rec.last_request >= self.ds.sleep_after
                ):
                    rec.sleeping = True
                    with contextlib.suppress(Exception):
                        await self._scale_all(rec, 0, "Idling")


def _order(key: str, info: DynoInfo) -> tuple[str, int, float]:
    """Dynos by type, then index (`web.2` before `web.10`), then age."""
    m = DYNO_NAME_RE.match(key)
    return (info.type, int(m.group(2)) if m else 0, info.created_at)
