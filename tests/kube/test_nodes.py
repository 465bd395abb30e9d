"""Faults and rollouts of the whole platform under request load through its router: a Fir
app in a space whose region is a cluster of its own (--kube-region ...=kubeconfig:...)
spreads its two web dynos over both nodes; a preboot release, a lost node (its kubelet and
containers killed, as when the machine dies) and a dyno restart each fail no request.

The figures (printed, and written to docs/scale.md) come from here: the lost node's dyno
leaves the routing table when the node controller marks its pod not ready (after the node
grace, 16 s on the test cluster), leaves the API when it evicts the pod (the toleration,
node_lost_after, is 5 s here), and its replacement serves from the other node seconds later.
Meanwhile the router's retries (a refused dyno is quarantined, the request goes to another)
keep every request served.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e.e2e_support import Deployer
from support import wait_for

from spruce.dynos.model import FIR_DYNO_NAME_RE

from .kubed import NEEDS, SPACE_REGION, Kubed, up

pytestmark = [pytest.mark.slow, NEEDS]

WEB_PY = """import http.server, os

class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"{os.environ['GREETING']} from {os.environ['DYNO']}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass

http.server.ThreadingHTTPServer(("", int(os.environ["PORT"])), H).serve_forever()
"""
# What the test may take (seen on the test cluster: not ready after about 20 s, evicted after
# about 35 s, serving again from the other node about 2 s later).
OUT_OF_TABLE_WITHIN = 40.0
RESCHEDULED_WITHIN = 60.0


class Load(threading.Thread):
    """Requests through the router, one after another, as a client sees them."""

    def __init__(self, url: str, host: str) -> None:
        super().__init__(daemon=True)
        self.url, self.host = url, host
        self.stopping = threading.Event()
        self.seen: list[tuple[float, int, str]] = []
        self.failed: list[str] = []

    def run(self) -> None:
        with httpx.Client(timeout=30, headers={"Host": self.host}) as client:
            while not self.stopping.is_set():
                try:
                    r = client.get(self.url)
                    self.seen.append((time.monotonic(), r.status_code, r.text))
                    if r.status_code != 200:
                        self.failed.append(f"{r.status_code} {r.text[:200]}")
                except httpx.HTTPError as e:
                    self.failed.append(repr(e))
                time.sleep(0.02)

    def since(self, t: float) -> list[str]:
        return [text for (at, code, text) in self.seen if at >= t and code == 200]

    def stop(self) -> None:
        self.stopping.set()
        self.join(40)


def why(deploy: Deployer, app: str, load: Load) -> str:
    """The failures and the router's lines with an H code, for the assertion message."""
    lines = [ln for ln in deploy.logs(app, lines=1500) if " code=H" in ln]
    return "\n".join([*load.failed[:3], *lines[-10:]])


def ready(kubed: Kubed, app_id: str, pod_name: str) -> bool:
    for x in kubed.pods(app_id):
        if x["metadata"]["name"] == pod_name:
            conditions = x["status"].get("conditions") or []
            return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
    return False


def names_up(kubed: Kubed, app: str) -> set[str]:
    return {
        d["name"] for d in kubed.p.client().get(f"/apps/{app}/dynos").json() if d["state"] == "up"
    }


def live_pods(kubed: Kubed, app_id: str) -> list[dict[str, Any]]:
    return [x for x in kubed.pods(app_id) if not x["metadata"].get("deletionTimestamp")]


def test_a_space_survives_preboot_a_node_loss_and_restarts_under_load(
    kubed: Kubed, tmp_path: Path
) -> None:
    p, api = kubed.p, kubed.p.client()
    tag = secrets.token_hex(3)
    team, space, name = f"kt-{tag}", f"ks-{tag}", f"kn-{tag}"
    assert api.post("/teams", json={"name": team}).status_code == 201
    r = api.post(
        "/spaces",
        json={"name": space, "team": team, "region": SPACE_REGION, "generation": "fir"},
    )
    assert r.status_code == 201, r.text
    wait_for(lambda: api.get(f"/spaces/{space}").json()["state"] == "allocated", 30)
    r = api.post("/teams/apps", json={"name": name, "space": space})
    assert r.status_code == 201, r.text
    app_id = r.json()["id"]
    assert r.json()["region"]["name"] == SPACE_REGION
    assert api.patch(f"/apps/{name}/config-vars", json={"GREETING": "v1"}).status_code == 200
    r = api.patch(f"/apps/{name}/features/preboot", json={"enabled": True})
    assert r.status_code == 200, r.text
    deploy = Deployer(p, tmp_path)
    res = deploy.push(
        deploy.repo(name, {"Procfile": "web: python3 web.py\n", "web.py": WEB_PY}), name
    )
    assert res.returncode == 0, res.stderr[-4000:] + p.log()[-4000:]
    r = api.patch(f"/apps/{name}/formation", json={"updates": [{"type": "web", "quantity": 2}]})
    assert r.status_code == 200, r.text
    wait_for(lambda: up(p, name, 2), 120, what="two web dynos up")

    # The space's region is its own cluster: its pods are in that cluster's namespace only,
    # one on each node (no node label in that region; anti-affinity spreads them).
    assert kubed.pods(app_id, kubed.namespace) == []
    pods = live_pods(kubed, app_id)
    assert {x["metadata"]["namespace"] for x in pods} == {kubed.space_namespace}
    assert len({x["spec"]["nodeName"] for x in pods}) == 2, [x["spec"]["nodeName"] for x in pods]
    dynos = names_up(kubed, name)
    assert all(FIR_DYNO_NAME_RE.match(n) for n in dynos), dynos

    load = Load(p.endpoints["router_http_url"] + "/", f"{name}.localhost")
    load.start()
    try:
        wait_for(lambda: len(load.seen) > 20, 30, what="traffic")
        # $DYNO is the name the API shows.
        assert {t.split(" from ")[1] for t in load.since(0)} <= dynos

        # A node's machine dies under load.
        pods = live_pods(kubed, app_id)
        node_of = {x["metadata"]["name"]: x["spec"]["nodeName"] for x in pods}
        lost_node = sorted(node_of.values())[0]
        lost = [i for i, n in enumerate(kubed.cluster.nodes) if n.name == lost_node][0]
        (lost_dyno,) = [n for n in dynos if any(n.endswith(pod[-6:]) for pod, node in node_of.items()
                                                if node == lost_node)]  # fmt: skip
        (lost_pod,) = [pod for pod, node in node_of.items() if node == lost_node]
        t0 = time.monotonic()
        kubed.cluster.stop_node(lost)
        try:
            # Not ready (the node controller's mark): the backend drops it from the routing
            # table. Then evicted: it leaves the API, and its Deployment makes a new pod.
            wait_for(lambda: not ready(kubed, app_id, lost_pod), 90, 0.25,
                     what="the lost node's pod not ready")  # fmt: skip
            unready_after = time.monotonic() - t0
            wait_for(lambda: lost_dyno not in names_up(kubed, name), 90, 0.25,
                     what="the lost node's dyno out of the API")  # fmt: skip
            out_after = time.monotonic() - t0
            wait_for(lambda: up(p, name, 2), 90, 0.25, what="two web dynos up again")
            back_after = time.monotonic() - t0
            served_during = len(load.since(t0))
            nodes_now = {x["spec"]["nodeName"] for x in live_pods(kubed, app_id)}
            assert nodes_now == {n.name for n in kubed.cluster.nodes} - {lost_node}, nodes_now
        finally:
            kubed.cluster.start_node(lost)
            # The evicted pod stays Terminating: the v1.20 kubelet, back, does not finish a
            # pod whose containers went with the machine. Deleted for good, as an operator
            # does after a node loss (`kubectl delete pod --force --grace-period=0`).
            for x in kubed.pods(app_id):
                if x["metadata"].get("deletionTimestamp") and x["spec"]["nodeName"] == lost_node:
                    kubed.kube[x["metadata"]["namespace"]].delete("Pod", x["metadata"]["name"], 0)
        assert load.failed == [], why(deploy, name, load)

        # Preboot: a new release (a config var) surges new pods before the old ones go.
        dynos = names_up(kubed, name)
        t0 = time.monotonic()
        assert api.patch(f"/apps/{name}/config-vars", json={"GREETING": "v2"}).status_code == 200
        wait_for(lambda: (up(p, name, 2) and names_up(kubed, name).isdisjoint(dynos)), 120,
                 what="the new release's dynos up")  # fmt: skip
        wait_for(lambda: len(live_pods(kubed, app_id)) == 2, 60, what="the old pods gone")
        wait_for(lambda: load.since(time.monotonic() - 1) and all(
            t.startswith("v2 ") for t in load.since(time.monotonic() - 1)), 30)  # fmt: skip
        preboot = time.monotonic() - t0
        assert load.failed == [], why(deploy, name, load)

        # A restart of one dyno by its Fir name: a new pod, so a new name, no failed request.
        dynos = names_up(kubed, name)
        victim = sorted(dynos)[0]
        t0 = time.monotonic()
        r = api.delete(f"/apps/{name}/dynos/{victim}")
        assert r.status_code < 300, r.text
        wait_for(lambda: up(p, name, 2) and victim not in names_up(kubed, name), 90,
                 what="the restarted dyno back under a new name")  # fmt: skip
        restart = time.monotonic() - t0
    finally:
        load.stop()
    print(
        f"\nunder load through the router ({len(load.seen)} requests, "
        f"{dict(Counter(code for _, code, _ in load.seen))}): preboot release {preboot:.1f} s; "
        f"node loss: not ready (out of the routing table) in {unready_after:.1f} s, evicted "
        f"(out of the API) in {out_after:.1f} s, rescheduled and serving from the other node "
        f"in {back_after:.1f} s ({served_during} requests served meanwhile); "
        f"dyno restart {restart:.1f} s; {len(load.failed)} failed"
    )
    assert load.failed == [], why(deploy, name, load)
    assert unready_after < OUT_OF_TABLE_WITHIN and back_after < RESCHEDULED_WITHIN
    assert served_during > 50
