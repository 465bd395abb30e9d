"""Real builds of the example apps, then the slug is unpacked and the web process is run."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import tarfile
from pathlib import Path

import httpx
from build_helpers import Builder

from spruce.compile import unpack_slug
from spruce.netutil import free_port


async def serve_and_get(app_dir: Path, command: str, path: str = "/") -> str:
    """Start a process type like a dyno would (HOME=slug, .profile.d, PORT) and GET path.

    Returns the body for "/", "<status> <body>" for other paths.
    """
    port = free_port()
    script = (
        'cd "$HOME"; for f in .profile.d/*.sh; do [ -f "$f" ] && . "$f"; done; exec bash -c "$0"'
    )
    env = {
        "HOME": str(app_dir),
        "PATH": os.environ["PATH"],
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "DYNO": "web.1",
    }
    proc = subprocess.Popen(["bash", "-c", script, command], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(300):
                try:
                    response = await client.get(f"http://127.0.0.1:{port}{path}")
                    if path != "/":
                        return f"{response.status_code} {response.text}"
                    return response.text
                except httpx.TransportError:
                    assert proc.poll() is None, f"{command!r} exited with {proc.returncode}"
                    await asyncio.sleep(0.05)
        raise AssertionError(f"{command!r} never answered on port {port}")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)


async def test_python_web_pip_install_and_gunicorn(builder: Builder) -> None:
    app = builder.app("python-web", example="python-web")
    result = await builder.build(app)
    assert result.buildpack_description == "Python"
    assert result.buildpacks == ["heroku/python"]
    assert result.process_types["web"].startswith("gunicorn ")
    assert "-----> Python app detected" in builder.lines
    assert any(line.startswith("       Successfully installed gunicorn") for line in builder.lines)
    with tarfile.open(result.slug_path) as tar:
        names = tar.getnames()
    assert "./tests" not in names and "./README.md" not in names  # .slugignore
    assert "./.heroku/python/bin/gunicorn" in names
    # A second build reuses the cached virtualenv (same interpreter, same requirements).
    builder.lines.clear()
    result = await builder.build(app)
    assert "-----> Restoring cache" in builder.lines
    assert any(
        line.startswith("       Requirement already satisfied: gunicorn") for line in builder.lines
    )
    unpacked = unpack_slug(result.slug_path, builder.root / "dyno")
    body = await serve_and_get(unpacked, result.process_types["web"])
    assert body == "Hello from Spruce! dyno=web.1\n"


async def test_python_console_scripts_run_after_a_build_in_a_long_path(tmp_path: Path) -> None:
    """Past 127 bytes pip writes its own sh trampoline with the build path: it is rewritten
    like a short shebang, so gunicorn still starts from the unpacked slug."""
    builder = Builder(root=tmp_path / ("long-" * 16))
    app = builder.app("python-web", example="python-web")
    result = await builder.build(app)
    unpacked = unpack_slug(result.slug_path, tmp_path / "dyno")
    head = (unpacked / ".heroku" / "python" / "bin" / "gunicorn").read_bytes()[:200]
    assert str(builder.root).encode() not in head, head
    body = await serve_and_get(unpacked, result.process_types["web"])
    assert body == "Hello from Spruce! dyno=web.1\n"


async def test_node_web(builder: Builder) -> None:
    result = await builder.build(builder.app("node-web", example="node-web"))
    assert result.buildpack_description == "Node.js"
    assert result.process_types == {"web": "npm start"}
    assert "       Installing node modules (package.json)" in builder.lines
    body = await serve_and_get(unpack_slug(result.slug_path, builder.root / "dyno"), "npm start")
    assert body.startswith("Hello from Node.js on Spruce!")


async def test_node_without_start_script_uses_server_js_and_procfile_wins(builder: Builder) -> None:
    app = builder.app(
        "n", {"package.json": '{"name": "n", "version": "1.0.0"}', "server.js": "", "index.js": ""}
    )
    assert (await builder.build(app)).process_types == {"web": "node server.js"}
    (app / "server.js").unlink()
    assert (await builder.build(app)).process_types == {"web": "node index.js"}
    (app / "Procfile").write_text("web: node index.js --port $PORT\nworker: node w.js\n")
    result = await builder.build(app)
    assert result.process_types == {"web": "node index.js --port $PORT", "worker": "node w.js"}


async def test_static_site(builder: Builder) -> None:
    result = await builder.build(builder.app("static-site", example="static-site"))
    assert result.buildpack_description == "Static"
    assert result.process_types == {"web": "python3 .spruce/static_server.py"}
    unpacked = unpack_slug(result.slug_path, builder.root / "dyno")
    web = result.process_types["web"]
    assert "<h1>Hello from a static site on Spruce</h1>" in await serve_and_get(unpacked, web)
    assert (await serve_and_get(unpacked, web, "/index")).startswith("200 <!doctype")  # clean_urls
    assert (await serve_and_get(unpacked, web, "/.spruce/static_server.py")).startswith("404")


async def test_worker_only_and_release_phase(builder: Builder) -> None:
    worker = await builder.build(builder.app("worker-only", example="worker-only"))
    assert worker.buildpack_description == "Procfile"
    assert worker.process_types == {"worker": "bash worker.sh"}
    release = await builder.build(builder.app("release-phase", example="release-phase"))
    assert release.process_types == {"release": "bash release.sh", "web": "python3 web.py"}
    assert release.stack == "heroku-24"
    assert release.checksum.startswith("SHA256:")
    assert release.slug_size == release.slug_path.stat().st_size
    # What the platform does with it: run `release` in a one-off dyno, then start web.
    dyno = unpack_slug(release.slug_path, builder.root / "release-dyno")
    for fail, expected_rc in (("1", 1), ("0", 0)):
        ran = subprocess.run(
            ["bash", "-c", release.process_types["release"]],
            cwd=dyno, env={"PATH": os.environ["PATH"], "HOME": str(dyno), "FAIL_RELEASE": fail},
            capture_output=True, text=True,
        )  # fmt: skip
        assert ran.returncode == expected_rc, ran.stderr
    assert "release phase: preparing version 1" in ran.stdout
    body = await serve_and_get(dyno, release.process_types["web"])
    assert body == "release-phase app version 1\n"


async def test_node_lockfile_ci_build_script_and_prune(builder: Builder) -> None:
    app = builder.app(
        "locked",
        {
            "package.json": (
                '{"name": "locked", "version": "1.0.0", "dependencies": {"ms": "^2.1.3"},'
                ' "devDependencies": {"is-number": "^7.0.0"},'
                " \"scripts\": {\"build\": \"node -e \\\"require('is-number'); require('fs').writeFileSync('built.txt', 'ok')\\\"\"}}"
            ),
            "index.js": "console.log(require('ms')(60000))\n",
        },
    )
    lock = subprocess.run(
        ["npm", "install", "--package-lock-only", "--no-audit", "--no-fund"],
        cwd=app, capture_output=True, text=True,
    )  # fmt: skip
    assert lock.returncode == 0, lock.stderr
    result = await builder.build(app)
    assert "       Installing node modules (package-lock.json)" in builder.lines
    assert "       Running build" in builder.lines
    assert result.process_types == {"web": "node index.js"}
    with tarfile.open(result.slug_path) as tar:
        names = set(tar.getnames())
    assert "./built.txt" in names
    assert "./node_modules/ms/package.json" in names
    assert "./node_modules/is-number/package.json" not in names  # devDependencies pruned
