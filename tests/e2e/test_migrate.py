"""`spruce apps:migrate`: a pushed Cedar app moves to a Fir space with its config, add-on,
features and domain, while a client keeps requesting the domain: no request fails, the
answers switch from the Cedar app to the Fir app, and the Cedar app keeps running."""

from __future__ import annotations

import shutil
import threading
import time
import uuid

import httpx
import pytest
from e2e_support import Deployer
from support import RunningPlatform, wait_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("docker-registry") is None or shutil.which("bwrap") is None,
        reason="Fir needs docker-registry and bubblewrap (Debian packages)",
    ),
]

WHO = """import http.server, os

class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = (os.environ.get("HEROKU_APP_NAME", "?") + ":" + os.environ["GREETING"]).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass

http.server.ThreadingHTTPServer(("", int(os.environ["PORT"])), H).serve_forever()
"""


def test_a_cedar_app_moves_to_fir_without_a_failed_request(
    platform: RunningPlatform, deploy: Deployer
) -> None:
    api = platform.client()
    tag = uuid.uuid4().hex[:6]
    team, space, app = f"mig-{tag}", f"mig-{tag}", f"mig-{tag}"
    domain = f"shop-{tag}.example.test"
    assert api.post("/teams", json={"name": team}).status_code == 201
    r = api.post("/spaces", json={"name": space, "team": team, "generation": "fir"})
    assert r.status_code == 201, r.text
    wait_for(lambda: api.get(f"/spaces/{space}").json()["state"] == "allocated", 20)
    assert api.post("/apps", json={"name": app}).status_code == 201
    assert api.patch(f"/apps/{app}/config-vars", json={"GREETING": "hi"}).status_code == 200
    r = api.patch(f"/apps/{app}/features/runtime-dyno-metadata", json={"enabled": True})
    assert r.status_code == 200, r.text
    r = api.post(f"/apps/{app}/addons", json={"plan": "heroku-redis:mini"})
    assert r.status_code in (200, 201), r.text
    assert api.post(f"/apps/{app}/domains", json={"hostname": domain}).status_code == 201
    files = {"Procfile": "web: python3 web.py\n", "web.py": WHO, "requirements.txt": ""}
    res = deploy.push(deploy.repo(app, files=files), app)
    assert res.returncode == 0, res.stderr
    deploy.wait_serving(app, f"{app}:hi")

    url = platform.endpoints["router_http_url"] + "/"
    seen: list[tuple[int, str]] = []
    stop = threading.Event()

    def hammer() -> None:
        with httpx.Client(timeout=30) as c:
            while not stop.is_set():
                try:
                    resp = c.get(url, headers={"Host": domain})
                    seen.append((resp.status_code, resp.text))
                except httpx.HTTPError as e:
                    seen.append((0, repr(e)))
                time.sleep(0.02)

    client = threading.Thread(target=hammer, daemon=True)
    client.start()
    try:
        res = platform.cli("apps:migrate", app, "--space", space)
        assert res.returncode == 0, res.stderr
        fir = f"{app}-fir"
        wait_for(lambda: seen and seen[-1][1] == f"{fir}:hi", 20, what="the Fir app answering")
        time.sleep(0.5)
    finally:
        stop.set()
        client.join(10)
    out = res.stdout
    assert f"=== ⬢ {fir} (Fir, from ⬢ {app})" in out and domain in out, out
    failed = [s for s in seen if s[0] != 200]
    assert not failed, failed[:5]
    bodies = [b for _, b in seen]
    assert bodies[0] == f"{app}:hi" and bodies[-1] == f"{fir}:hi"
    switched = bodies.index(f"{fir}:hi")
    assert set(bodies[switched:]) == {f"{fir}:hi"}  # once switched, only the Fir app

    info = api.get(f"/apps/{fir}").json()
    assert info["generation"]["name"] == "fir" and info["space"]["name"] == space
    config = api.get(f"/apps/{fir}/config-vars").json()
    cedar_config = api.get(f"/apps/{app}/config-vars").json()
    assert config["GREETING"] == "hi" and config["REDIS_URL"] == cedar_config["REDIS_URL"]
    assert api.get(f"/apps/{fir}/features/runtime-dyno-metadata").json()["enabled"]
    assert domain in [d["hostname"] for d in api.get(f"/apps/{fir}/domains").json()]
    assert domain not in [d["hostname"] for d in api.get(f"/apps/{app}/domains").json()]
    # The Cedar app stays, serving at its own hostname.
    assert deploy.get(app).text == f"{app}:hi"
    # A Fir app cannot be migrated again; the refusal is a sentence.
    again = platform.cli("apps:migrate", fir, "--space", space)
    assert again.returncode == 1 and "already a Fir app" in again.stderr
    cedar_space = f"ced-{tag}"
    assert api.post("/spaces", json={"name": cedar_space, "team": team}).status_code == 201
    wait_for(lambda: api.get(f"/spaces/{cedar_space}").json()["state"] == "allocated", 20)
    refused = platform.cli("apps:migrate", app, "--space", cedar_space, "--name", f"x-{tag}")
    assert refused.returncode == 1 and "is not a Fir space" in refused.stderr
    assert api.get(f"/apps/x-{tag}").status_code == 404  # nothing made before the refusal
