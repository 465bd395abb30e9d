"""The whole platform with `spruce up --dyno-backend kubernetes` on the test cluster.

A Fir app pushed with git (CNB build into the platform's registry) runs as pods that pull
its image from that registry over TLS from the internal CA; its release phase runs as a Job;
it serves through the router, scales, runs `spruce run` with output and exit status, streams
logs, and a restarted platform adopts its pods instead of restarting them. One platform for
the module, one app: the kube tier must stay within the suite's budget.
"""

from __future__ import annotations

import json
import secrets
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e.e2e_support import TUNING, Deployer
from support import RunningPlatform, start_platform, wait_for

from spruce.dynos.backends.kubernetes.api import Kube
from spruce.kube import Cluster

from .conftest import REGION

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("docker-registry") is None or shutil.which("bwrap") is None,
        reason="Fir builds need docker-registry and bubblewrap (Debian packages)",
    ),
]


class Kubed:
    """The platform, its namespace on the cluster, and what the cluster says of its pods."""

    def __init__(self, cluster: Cluster, home: Path) -> None:
        self.cluster = cluster
        self.home = home
        self.namespace = "spruce-" + secrets.token_hex(3)
        self.args = [
            "--dyno-backend", "kubernetes", "--kubeconfig", str(cluster.kubeconfig),
            "--namespace", self.namespace,
            # The nodes are this host; the dynos listen on every address of it.
            "--kube-endpoint-host", "127.0.0.1",
            # The test cluster's nodes are labelled eu and us (conftest): regions map to them.
            "--kube-region-label", REGION,
        ]  # fmt: skip
        self.env = {"SPRUCE_TUNING": json.dumps(TUNING)}
        self.kube = Kube(cluster.kubeconfig, self.namespace)
        self.p = self.start()

    def start(self) -> RunningPlatform:
        p = start_platform(self.home, extra_env=self.env, extra_args=self.args, timeout=120)
        # The nodes' containerd pulls release images from the platform's own registry.
        port = (self.home / "registry" / "port").read_text().strip()
        self.cluster.trust_registry(f"127.0.0.1:{port}", self.home / "ca" / "ca.pem")
        return p

    def restart(self) -> RunningPlatform:
        self.p.stop()
        self.p = self.start()
        return self.p

    def pods(self, app_id: str) -> list[dict[str, Any]]:
        items = self.kube.list("Pod", "app.kubernetes.io/managed-by=spruce")["items"]
        return [p for p in items if p["metadata"]["annotations"].get("spruce.dev/app-id") == app_id]


@pytest.fixture(scope="module")
def kubed(kube_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kubed]:
    k = Kubed(kube_cluster, tmp_path_factory.mktemp("kube-platform"))
    yield k
    for app in k.p.client().get("/apps").json():
        k.p.client().delete(f"/apps/{app['id']}")  # its Deployments, pods and Secrets go
    k.p.stop()
    wait_for(lambda: not k.kube.list("Pod", "")["items"], 60, what="the pods gone")
    k.kube.close()


def up(p: RunningPlatform, app: str, web: int) -> list[dict[str, Any]] | None:
    dynos = p.client().get(f"/apps/{app}/dynos").json()
    webs = [d for d in dynos if d["type"] == "web" and d["state"] == "up"]
    return dynos if len(webs) == web and len(dynos) == web else None


def test_a_fir_app_on_kubernetes_end_to_end(kubed: Kubed, tmp_path: Path) -> None:
    p = kubed.p
    api = p.client()
    name = "kfir-" + secrets.token_hex(3)
    r = api.post("/apps", json={"name": name, "generation": "fir"})
    assert r.status_code == 201, r.text
    app_id = r.json()["id"]
    assert r.json()["region"]["name"] == "us"
    deploy = Deployer(p, tmp_path)

    # git push: a CNB build into the registry; the release phase runs as a Job on the cluster.
    t0 = time.monotonic()
    res = deploy.push(deploy.repo(name, example="release-phase"), name)
    assert res.returncode == 0, res.stderr[-4000:] + p.log()[-4000:]
    assert "release phase: preparing version 1" in res.stderr, res.stderr[-3000:]
    assert "Release command succeeded." in res.stderr
    deploy.wait_serving(name, "release-phase app version 1", timeout=180)
    print(f"\npush to serving through the router: {time.monotonic() - t0:.1f} s")

    # The dyno is a pod pulled from the platform's registry by digest.
    (pod,) = [x for x in kubed.pods(app_id) if x["status"].get("phase") == "Running"]
    release = api.get(f"/apps/{name}/releases").json()[-1]
    image = api.get(f"/apps/{name}/oci-images/{release['oci_image']['id']}").json()[0]
    (container,) = pod["spec"]["containers"]
    assert container["image"] == f"{image['image_repo']}@{image['digest']}"
    assert pod["spec"]["imagePullSecrets"] == [{"name": "spruce-registry"}]
    assert container["command"][-1] == "exec /cnb/process/web"

    # Scale: two web dynos, two pods, both ready behind the router.
    r = api.patch(f"/apps/{name}/formation", json={"updates": [{"type": "web", "quantity": 2}]})
    assert r.status_code == 200, r.text
    t0 = time.monotonic()
    dynos = wait_for(lambda: up(p, name, 2), 120, what="two web dynos up")
    print(f"scale 1 -> 2 web dynos up: {time.monotonic() - t0:.1f} s")
    assert sorted(d["name"] for d in dynos) == ["web.1", "web.2"]
    us = {kubed.cluster.nodes[1].name}  # labelled us in conftest
    assert {
        x["spec"].get("nodeName")
        for x in kubed.pods(app_id)
        if not x["metadata"].get("deletionTimestamp")
    } == us
    for _ in range(10):
        assert deploy.get(name).text == "release-phase app version 1\n"

    # `spruce run`: a one-off pod attached through the rendezvous, output and exit status.
    t0 = time.monotonic()
    res = p.cli("run", "-a", name, "--no-tty", "--", "echo hi-$DYNO from $(pwd); exit 3")
    assert res.returncode == 3, res.stdout + res.stderr
    assert "hi-run." in res.stdout and " from /workspace" in res.stdout, res.stdout
    print(f"spruce run (pod created, attached, exited): {time.monotonic() - t0:.1f} s")

    # Logs: the router's and the dynos' lines, with Heroku's sources.
    def logged() -> list[str] | None:
        lines = deploy.logs(name, lines=500)
        app_lines = [ln for ln in lines if " app[web." in ln and '"GET / HTTP/1.1" 200' in ln]
        heroku_lines = [
            ln for ln in lines if "heroku[web.2]: State changed from starting to up" in ln
        ]
        return lines if app_lines and heroku_lines else None

    wait_for(logged, 60, what="app[web.N] request lines and heroku[web.2] state lines")

    # A platform restart adopts the running pods: same pods, no container restarted.
    before = {x["metadata"]["uid"]: x for x in kubed.pods(app_id)}
    t0 = time.monotonic()
    p = kubed.restart()
    deploy.p = p
    deploy.wait_serving(name, "release-phase app version 1", timeout=60)
    print(f"platform restart to serving again: {time.monotonic() - t0:.1f} s")
    dynos = wait_for(lambda: up(p, name, 2), 60, what="both web dynos up after the restart")
    after = {x["metadata"]["uid"]: x for x in kubed.pods(app_id)}
    assert set(after) == set(before), "the restarted platform replaced pods"
    for pod in after.values():
        (status,) = pod["status"]["containerStatuses"]
        assert status["restartCount"] == 0 and status["state"].get("running"), status
    assert sorted(d["name"] for d in dynos) == ["web.1", "web.2"]
    # ...and the adopted app is driven as before: a scale-down reaches the cluster.
    api = p.client()
    api.patch(f"/apps/{name}/formation", json={"updates": [{"type": "web", "quantity": 1}]})
    wait_for(lambda: up(p, name, 1), 60, what="back to one web dyno")
    wait_for(lambda: len(kubed.pods(app_id)) == 1, 60, what="one pod left")
