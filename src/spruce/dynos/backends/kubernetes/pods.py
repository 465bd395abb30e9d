"""What a pod says about its dyno: Heroku's state, and the platform's log lines for a change
(sans-IO: API-shaped pod dicts in, views and lines out)."""

from __future__ import annotations

import datetime
import time
from dataclasses import dataclass
from typing import Any

from spruce.dynos.backends.kubernetes import names
from spruce.dynos.backends.kubernetes.manifests import CONTAINER
from spruce.dynos.model import DynoInfo
from spruce.dynos.sizes import get_size


def _ts(value: str | None) -> float | None:
    try:
        return datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


@dataclass(frozen=True)
class PodView:
    uid: str
    name: str
    app_id: str
    dyno: str
    process_type: str
    one_off: bool
    attached: bool
    """A `heroku run` session: its output goes to the client, not to the logs."""
    release_id: str
    release_version: int
    size: str
    command: str
    port: int | None
    secret: str
    node: str | None
    pod_ip: str | None
    phase: str
    deleting: bool
    ready: bool
    started: bool
    running: bool
    container_id: str | None
    restart_count: int
    waiting_reason: str | None
    terminated: tuple[int, str, float, float] | None
    """The latest ended run of the container: (exit code, reason, seconds it ran, when)."""
    created_at: float
    state: str
    fir_hash: str = ""
    """Set for a Fir image's dynos: their names are Fir's (see `heroku_name`)."""

    @property
    def heroku_name(self) -> str:
        """The dyno's name in the API, the logs and the router: `web.1`, or on a Fir image
        `web-<hash>-<5>` from the pod's own name (a new pod, a new name, as on Fir). `dyno`
        stays the Deployment's key (`web.1`); a one-off's label is its name already."""
        if not self.fir_hash or self.one_off or not self.name:
            return self.dyno
        return names.fir_name(self.process_type, self.fir_hash, self.name)

    @property
    def instance(self) -> tuple[str, int]:
        """One run of the container: the unit a log stream follows."""
        return (self.uid, self.restart_count)


def _container(pod: dict[str, Any]) -> dict[str, Any]:
    for c in pod.get("status", {}).get("containerStatuses") or []:
        if c.get("name") == CONTAINER:
            return dict(c)
    return {}


def _ended(c: dict[str, Any]) -> tuple[int, str, float, float] | None:
    term = (c.get("state") or {}).get("terminated") or (c.get("lastState") or {}).get("terminated")
    if not term:
        return None
    started, finished = _ts(term.get("startedAt")), _ts(term.get("finishedAt"))
    ran = (finished - started) if started is not None and finished is not None else 0.0
    return int(term.get("exitCode", 0)), str(term.get("reason") or ""), ran, finished or 0.0


def view(pod: dict[str, Any]) -> PodView:
    meta = pod.get("metadata", {})
    labels, ann = meta.get("labels") or {}, meta.get("annotations") or {}
    status = pod.get("status", {})
    c = _container(pod)
    state = c.get("state") or {}
    running = "running" in state
    waiting = (state.get("waiting") or {}).get("reason")
    ready = any(
        cond.get("type") == "Ready" and cond.get("status") == "True"
        for cond in status.get("conditions") or []
    )
    started = bool(c.get("started"))
    port = ann.get(names.PORT)
    phase = status.get("phase") or "Pending"
    deleting = bool(meta.get("deletionTimestamp"))
    one_off = labels.get(names.ONE_OFF) == "true"
    ptype = labels.get(names.PROCESS_TYPE, "")
    if deleting or phase in ("Succeeded", "Failed"):
        dyno_state = "down"
    elif waiting == "CrashLoopBackOff" or "terminated" in state:
        dyno_state = "crashed"
    elif running and (started or ptype != "web" or one_off):
        dyno_state = "up"
    else:
        dyno_state = "starting"
    return PodView(
        uid=meta.get("uid", ""),
        name=meta.get("name", ""),
        app_id=ann.get(names.APP_ID, ""),
        dyno=labels.get(names.DYNO, ""),
        process_type=ptype,
        one_off=one_off,
        attached=labels.get(names.ATTACHED) == "true",
        release_id=ann.get(names.RELEASE_ID, ""),
        release_version=int(ann.get(names.RELEASE_VERSION) or 0),
        size=ann.get(names.SIZE, ""),
        command=ann.get(names.COMMAND, ""),
        port=int(port) if port else None,
        secret=ann.get(names.CONFIG_SECRET, ""),
        node=(pod.get("spec") or {}).get("nodeName"),
        pod_ip=status.get("podIP"),
        phase=phase,
        deleting=deleting,
        ready=ready and not deleting,
        started=started,
        running=running,
        container_id=c.get("containerID"),
        restart_count=int(c.get("restartCount") or 0),
        waiting_reason=waiting,
        terminated=_ended(c),
        created_at=_ts(meta.get("creationTimestamp")) or 0.0,
        state=dyno_state,
        fir_hash=ann.get(names.FIR_HASH, ""),
    )


def lines(old: PodView | None, new: PodView, boot_timeout: float) -> list[str]:
    """Heroku's platform lines (source heroku, process = the dyno) for one pod change."""
    out: list[str] = []
    before = old.state if old is not None else "starting"
    if new.deleting and (old is None or not old.deleting):
        out.append("Stopping all processes with SIGTERM")
    if old is not None and new.terminated is not None and new.terminated != old.terminated:
        code, reason, ran, _ = new.terminated
        never_bound = (
            new.process_type == "web"
            and not new.one_off
            and new.port is not None
            and not old.started
            and ran >= boot_timeout * 0.9
        )
        if reason == "OOMKilled":
            out += ["Error R15 (Memory quota vastly exceeded)", "Stopping process with SIGKILL"]
        elif never_bound and not new.deleting:
            out += [
                f"Error R10 (Boot timeout) -> Web process failed to bind to $PORT within "
                f"{boot_timeout:g} seconds of launch",
                "Stopping process with SIGKILL",
            ]
        out.append(f"Process exited with status {code}")
        if not new.one_off and not new.deleting and before != "crashed":
            # The kubelet may restart it before anyone sees the pod crashed: say so anyway.
            out.append(f"State changed from {before} to crashed")
            before = "crashed"
    state_line = []
    if new.one_off and new.state == "down":
        if before != "down":
            state_line.append(f"State changed from {before} to complete")
    elif new.state != before:
        state_line.append(f"State changed from {before} to {new.state}")
    if new.state == "starting":  # Heroku says the state first, then the command
        out += state_line
    if new.running and new.container_id and (old is None or old.container_id != new.container_id):
        out.append(f"Starting process with command `{new.command}`")
    if new.state != "starting":
        out += state_line
    return out


def dyno_info(p: PodView, host: str | None) -> DynoInfo:
    """A dyno as the API shows it, from its pod."""
    return DynoInfo(
        id=p.uid,
        app_id=p.app_id,
        name=p.heroku_name,
        type=p.process_type,
        state=p.state,
        size=get_size(p.size or None).display_name,
        command=p.command,
        release_id=p.release_id,
        release_version=p.release_version,
        host=host or "",
        port=p.port if p.running else None,
        pid=None,
        created_at=p.created_at,
        updated_at=time.time(),
    )


def idle_name(dyno: str, dep: dict[str, Any]) -> str:
    """The name of a formation dyno with no pod: `web.1`, or a Fir name that stays the same
    until a pod exists (its suffix derived from the Deployment)."""
    ann = dep["spec"]["template"]["metadata"].get("annotations") or {}
    fir_hash = ann.get(names.FIR_HASH)
    if not fir_hash:
        return dyno
    suffix = names.stand_in_suffix(str(dep["metadata"].get("uid") or dep["metadata"]["name"]))
    return names.fir_name(dyno.split(".")[0], fir_hash, suffix)


def idle_info(app_id: str, dyno: str, dep: dict[str, Any], sleeping: bool) -> DynoInfo:
    """A formation dyno with no pod: asleep (scaled to 0), or its pod not made yet."""
    ann = dep["spec"]["template"]["metadata"].get("annotations") or {}
    return DynoInfo(
        id=str(dep["metadata"].get("uid", "")),
        app_id=app_id,
        name=idle_name(dyno, dep),
        type=dyno.split(".")[0],
        state="idle" if sleeping else "starting",
        size=get_size(ann.get(names.SIZE) or None).display_name,
        command=ann.get(names.COMMAND, ""),
        release_id=ann.get(names.RELEASE_ID, ""),
        release_version=int(ann.get(names.RELEASE_VERSION) or 0),
        host="",
        port=None,
        pid=None,
        created_at=_ts(dep["metadata"].get("creationTimestamp")) or time.time(),
        updated_at=time.time(),
    )
