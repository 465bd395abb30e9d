"""The whole platform with `spruce up --dyno-backend kubernetes` on the test cluster.

A Fir app pushed with git (CNB build into the platform's registry) runs as pods that pull
its image from that registry over TLS from the internal CA; its release phase runs as a Job;
it serves through the router, scales, runs `spruce run` and Heroku's `heroku run` with output
and exit status, lists Fir pod-style names in `heroku ps`, streams
logs, and a restarted platform adopts its pods instead of restarting them. One platform for
the tier (conftest's `kubed`), one app here: the kube tier must stay within the suite's
budget.
"""

from __future__ import annotations

import re
import secrets
import time
from pathlib import Path

import pytest
from compat.compat_support import HerokuCLI, install_heroku_cli
from e2e.e2e_support import Deployer
from support import wait_for

from spruce.dynos.model import FIR_DYNO_NAME_RE

from .kubed import NEEDS, Kubed, up

pytestmark = [pytest.mark.slow, NEEDS]


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
    assert container["command"][-1].endswith("; exec /cnb/process/web")
    # Fir's pod-style name: the pod's own suffix, as the local backend names Fir dynos.
    (first,) = [d["name"] for d in api.get(f"/apps/{name}/dynos").json() if d["type"] == "web"]
    assert FIR_DYNO_NAME_RE.match(first) and first.startswith("web-"), first
    assert first.endswith("-" + pod["metadata"]["name"].rsplit("-", 1)[1]), (first, pod)

    # Scale: two web dynos, two pods, both ready behind the router.
    r = api.patch(f"/apps/{name}/formation", json={"updates": [{"type": "web", "quantity": 2}]})
    assert r.status_code == 200, r.text
    t0 = time.monotonic()
    dynos = wait_for(lambda: up(p, name, 2), 120, what="two web dynos up")
    print(f"scale 1 -> 2 web dynos up: {time.monotonic() - t0:.1f} s")
    names = sorted(d["name"] for d in dynos)
    (second,) = set(names) - {first}
    assert first in names and second.rsplit("-", 1)[0] == first.rsplit("-", 1)[0], names
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
    assert re.search(r"hi-run-[0-9a-z]{10}-[0-9a-z]{5} from /workspace", res.stdout), res.stdout
    print(f"spruce run (pod created, attached, exited): {time.monotonic() - t0:.1f} s")

    # Heroku's own CLI: `heroku ps` lists the pods' Fir names, `heroku run` (which prepends
    # `launcher` on Fir) gives the pod's output and exit status.
    heroku = HerokuCLI(p, install_heroku_cli(), tmp_path / "heroku-home")
    ps = heroku("ps", "-a", name).stdout
    assert all(f"{n}: up" in ps for n in names), ps
    res = heroku("run", "-a", name, "--", "echo at-$(pwd)-$DYNO; exit 4", check=False)
    assert re.search(r"at-/workspace-run-[0-9a-z]{10}-[0-9a-z]{5}", res.stdout), res.stdout
    assert res.returncode == 4, res.stdout + res.stderr

    # Logs: the router's and the dynos' lines, with Heroku's sources.
    def logged() -> list[str] | None:
        lines = deploy.logs(name, lines=500)
        app_lines = [ln for ln in lines if " app[web-" in ln and '"GET / HTTP/1.1" 200' in ln]
        heroku_lines = [
            ln for ln in lines if f"heroku[{second}]: State changed from starting to up" in ln
        ]
        return lines if app_lines and heroku_lines else None

    wait_for(logged, 60, what=f"app[web-...] request lines and heroku[{second}] state lines")

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
    assert sorted(d["name"] for d in dynos) == names  # the same pods, the same names
    # ...and the adopted app is driven as before: a scale-down reaches the cluster.
    api = p.client()
    api.patch(f"/apps/{name}/formation", json={"updates": [{"type": "web", "quantity": 1}]})
    wait_for(lambda: up(p, name, 1), 60, what="back to one web dyno")
    wait_for(lambda: len(kubed.pods(app_id)) == 1, 60, what="one pod left")
