"""Small apps for the buildpack push tests: files from tests/e2e/apps/<name>, plus overrides."""

from __future__ import annotations

import uuid
from pathlib import Path

from e2e_support import Deployer
from support import RunningPlatform

APPS = Path(__file__).parent / "apps"

# A web process that shows what the build put in the slug: `{name}` is filled by the test.
PY_WEB = """import http.server, importlib, os

def page():
    parts = [{text!r}]
    for name in {modules!r}:
        try:
            parts.append(name + "=" + importlib.import_module(name).__version__)
        except ImportError:
            parts.append(name + "=missing")
    for path in {files!r}:
        parts.append(path + "=" + (open(path).read().strip() if os.path.exists(path) else "none"))
    return " ".join(parts)

class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = page().encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass

http.server.ThreadingHTTPServer(("", int(os.environ["PORT"])), H).serve_forever()
"""


def py_web(text: str, modules: tuple[str, ...] = (), files: tuple[str, ...] = ()) -> str:
    return PY_WEB.format(text=text, modules=list(modules), files=list(files))


def app_files(name: str) -> dict[str, str]:
    root = APPS / name
    return {p.relative_to(root).as_posix(): p.read_text() for p in sorted(root.rglob("*"))
            if p.is_file()}  # fmt: skip


def new_app(p: RunningPlatform, prefix: str, config: dict[str, str] | None = None) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    assert p.client().post("/apps", json={"name": name}).status_code == 201
    if config:
        assert p.client().patch(f"/apps/{name}/config-vars", json=config).status_code == 200
    return name


def push_new(
    p: RunningPlatform,
    deploy: Deployer,
    prefix: str,
    files: dict[str, str],
    config: dict[str, str] | None = None,
) -> tuple[str, Path, str, int]:
    """Create an app, push `files` to it: (app, repo, push output, git's exit status)."""
    app = new_app(p, prefix, config)
    repo = deploy.repo(app, files=files)
    res = deploy.push(repo, app)
    return app, repo, res.stderr, res.returncode


def repush(deploy: Deployer, repo: Path, app: str, message: str) -> tuple[str, int]:
    deploy.commit(repo, message)
    res = deploy.push(repo, app)
    return res.stderr, res.returncode
