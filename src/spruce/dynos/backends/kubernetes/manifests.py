"""The Kubernetes objects for Heroku's model, as plain manifests (pure functions).

One Deployment per dyno (`web.1` is Deployment `myapp-web-1` of one replica): with no pod
network (hostNetwork), every dyno needs its own PORT, and a pod template shared by several
replicas cannot give them one. A release (or restart) rolls each Deployment out, surging when
preboot is on. Config vars are a Secret read as environment; the release phase is a Job; a
one-off dyno is a bare Pod. APIs: apps/v1, batch/v1, core/v1 (v1.20 and current alike).
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import shlex
from dataclasses import dataclass
from typing import Any

from spruce.dynos.backends.kubernetes import names
from spruce.dynos.backends.kubernetes.images import ImageRef
from spruce.dynos.model import AppRuntime, DynoSettings
from spruce.dynos.sizes import get_size

CONTAINER = "dyno"
Manifest = dict[str, Any]


@dataclass(frozen=True)
class KubernetesSettings:
    namespace: str = "spruce"
    host_network: bool = True
    """No pod network (the test cluster has no CNI): dynos share the node's network and each
    gets its own PORT. False: pods on the pod network, PORT=5000 for all."""
    endpoint_host: str | None = None
    """Route to this address rather than the pod's IP (a cluster whose nodes are this host)."""
    port_range: tuple[int, int] = (20000, 29999)
    """Ports handed to hostNetwork dynos (kept clear of the ephemeral range)."""
    pod_port: int = 5000
    drain_seconds: int = 2
    """A web dyno's preStop pause, so routers drop it before it gets SIGTERM."""
    node_lost_after: int = 30
    """Seconds a dyno waits on an unreachable node before Kubernetes moves it."""
    cpu_millis_per_compute: int = 100
    validate_against: str | None = None
    """A Kubernetes version ("1.30"): every manifest written is checked against its schema
    with kubernetes-validate first (tests)."""


@dataclass(frozen=True)
class DynoSpec:
    app: AppRuntime
    process_type: str
    name: str
    """The dyno's name (`web.1`, `run.4821`)."""
    size: str
    command: str
    secret: str
    image: ImageRef
    port: int | None
    one_off: bool = False
    attach: bool = False
    """A `heroku run` session: stdin open, and the command waits for the attach."""
    tty: bool = False
    node_selector: tuple[tuple[str, str], ...] = ()
    """Where the app may run (a region's node label, for instance)."""
    fir_hash: str = ""
    """A Fir image's dynos: Fir names (`web-<fir_hash>-<5>`, the pod's suffix) for formation
    dynos, while `name` stays the Deployment's key (`web.1`)."""

    @property
    def fir_named(self) -> bool:
        """A formation dyno whose name (and $DYNO) comes from its pod."""
        return bool(self.fir_hash) and not self.one_off


def owner_meta(app: AppRuntime, name: str, extra: dict[str, str] | None = None) -> Manifest:
    return {
        "name": name,
        "labels": {**names.app_labels(app.app_id), **(extra or {})},
        "annotations": {
            names.APP_ID: app.app_id,
            names.RELEASE_ID: app.release_id,
            names.RELEASE_VERSION: str(app.release_version),
        },
    }


def config_secret(app: AppRuntime, name: str) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": owner_meta(app, name),
        "type": "Opaque",
        "stringData": dict(app.config),
    }


def _resources(size: str, ds: DynoSettings, ks: KubernetesSettings) -> Manifest:
    quota = math.ceil(ds.quota_mb(size))
    cpu = max(10, get_size(size).compute * ks.cpu_millis_per_compute)
    # The kernel kills at twice the quota: Heroku's R15 point, seen as OOMKilled.
    return {
        "requests": {"memory": f"{quota}Mi", "cpu": f"{cpu}m"},
        "limits": {"memory": f"{2 * quota}Mi"},
    }


def _env(spec: DynoSpec) -> list[Manifest]:
    env: dict[str, str] = dict(spec.image.env)
    if spec.port is not None:
        env["PORT"] = str(spec.port)
    if not spec.fir_named:
        env["DYNO"] = spec.name
        env["PS"] = spec.name
    items: list[Manifest] = [{"name": k, "value": v} for k, v in env.items()]
    if spec.fir_named:  # $DYNO is made from the pod's name when it starts (fir_dyno_env)
        items.append(
            {"name": POD_NAME_ENV, "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
        )
    if "runtime-dyno-metadata" in spec.app.features:
        items += [
            {"name": "HEROKU_APP_ID", "value": spec.app.app_id},
            {"name": "HEROKU_APP_NAME", "value": spec.app.app_name},
            {"name": "HEROKU_RELEASE_VERSION", "value": f"v{spec.app.release_version}"},
            {"name": "HEROKU_DYNO_ID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
        ]
    return items


def _tcp(port: int, ks: KubernetesSettings) -> Manifest:
    probe: Manifest = {"port": port}
    if ks.host_network:
        probe["host"] = "127.0.0.1"  # the kubelet shares the dyno's network namespace
    return probe


POD_NAME_ENV = "SPRUCE_POD_NAME"


def fir_dyno_env(spec: DynoSpec, command: str) -> str:
    """The command with $DYNO (and $PS) set to the dyno's Fir name, as the API shows it:
    the pod's name is known only once the ReplicaSet made it."""
    name = f"{spec.process_type}-{spec.fir_hash}-${{{POD_NAME_ENV}##*-}}"
    return f'DYNO="{name}"; PS="$DYNO"; export DYNO PS; unset {POD_NAME_ENV}; {command}'


def gated(shell: tuple[str, ...], command: str) -> list[str]:
    """An attached one-off's command: it reads one go line from stdin, then runs, so that
    no output is lost before the client is attached."""
    return [*shell, f'read -r _spruce_go; exec {shlex.join(shell)} "$0"', command]


def pod_spec(
    spec: DynoSpec, ds: DynoSettings, ks: KubernetesSettings, restart: str = "Always"
) -> Manifest:
    command = spec.image.command(spec.process_type, spec.command, one_off=spec.one_off)
    if spec.fir_named:
        command = fir_dyno_env(spec, command)
    container: Manifest = {
        "name": CONTAINER,
        "image": spec.image.image,
        "imagePullPolicy": spec.image.pull_policy,
        "command": (
            gated(spec.image.shell, command) if spec.attach else [*spec.image.shell, command]
        ),
        "env": _env(spec),
        "envFrom": [{"secretRef": {"name": spec.secret}}],
        "resources": _resources(spec.size, ds, ks),
        "volumeMounts": [dict(m) for m in spec.image.mounts],
    }
    if spec.image.working_dir:
        container["workingDir"] = spec.image.working_dir
    if spec.attach:
        container.update(stdin=True, stdinOnce=True, tty=spec.tty)
    web = spec.process_type == "web" and not spec.one_off and spec.port is not None
    if web and spec.port is not None:
        boot = ds.boot_timeout or spec.app.boot_timeout
        container["ports"] = [{"name": "web", "containerPort": spec.port, "protocol": "TCP"}]
        if ks.host_network:
            # Declared so that the scheduler never puts two users of a port on one node.
            container["ports"][0]["hostPort"] = spec.port
        # R10: the kubelet gives the dyno boot_timeout seconds to bind $PORT.
        container["startupProbe"] = {
            "tcpSocket": _tcp(spec.port, ks),
            "periodSeconds": 1,
            "timeoutSeconds": 1,
            "failureThreshold": max(1, math.ceil(boot)),
        }
        container["readinessProbe"] = {
            "tcpSocket": _tcp(spec.port, ks),
            "periodSeconds": 2,
            "timeoutSeconds": 1,
            "failureThreshold": 2,
        }
        if ks.drain_seconds > 0:
            sleep = f"sleep {ks.drain_seconds}"
            container["lifecycle"] = {"preStop": {"exec": {"command": [*spec.image.shell, sleep]}}}
    pod: Manifest = {
        "containers": [container],
        "restartPolicy": restart,
        # R12: SIGTERM, then SIGKILL after the grace time (30 s on Heroku).
        "terminationGracePeriodSeconds": max(1, math.ceil(ds.stop_grace)),
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "volumes": [dict(v) for v in spec.image.volumes],
        "tolerations": [
            {
                "key": key,
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": ks.node_lost_after,
            }
            for key in ("node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready")
        ],
    }
    if spec.image.pull_secrets:
        pod["imagePullSecrets"] = [{"name": n} for n in spec.image.pull_secrets]
    if ks.host_network:
        pod["hostNetwork"] = True
        pod["dnsPolicy"] = "Default"
    if spec.node_selector:
        pod["nodeSelector"] = dict(spec.node_selector)
    if not spec.one_off:
        # Spread an app's dynos of one type over the nodes.
        pod["affinity"] = {
            "podAntiAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "weight": 100,
                        "podAffinityTerm": {
                            "topologyKey": "kubernetes.io/hostname",
                            "labelSelector": {
                                "matchLabels": {
                                    **names.app_labels(spec.app.app_id),
                                    names.PROCESS_TYPE: names.label_value(spec.process_type),
                                }
                            },
                        },
                    }
                ]
            }
        }
    return pod


def _pod_labels(spec: DynoSpec) -> dict[str, str]:
    labels = {
        names.PROCESS_TYPE: names.label_value(spec.process_type),
        names.DYNO: names.dyno_label(spec.name),
    }
    if spec.one_off:
        labels[names.ONE_OFF] = "true"
    if spec.attach:
        labels[names.ATTACHED] = "true"
    return labels


def _pod_annotations(spec: DynoSpec) -> dict[str, str]:
    out = {
        names.APP_ID: spec.app.app_id,
        names.RELEASE_ID: spec.app.release_id,
        names.RELEASE_VERSION: str(spec.app.release_version),
        names.SIZE: get_size(spec.size).name,
        names.COMMAND: spec.command,
        names.CONFIG_SECRET: spec.secret,
    }
    if spec.port is not None:
        out[names.PORT] = str(spec.port)
    if spec.fir_hash:
        out[names.FIR_HASH] = spec.fir_hash
    return out


def deployment(
    spec: DynoSpec,
    ds: DynoSettings,
    ks: KubernetesSettings,
    replicas: int = 1,
    restarted_at: str = "",
) -> Manifest:
    """The Deployment of one formation dyno; its spec-hash annotation says whether a later
    converge must roll it out (the port and restart stamp are left out of the hash)."""
    labels = {**names.app_labels(spec.app.app_id), **_pod_labels(spec)}
    preboot = "preboot" in spec.app.features and spec.process_type == "web"
    strategy: Manifest = (
        {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
        if preboot
        else {"type": "Recreate"}
    )
    annotations = _pod_annotations(spec)
    if restarted_at:
        annotations[names.RESTARTED_AT] = restarted_at
    name = names.object_name(spec.app.app_name, spec.process_type, spec.name.split(".")[1])
    manifest: Manifest = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": owner_meta(spec.app, name, _pod_labels(spec)),
        "spec": {
            "replicas": replicas,
            "revisionHistoryLimit": 2,
            "selector": {"matchLabels": labels},
            "strategy": strategy,
            "template": {
                "metadata": {"labels": labels, "annotations": annotations},
                "spec": pod_spec(spec, ds, ks),
            },
        },
    }
    manifest["metadata"]["annotations"][names.SPEC_HASH] = spec_hash(manifest)
    return manifest


def restarted(dep: Manifest, port: int | None, stamp: str) -> Manifest:
    """The Deployment as written, rolled out again (a restart), web dynos on a new port."""
    body: Manifest = json.loads(json.dumps(dep))
    body.pop("status", None)
    for key in ("resourceVersion", "managedFields", "generation", "creationTimestamp", "uid"):
        body["metadata"].pop(key, None)
    template = body["spec"]["template"]
    template["metadata"].setdefault("annotations", {})[names.RESTARTED_AT] = stamp
    if port is not None:
        template["metadata"]["annotations"][names.PORT] = str(port)
        for c in template["spec"]["containers"]:
            for e in c.get("env") or []:
                if e["name"] == "PORT":
                    e["value"] = str(port)
            for p in c.get("ports") or []:
                p["containerPort"] = port
                if "hostPort" in p:
                    p["hostPort"] = port
            for probe in ("startupProbe", "readinessProbe"):
                if probe in c:
                    c[probe]["tcpSocket"]["port"] = port
    return body


def spec_hash(manifest: Manifest) -> str:
    """A digest of a Deployment's template without what changes on every rollout."""
    template = json.loads(json.dumps(manifest["spec"]["template"]))
    template["metadata"]["annotations"].pop(names.PORT, None)
    template["metadata"]["annotations"].pop(names.RESTARTED_AT, None)
    for c in template["spec"]["containers"]:
        c["env"] = [e for e in c["env"] if e["name"] != "PORT"]
        for key in ("ports", "startupProbe", "readinessProbe"):
            c.pop(key, None)
    body = json.dumps([template, manifest["spec"]["strategy"]], sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()[:16]


def one_off_pod(spec: DynoSpec, ds: DynoSettings, ks: KubernetesSettings) -> Manifest:
    labels = {**names.app_labels(spec.app.app_id), **_pod_labels(spec)}
    suffix = spec.name[len(spec.process_type) + 1 :]  # run.4821 or Fir's run-<hash>-<5>
    meta = owner_meta(spec.app, names.object_name(spec.app.app_name, spec.process_type, suffix))
    meta["labels"] = labels
    meta["annotations"] = _pod_annotations(spec)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": pod_spec(spec, ds, ks, "Never"),
    }


def release_job(spec: DynoSpec, ds: DynoSettings, ks: KubernetesSettings) -> Manifest:
    """The release phase: a Job that runs once (no retry, as on Heroku)."""
    pod = one_off_pod(spec, ds, ks)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {**pod["metadata"], "annotations": dict(pod["metadata"]["annotations"])},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {
                    "labels": pod["metadata"]["labels"],
                    "annotations": pod["metadata"]["annotations"],
                },
                "spec": pod["spec"],
            },
        },
    }


# -- reading back what was written -------------------------------------------------------
def hash_of(dep: Manifest) -> str:
    return str((dep["metadata"].get("annotations") or {}).get(names.SPEC_HASH, ""))


def port_of(dep: Manifest) -> int | None:
    ann = dep["spec"]["template"]["metadata"].get("annotations") or {}
    return int(ann[names.PORT]) if ann.get(names.PORT) else None


def secret_of(dep: Manifest) -> str:
    """The config Secret a Deployment's dynos read."""
    for c in dep["spec"]["template"]["spec"]["containers"]:
        for src in c.get("envFrom") or []:
            return str(src.get("secretRef", {}).get("name", ""))
    return ""


def secret_data(secret: Manifest) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}


def validate(manifest: Manifest, version: str) -> None:
    """Check a manifest against Kubernetes `version`'s schema (kubernetes-validate)."""
    import kubernetes_validate  # type: ignore[import-not-found,unused-ignore]

    kubernetes_validate.validate(json.loads(json.dumps(manifest)), version, strict=True)
