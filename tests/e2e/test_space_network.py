"""A space's network policies with real connections: trusted IP ranges enforced by the router
(from two source addresses, 127.0.0.1 and 127.0.0.2, both this machine's), outbound rules
enforced in each dyno's network namespace, and private networking between a space's dynos."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import urllib.parse
import uuid
from collections.abc import Iterator

import httpx
import pytest
from e2e_support import WEB, Deployer
from support import RunningPlatform, wait_for


def get_from(platform: RunningPlatform, app: str, source: str) -> httpx.Response:
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(transport=transport, timeout=30) as c:
        return c.get(
            platform.endpoints["router_http_url"] + "/", headers={"Host": f"{app}.localhost"}
        )


@pytest.fixture(scope="module")
def space_app(platform: RunningPlatform, deploy: Deployer) -> tuple[str, str]:
    api = platform.client()
    tag = uuid.uuid4().hex[:6]
    team, space, app = f"net-{tag}", f"net-{tag}", f"net-{tag}"
    assert api.post("/teams", json={"name": team}).status_code == 201
    assert api.post("/spaces", json={"name": space, "team": team}).status_code == 201
    wait_for(
        lambda: api.get(f"/spaces/{space}").json()["state"] == "allocated", 20, what="allocated"
    )
    r = api.post("/teams/apps", json={"name": app, "space": space})
    assert r.status_code == 201, r.text
    repo = deploy.repo(
        app, files={"Procfile": "web: python3 web.py\n", "web.py": WEB.format(text="inside")}
    )
    res = deploy.push(repo, app)
    assert res.returncode == 0, res.stderr
    deploy.wait_serving(app, "inside")
    return space, app


def test_trusted_ip_ranges_are_enforced_by_the_router(
    platform: RunningPlatform, deploy: Deployer, space_app: tuple[str, str]
) -> None:
    space, app = space_app
    api = platform.client()
    # The default ruleset trusts every source.
    assert get_from(platform, app, "127.0.0.2").status_code == 200
    assert get_from(platform, app, "127.0.0.1").status_code == 200

    def put(rules: list[dict[str, str]]) -> None:
        r = api.put(f"/spaces/{space}/inbound-ruleset", json={"rules": rules})
        assert r.status_code == 200, r.text

    # Only 127.0.0.2 is trusted: 127.0.0.1 gets 403 from the router, the app never sees it.
    put([{"action": "allow", "source": "127.0.0.2/32"}])
    refused = wait_for(
        lambda: (r := get_from(platform, app, "127.0.0.1")).status_code == 403 and r,
        10,
        what="403 for an untrusted source",
    )
    assert "inside" not in refused.text and "trusted IP ranges" in refused.text
    assert get_from(platform, app, "127.0.0.2").status_code == 200
    lines = wait_for(
        lambda: [ln for ln in deploy.logs(app, lines=200) if "code=H84" in ln] or None,
        10,
        what="router line for H84",
    )
    assert "heroku[router]" in lines[-1] and "status=403" in lines[-1]
    assert 'desc="Untrusted source address"' in lines[-1]

    # First match decides: a deny before a wide allow refuses just that source.
    put(
        [
            {"action": "deny", "source": "127.0.0.2/32"},
            {"action": "allow", "source": "127.0.0.0/8"},
        ]
    )
    wait_for(lambda: get_from(platform, app, "127.0.0.2").status_code == 403, 10, what="deny")
    assert get_from(platform, app, "127.0.0.1").status_code == 200

    # No rule at all: every web request is refused; apps outside spaces are untouched.
    put([])
    wait_for(lambda: get_from(platform, app, "127.0.0.1").status_code == 403, 10, what="none")
    put([{"action": "allow", "source": "0.0.0.0/0"}])
    wait_for(lambda: get_from(platform, app, "127.0.0.2").status_code == 200, 10, what="open")


# A web process that also reports, through the router, what it can reach from its dyno.
PROBE = """import http.server, os, socket, urllib.parse

class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        q = dict(urllib.parse.parse_qsl(url.query))
        if url.path == "/connect":
            try:
                with socket.create_connection((q["host"], int(q["port"])), timeout=2) as s:
                    s.sendall(b"GET / HTTP/1.0\\r\\nHost: probe\\r\\n\\r\\n")
                    got = b""
                    while chunk := s.recv(4096):  # to the end: HTTP/1.0 closes
                        got += chunk
                    body = "ok:" + got.decode(errors="replace")
            except OSError as e:
                body = "fail:" + type(e).__name__
        elif url.path == "/cat":
            try:
                body = open(q["file"]).read()
            except OSError as e:
                body = "fail:" + type(e).__name__
        elif url.path == "/resolve":
            try:
                body = socket.gethostbyname(q["name"])
            except OSError as e:
                body = "fail:" + type(e).__name__
        else:
            body = os.environ.get("TEXT", "probe")
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *a):
        pass

http.server.ThreadingHTTPServer(("", int(os.environ["PORT"])), H).serve_forever()
"""

needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="dynos get network namespaces only when the platform runs as root"
)


def serve_banner(text: str) -> tuple[int, socket.socket]:
    """A listener on the host's loopback that answers every connection with `text`."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)

    def loop() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                try:
                    conn.recv(4096)  # the request first: closing on unread data resets
                    conn.sendall(text.encode())
                except OSError:
                    continue

    threading.Thread(target=loop, daemon=True).start()
    return srv.getsockname()[1], srv


def new_space(platform: RunningPlatform, team: str) -> str:
    api = platform.client()
    space = f"sp-{uuid.uuid4().hex[:6]}"
    assert api.post("/spaces", json={"name": space, "team": team}).status_code == 201
    wait_for(
        lambda: api.get(f"/spaces/{space}").json()["state"] == "allocated", 20, what="allocated"
    )
    return space


def probe_app(
    platform: RunningPlatform, deploy: Deployer, space: str, text: str, config: dict[str, str]
) -> str:
    api = platform.client()
    app = f"pr-{uuid.uuid4().hex[:6]}"
    r = api.post("/teams/apps", json={"name": app, "space": space})
    assert r.status_code == 201, r.text
    assert api.patch(f"/apps/{app}/config-vars", json={"TEXT": text, **config}).status_code == 200
    repo = deploy.repo(app, files={"Procfile": "web: python3 web.py\n", "web.py": PROBE})
    res = deploy.push(repo, app)
    assert res.returncode == 0, res.stderr
    deploy.wait_serving(app, text)
    return app


def ask(deploy: Deployer, app: str, path: str, **query: object) -> str:
    r = deploy.get(app, f"{path}?{urllib.parse.urlencode(query)}")
    assert r.status_code == 200, r.text
    return r.text


@pytest.fixture(scope="module")
def banners() -> Iterator[dict[str, int]]:
    """Three listeners on the host: an allowed one, a refused one, an 'add-on'."""
    made = {name: serve_banner(f"banner-{name}") for name in ("allowed", "refused", "addon")}
    yield {name: port for name, (port, _) in made.items()}
    for _, srv in made.values():
        srv.close()


@pytest.fixture(scope="module")
def spaces(platform: RunningPlatform, banners: dict[str, int]) -> dict[str, str]:
    team = f"nw-{uuid.uuid4().hex[:6]}"
    assert platform.client().post("/teams", json={"name": team}).status_code == 201
    return {"team": team, "a": new_space(platform, team), "b": new_space(platform, team)}


@needs_root
def test_outbound_rules_are_enforced_in_each_dynos_namespace(
    platform: RunningPlatform, deploy: Deployer, banners: dict[str, int], spaces: dict[str, str]
) -> None:
    api = platform.client()
    space = spaces["a"]
    # The add-on's URL names a loopback port, as a real add-on's does.
    addon_url = f"redis://h:secret@127.0.0.1:{banners['addon']}"
    app = probe_app(platform, deploy, space, "egress", {"SOME_ADDON_URL": addon_url})
    gw = ask(deploy, app, "/resolve", name="gateway.localspace")
    assert gw.startswith("100.") and gw.endswith(".1"), gw  # the space's gateway, not loopback
    # The dyno has its own loopback: the host's is reached through the space's gateway.
    for name in ("allowed", "refused"):
        assert ask(deploy, app, "/connect", host=gw, port=banners[name]) == f"ok:banner-{name}"
        assert ask(deploy, app, "/connect", host="127.0.0.1", port=banners[name]).startswith(
            "fail:"
        )

    # Only the allowed listener's port: the running dyno gets the new rules at once.
    rules = [{"target": f"{gw}/32", "from_port": banners["allowed"], "to_port": banners["allowed"],
              "protocol": "tcp"}]  # fmt: skip
    r = api.put(f"/spaces/{space}/outbound-ruleset", json={"rules": rules})
    assert r.status_code == 200, r.text
    wait_for(
        lambda: ask(deploy, app, "/connect", host=gw, port=banners["refused"]).startswith("fail:"),
        15,
        what="the refused listener refused",
    )
    assert ask(deploy, app, "/connect", host=gw, port=banners["allowed"]) == "ok:banner-allowed"
    # Its own add-on stays reachable at the address in its config var, whatever the rules.
    got = ask(deploy, app, "/connect", host="127.0.0.1", port=banners["addon"])
    assert got == "ok:banner-addon"
    # The router still reaches the dyno; a restarted dyno starts under the current rules.
    before = api.get(f"/apps/{app}/dynos").json()[0]["updated_at"]
    assert api.delete(f"/apps/{app}/dynos").status_code in (200, 202)
    wait_for(
        lambda: [
            d
            for d in api.get(f"/apps/{app}/dynos").json()
            if d["state"] == "up" and d["updated_at"] != before
        ],
        60,
        what="the dyno up again",
    )
    wait_for(lambda: deploy.get(app).status_code == 200, 60, what="serving after restart")
    assert ask(deploy, app, "/connect", host=gw, port=banners["refused"]).startswith("fail:")
    assert ask(deploy, app, "/connect", host=gw, port=banners["allowed"]) == "ok:banner-allowed"

    # No rule at all: nothing beyond the space and its add-ons.
    assert api.put(f"/spaces/{space}/outbound-ruleset", json={"rules": []}).status_code == 200
    wait_for(
        lambda: ask(deploy, app, "/connect", host=gw, port=banners["allowed"]).startswith("fail:"),
        15,
        what="everything refused",
    )
    assert ask(deploy, app, "/connect", host="127.0.0.1", port=banners["addon"]) == (
        "ok:banner-addon"
    )


@needs_root
def test_private_networking_between_the_dynos_of_one_space(
    platform: RunningPlatform, deploy: Deployer, spaces: dict[str, str]
) -> None:
    target = probe_app(platform, deploy, spaces["b"], "target-app", {})
    peer = probe_app(platform, deploy, spaces["b"], "peer-app", {})
    stranger = probe_app(platform, deploy, spaces["a"], "stranger-app", {})
    name = f"web.{target}.app.localspace"

    # A dyno of the same space reaches the target's web dyno by name on its $PORT (5000).
    got = wait_for(
        lambda: (t := ask(deploy, peer, "/connect", host=name, port=5000)).startswith("ok:") and t,
        15,
        what="the peer reaching the target",
    )
    assert "target-app" in got
    address = ask(deploy, peer, "/resolve", name=name)
    assert address.startswith("100."), address

    # Another space's dyno neither resolves the name nor reaches the address.
    assert ask(deploy, stranger, "/resolve", name=name).startswith("fail:")
    assert ask(deploy, stranger, "/connect", host=address, port=5000).startswith("fail:")
    # The router still serves both (it dials each dyno's own address).
    assert deploy.get(target).text == "target-app"


@needs_root
@pytest.mark.skipif(
    shutil.which("docker-registry") is None or shutil.which("bwrap") is None,
    reason="Fir needs docker-registry and bubblewrap (Debian packages)",
)
def test_a_fir_spaces_dyno_runs_in_its_namespace_under_the_rules(
    platform: RunningPlatform, deploy: Deployer, banners: dict[str, int], spaces: dict[str, str]
) -> None:
    api = platform.client()
    space = f"fir-{uuid.uuid4().hex[:6]}"
    r = api.post("/spaces", json={"name": space, "team": spaces["team"], "generation": "fir"})
    assert r.status_code == 201, r.text
    wait_for(lambda: api.get(f"/spaces/{space}").json()["state"] == "allocated", 20)
    app = f"fp-{uuid.uuid4().hex[:6]}"
    r = api.post("/teams/apps", json={"name": app, "space": space})
    assert r.status_code == 201 and r.json()["generation"]["name"] == "fir", r.text
    rules = [{"target": "100.64.0.0/10", "from_port": banners["allowed"],
              "to_port": banners["allowed"], "protocol": "tcp"}]  # fmt: skip
    assert api.put(f"/spaces/{space}/outbound-ruleset", json={"rules": rules}).status_code == 200
    files = {"Procfile": "web: python3 web.py\n", "web.py": PROBE, "requirements.txt": ""}
    res = deploy.push(deploy.repo(app, files=files), app)
    assert res.returncode == 0, res.stderr
    deploy.wait_serving(app, "probe", timeout=120)
    gw = ask(deploy, app, "/resolve", name="gateway.localspace")
    hosts = ask(deploy, app, "/cat", file="/etc/hosts")
    assert gw.startswith("100.") and f"{gw}\tgateway.localspace" in hosts, (gw, hosts)
    assert ask(deploy, app, "/connect", host=gw, port=banners["allowed"]) == "ok:banner-allowed"
    assert ask(deploy, app, "/connect", host=gw, port=banners["refused"]).startswith("fail:")
