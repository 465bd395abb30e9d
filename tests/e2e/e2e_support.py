"""Pushing example apps with real git and reading them through the router."""

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
from support import REPO, RunningPlatform, wait_for

EXAMPLES = REPO / "examples" / "apps"
# Short timers so restarts and stops stay quick; the rules are the same as Heroku's.
TUNING = {
    "dynos": {"stop_grace": 3.0, "boot_timeout": 30.0},
    "router": {"boot_wait": 20.0},
    "build": {"slug_retention": 3},
}


class Deployer:
    def __init__(self, platform: RunningPlatform, workdir: Path) -> None:
        self.p = platform
        self.workdir = workdir

    def repo(
        self, name: str, files: dict[str, str] | None = None, example: str | None = None
    ) -> Path:
        path = self.workdir / name
        if path.exists():
            shutil.rmtree(path)
        if example:
            shutil.copytree(
                EXAMPLES / example, path, ignore=shutil.ignore_patterns("tests", "__pycache__")
            )
        else:
            path.mkdir(parents=True)
        for rel, text in (files or {}).items():
            f = path / rel
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(text)
        self.git(path, "init", "-q", "-b", "main")
        self.commit(path, "first")
        return path

    def git(self, path: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = dict(
            os.environ, GIT_SSL_CAINFO=str(self.p.home / "ca" / "ca.pem"), GIT_TERMINAL_PROMPT="0"
        )
        return subprocess.run(
            ["git", "-c", "user.email=dev@example.com", "-c", "user.name=Dev", *args],
            cwd=path,
            env=env,
            capture_output=True,
            text=True,
            check=check,
            timeout=600,
        )

    def commit(self, path: Path, message: str) -> None:
        self.git(path, "add", "-A")
        self.git(path, "commit", "-q", "--allow-empty", "-m", message)

    def push_url(self, app: str) -> str:
        git_url = self.p.endpoints["git_url"]
        return git_url.replace("https://", f"https://git:{self.p.api_key}@") + f"/{app}.git"

    def push(self, path: Path, app: str, branch: str = "main") -> subprocess.CompletedProcess[str]:
        return self.git(path, "push", self.push_url(app), f"HEAD:{branch}", check=False)

    def get(self, app: str, path: str = "/", **kw: Any) -> httpx.Response:
        return httpx.get(
            self.p.endpoints["router_http_url"] + path,
            headers={"Host": f"{app}.localhost", **kw.pop("headers", {})},
            timeout=30,
            **kw,
        )

    def wait_serving(self, app: str, text: str, timeout: float = 60) -> httpx.Response:
        def ok() -> httpx.Response | None:
            r = self.get(app)
            return r if r.status_code == 200 and text in r.text else None

        return wait_for(ok, timeout, interval=0.2, what=f"{app} serving {text!r}")  # type: ignore[no-any-return]

    def logs(self, app: str, **body: Any) -> list[str]:
        session = self.p.client().post(f"/apps/{app}/log-sessions", json=body).json()
        return httpx.get(session["logplex_url"], timeout=30).text.splitlines()


WEB = """import http.server, os

class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = {text!r}.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass

http.server.ThreadingHTTPServer(("", int(os.environ["PORT"])), H).serve_forever()
"""
