"""One whole platform (`spruce up --dyno-backend kubernetes`) on the session's cluster, shared
by the platform-level tests (conftest's `kubed` fixture): starting it and building Fir
images is the expensive part, so the tier starts it once.

Its regions: the Common Runtime's `us` and `eu` pin apps to the nodes labelled so
(--kube-region-label); the operator region `fir-local` is a cluster of its own
(--kube-region fir-local=kubeconfig:...), here the same cluster through a second kubeconfig
whose context names another namespace, with no node label: a space there spreads its dynos
over both nodes.
"""

from __future__ import annotations

import json
import secrets
import shutil
from pathlib import Path
from typing import Any

import pytest
from e2e.e2e_support import TUNING
from support import RunningPlatform, start_platform

from spruce.dynos.backends.kubernetes.api import Kube
from spruce.kube import Cluster

REGION = "topology.kubernetes.io/region"
SPACE_REGION = "fir-local"
NEEDS = pytest.mark.skipif(
    shutil.which("docker-registry") is None or shutil.which("bwrap") is None,
    reason="Fir builds need docker-registry and bubblewrap (Debian packages)",
)


def region_kubeconfig(cluster: Cluster, path: Path, namespace: str) -> Path:
    """The cluster's kubeconfig with a current context that names `namespace`."""
    config = json.loads(cluster.kubeconfig.read_text())
    for ctx in config["contexts"]:
        if ctx["name"] == config["current-context"]:
            ctx["context"]["namespace"] = namespace
    path.write_text(json.dumps(config, indent=2))
    path.chmod(0o600)
    return path


class Kubed:
    """The platform, its namespaces on the cluster, and what the cluster says of its pods."""

    def __init__(self, cluster: Cluster, home: Path) -> None:
        self.cluster = cluster
        self.home = home
        self.namespace = "spruce-" + secrets.token_hex(3)
        self.space_namespace = self.namespace + "-fl"
        space_cluster = region_kubeconfig(
            cluster, home.parent / "fir-local.kubeconfig", self.space_namespace
        )
        self.args = [
            "--dyno-backend", "kubernetes", "--kubeconfig", str(cluster.kubeconfig),
            "--namespace", self.namespace,
            # The nodes are this host; the dynos listen on every address of it.
            "--kube-endpoint-host", "127.0.0.1",
            # The test cluster's nodes are labelled eu and us (conftest): regions map to them.
            "--kube-region-label", REGION,
            "--region", SPACE_REGION,
            "--kube-region", f"{SPACE_REGION}=kubeconfig:{space_cluster}",
        ]  # fmt: skip
        tuning = {**TUNING, "kubernetes": {"node_lost_after": 5}}
        self.env = {"SPRUCE_TUNING": json.dumps(tuning)}
        self.kube = {
            ns: Kube(cluster.kubeconfig, ns) for ns in (self.namespace, self.space_namespace)
        }
        self.p = self.start()

    def start(self) -> RunningPlatform:
        p = start_platform(self.home, extra_env=self.env, extra_args=self.args, timeout=120)
        # The nodes' containerd pulls release images from the platform's own registry, and
        # a space's app's from its region's (same CA, a port of its own).
        for where in (self.home, self.home / "regions" / SPACE_REGION):
            port = (where / "registry" / "port").read_text().strip()
            self.cluster.trust_registry(f"127.0.0.1:{port}", self.home / "ca" / "ca.pem")
        return p

    def restart(self) -> RunningPlatform:
        self.p.stop()
        self.p = self.start()
        return self.p

    def pods(self, app_id: str, namespace: str | None = None) -> list[dict[str, Any]]:
        """The app's pods in one namespace (both when None)."""
        out = []
        for ns, kube in self.kube.items():
            if namespace not in (None, ns):
                continue
            items = kube.list("Pod", "app.kubernetes.io/managed-by=spruce")["items"]
            out += [
                p for p in items if p["metadata"]["annotations"].get("spruce.dev/app-id") == app_id
            ]
        return out

    def all_pods(self) -> list[dict[str, Any]]:
        return [p for kube in self.kube.values() for p in kube.list("Pod", "")["items"]]

    def close(self) -> None:
        for kube in self.kube.values():
            kube.close()


def up(p: RunningPlatform, app: str, web: int) -> list[dict[str, Any]] | None:
    """The app's dynos once exactly `web` web dynos are up and there is nothing else."""
    dynos = p.client().get(f"/apps/{app}/dynos").json()
    webs = [d for d in dynos if d["type"] == "web" and d["state"] == "up"]
    return dynos if len(webs) == web and len(dynos) == web else None
