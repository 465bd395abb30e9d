"""Heroku's VS Code extension (heroku/heroku-vscode 1.0.7) against Spruce: each Platform API
call it makes, replayed with the headers it sends, and the effect each one should have.

The extension's service classes come from a build of @heroku-cli/schema it vendors (a
tarball in its repository); the npm releases of that package carry the types only, so the
calls are replayed here as the extension's sources make them. Spruce runs with
`--heroku-git-names`, so the extension's tree finds the apps from their git remotes.
"""

from __future__ import annotations

import io
import json
import tarfile
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from support import RunningPlatform, start_platform, wait_for

VERSION = "1.0.7"
# generate-service-request-init.ts, plus the Accept header of the schema's service classes
HEADERS = {
    "Accept": "application/vnd.heroku+json; version=3.sdk",
    "Referer": f"vscode-heroku-extension/{VERSION}",
    "User-Agent": f"VSCode-Heroku-Extension/{VERSION} (linux; x64) VSCode/1.93.1",
}
WEB = """import http.server, os

class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        print("extension app served " + self.path, flush=True)
        body = b"deployed from the editor"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

http.server.ThreadingHTTPServer(("", int(os.environ["PORT"])), H).serve_forever()
"""


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    tuning = {"dynos": {"stop_grace": 3.0}, "router": {"boot_wait": 20.0}}
    p = start_platform(
        tmp_path_factory.mktemp("vscode-home"),
        extra_env={"SPRUCE_TUNING": json.dumps(tuning)},
        extra_args=["--heroku-git-names"],
    )
    yield p
    p.stop()


@pytest.fixture(scope="module")
def ext(platform: RunningPlatform) -> Iterator[httpx.Client]:
    headers = dict(HEADERS, Authorization=f"Bearer {platform.api_key}")
    with httpx.Client(base_url=platform.api_url, headers=headers, timeout=60) as c:
        account = c.get("/account")
        assert account.status_code == 200, account.text
        c.headers["X-Account-Id"] = account.json()["id"]
        yield c


def ok(r: httpx.Response, status: int = 200) -> Any:
    assert r.status_code == status, f"{r.request.method} {r.request.url}: {r.status_code} {r.text}"
    return r.json()


def tarball(files: dict[str, str]) -> bytes:
    """What the extension's packSources sends: a gzipped tar of the workspace."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def extension_app_names(remotes: dict[str, str]) -> list[str]:
    """git-utils.ts getHerokuAppNames: remotes whose name and URL both say "heroku"."""
    names = []
    for name, url in remotes.items():
        if "heroku" in name and "heroku" in url:
            names.append(urlsplit(url).path.replace("/", "").replace(".git", ""))
    return names


@pytest.fixture(scope="module")
def deployed(ext: httpx.Client) -> dict[str, Any]:
    """deploy-to-heroku.ts: POST /sources, PUT the tarball, POST /app-setups, GET the app."""
    source = ok(ext.post("/sources"), 201)["source_blob"]
    files = {"Procfile": "web: python3 web.py\n", "web.py": WEB, "app.json": "{}"}
    put = httpx.put(source["put_url"], content=tarball(files), timeout=60)
    assert put.status_code == 200, put.text
    setup = ok(ext.post("/app-setups", json={"source_blob": {"url": source["get_url"]}}), 201)

    def finished() -> dict[str, Any] | None:
        s = ok(ext.get(f"/app-setups/{setup['id']}"))
        return s if s["status"] in ("succeeded", "failed") else None

    done = wait_for(finished, 240, interval=1, what="the app setup")
    assert done["status"] == "succeeded", done
    return ok(ext.get(f"/apps/{done['app']['id']}"))  # type: ignore[no-any-return]


def test_the_tree_lists_the_app_from_its_git_remote(
    ext: httpx.Client, deployed: dict[str, Any]
) -> None:
    apps = ok(ext.get("/apps"))
    assert deployed["name"] in [a["name"] for a in apps]
    # the extension adds `heroku-<app>` with the app's git_url, then finds apps by remote
    git_url = deployed["git_url"]
    assert git_url.startswith("https://heroku@") and git_url.endswith(f"/{deployed['name']}.git")
    assert extension_app_names({f"heroku-{deployed['name']}": git_url}) == [deployed["name"]]
    assert ok(ext.get("/teams")) == [] and ok(ext.get("/spaces")) == []


def test_dynos_formation_and_restart(
    platform: RunningPlatform, ext: httpx.Client, deployed: dict[str, Any]
) -> None:
    app = deployed["name"]

    def web_up() -> dict[str, Any] | None:
        dynos = ok(ext.get(f"/apps/{app}/dynos"))
        return next((d for d in dynos if d["name"] == "web.1" and d["state"] == "up"), None)

    before = wait_for(web_up, 60, interval=0.5, what="web.1 up")
    formation = ok(ext.get(f"/apps/{app}/formation"))
    assert [(f["type"], f["quantity"]) for f in formation] == [("web", 1)]
    time.sleep(1.1)
    ok(ext.delete(f"/apps/{app}/dynos/web.1"))  # the tree's "restart dyno"
    wait_for(
        lambda: (d := web_up()) is not None and d["updated_at"] != before["updated_at"],
        60,
        interval=0.5,
        what="web.1 restarted",
    )
    scaled = ok(ext.patch(f"/apps/{app}/formation/web", json={"quantity": 0}))
    assert scaled["quantity"] == 0
    wait_for(lambda: ok(ext.get(f"/apps/{app}/dynos")) == [], 60, what="no dynos")
    ok(ext.patch(f"/apps/{app}/formation/web", json={"quantity": 1}))
    wait_for(web_up, 60, interval=0.5, what="web.1 up again")


def test_a_build_from_the_editor_and_its_output(
    ext: httpx.Client, deployed: dict[str, Any]
) -> None:
    app = deployed["name"]
    source = ok(ext.post("/sources"), 201)["source_blob"]
    files = {"Procfile": "web: python3 web.py\n", "web.py": WEB.replace("editor", "build")}
    assert httpx.put(source["put_url"], content=tarball(files), timeout=60).status_code == 200
    body = {"source_blob": {"url": source["get_url"], "version": "editor-1"}}
    build = ok(ext.post(f"/apps/{app}/builds", json=body), 201)
    output = httpx.get(build["output_stream_url"], timeout=240).text
    assert "-----> Launching..." in output, output[-2000:]
    done = wait_for(
        lambda: (
            (b := ok(ext.get(f"/apps/{app}/builds/{build['id']}")))["status"] != "pending" and b
        ),
        120,
        what="the build",
    )
    assert done["status"] == "succeeded", done


def test_add_ons_plans_attachments_and_plan_change(
    ext: httpx.Client, deployed: dict[str, Any]
) -> None:
    app = deployed["name"]
    plans = ok(ext.get("/addon-services/heroku-redis/plans"))
    names = [p["name"] for p in plans]
    assert "heroku-redis:mini" in names
    addon = ok(ext.post(f"/apps/{app}/addons", json={"plan": "heroku-redis:mini"}), 201)
    wait_for(
        lambda: ok(ext.get(f"/apps/{app}/addons"))[0]["state"] == "provisioned",
        60,
        what="redis provisioned",
    )
    attachments = ok(ext.get(f"/addons/{addon['id']}/addon-attachments"))
    assert [a["app"]["name"] for a in attachments] == [app]
    other = next(n for n in names if n != "heroku-redis:mini")
    changed = ok(ext.patch(f"/apps/{app}/addons/{addon['id']}", json={"plan": other}))
    assert changed["plan"]["name"] == other


def test_log_session_shows_what_the_app_printed(
    platform: RunningPlatform, ext: httpx.Client, deployed: dict[str, Any]
) -> None:
    app = deployed["name"]
    router = platform.endpoints["router_http_url"]

    def served() -> bool:
        r = httpx.get(router + "/from-vscode", headers={"Host": f"{app}.localhost"}, timeout=30)
        return r.status_code == 200

    wait_for(served, 60, interval=0.5, what="the app serving")
    session = ok(ext.post(f"/apps/{app}/log-sessions", json={"lines": 100, "tail": False}), 201)
    lines = httpx.get(session["logplex_url"], timeout=30).text
    assert "extension app served /from-vscode" in lines, lines
