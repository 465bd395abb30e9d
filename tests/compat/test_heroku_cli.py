"""Heroku's CLI v11, unchanged, against Spruce: each command checked for its output or effect."""

from __future__ import annotations

import json
import re
import shutil
import socket
import ssl
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from compat_support import HerokuCLI
from support import REPO, RunningPlatform, wait_for


@pytest.fixture(scope="module")
def app(heroku: HerokuCLI, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """An app created and deployed with `heroku apps:create` and `git push heroku main`."""
    name = f"hk-{uuid.uuid4().hex[:6]}"
    repo = tmp_path_factory.mktemp("repo") / name
    shutil.copytree(REPO / "examples" / "apps" / "release-phase", repo)
    heroku.git("init", "-q", "-b", "main", cwd=repo)
    heroku.git("add", "-A", cwd=repo)
    heroku.git("commit", "-q", "-m", "first", cwd=repo)
    res = heroku("apps:create", name, cwd=repo)
    assert f"Creating {name}... done" in res.stdout + res.stderr
    assert "heroku" in heroku.git("remote", cwd=repo).stdout
    push = heroku.git("push", "heroku", "main", cwd=repo)
    assert "Released v2" in push.stderr
    return name, repo


def output_with(run: Callable[[], str], needle: str, timeout: float = 30) -> str:
    """Run a command until its output contains `needle`."""

    def attempt() -> str | None:
        out = run()
        return out if needle in out else None

    return wait_for(attempt, timeout, interval=0.5, what=repr(needle))  # type: ignore[no-any-return]


def router_get(p: RunningPlatform, app: str, path: str = "/") -> httpx.Response:
    return httpx.get(
        p.endpoints["router_http_url"] + path, headers={"Host": f"{app}.localhost"}, timeout=30
    )


def test_apps_info_and_listing(
    heroku: HerokuCLI, app: tuple[str, Path], platform: RunningPlatform
) -> None:
    name, _ = app
    assert name in heroku("apps").stdout
    info = heroku("apps:info", "-a", name).stdout
    assert f"=== {name}" in info and "admin@spruce.local" in info and "web: 1" in info
    data = json.loads(heroku("apps:info", "-a", name, "--json").stdout)
    assert data["app"]["name"] == name
    # The deployed app answers through the router (what `curl https://<app>` does on Heroku).
    r = wait_for(
        lambda: (x := router_get(platform, name)).status_code == 200 and x, 30, what="app serving"
    )
    assert "release-phase app version" in r.text


def test_config_and_releases(heroku: HerokuCLI, app: tuple[str, Path]) -> None:
    name, _ = app
    res = heroku("config:set", "GREETING=hello", "OTHER=1", "-a", name)
    assert "Setting GREETING, OTHER and restarting" in res.stderr + res.stdout
    assert heroku("config:get", "GREETING", "-a", name).stdout.strip() == "hello"
    heroku("config:unset", "OTHER", "-a", name)
    assert "OTHER" not in heroku("config", "-a", name, "--json").stdout
    rel = heroku("releases", "-a", name).stdout
    assert (
        "Set GREETING, OTHER config vars" in rel
        and "Remove OTHER config vars" in rel
        and "Deploy" in rel
    )
    info = heroku("releases:info", "v3", "-a", name).stdout
    assert "Set GREETING, OTHER config vars" in info
    res = heroku("releases:rollback", "v3", "-a", name)
    assert "Rolling back" in res.stdout + res.stderr
    assert heroku("config:get", "OTHER", "-a", name).stdout.strip() == "1"


def test_ps_scale_restart_stop(
    heroku: HerokuCLI, app: tuple[str, Path], platform: RunningPlatform
) -> None:
    name, _ = app
    assert "web.1: up" in output_with(lambda: heroku("ps", "-a", name).stdout, "web.1: up")
    res = heroku("ps:scale", "web=2:standard-1x", "-a", name)
    assert "now running web at 2:Standard-1X" in res.stdout + res.stderr
    api = platform.client()
    wait_for(lambda: len(api.get(f"/apps/{name}/dynos").json()) == 2, 30, what="two dynos")
    assert "Restarting all dynos" in heroku("ps:restart", "-a", name).stderr
    assert (
        "Restarting all web dynos"
        in heroku("ps:restart", "--process-type", "web", "-a", name).stderr
    )
    assert (
        "Restarting dyno web.2" in heroku("ps:restart", "--dyno-name", "web.2", "-a", name).stderr
    )
    assert "Stopping dyno web.2" in heroku("ps:stop", "--dyno-name", "web.2", "-a", name).stderr
    # A relative amount: Heroku's CLI sends "-1", which the API counts from web's 2.
    res = heroku("ps:scale", "web-1:basic", "-a", name)
    assert "now running web at 1:Basic" in res.stdout + res.stderr
    wait_for(
        lambda: [d["name"] for d in api.get(f"/apps/{name}/dynos").json()] == ["web.1"],
        30,
        what="scaled down",
    )


def test_run_and_run_detached(heroku: HerokuCLI, app: tuple[str, Path]) -> None:
    name, _ = app
    res = heroku("run", "-a", name, "--", "echo from-$DYNO; exit 5", check=False)
    assert "from-run." in res.stdout
    assert res.returncode == 5
    res = heroku("run", "-a", name, "--exit-code", "--", "echo fine", check=False)
    assert res.returncode == 0 and "fine" in res.stdout
    res = heroku("run:detached", "-a", name, "--", "echo detached-line")
    assert "done, run." in res.stdout + res.stderr


def test_logs_and_tail(heroku: HerokuCLI, app: tuple[str, Path], platform: RunningPlatform) -> None:
    name, _ = app
    router_get(platform, name, "/logged-path")
    out = output_with(lambda: heroku("logs", "-a", name, "-n", "1500").stdout, "/logged-path")
    assert 'heroku[router]: at=info method=GET path="/logged-path"' in out
    assert "app[api]: Release v2 created by user admin@spruce.local" in out
    tail = subprocess.Popen(
        [str(heroku.bin_dir / "heroku"), "logs", "--tail", "-a", name],
        env=heroku.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        marker = f"/tail-{uuid.uuid4().hex[:6]}"
        deadline = time.monotonic() + 30
        assert tail.stdout is not None
        router_get(platform, name, marker)
        time.sleep(4)
        router_get(platform, name, marker)
        while time.monotonic() < deadline:
            line = tail.stdout.readline()
            if marker in line:
                break
        else:
            raise AssertionError("logs --tail did not show the new line")
    finally:
        tail.terminate()
        tail.wait(10)


def test_maintenance_features_domains(
    heroku: HerokuCLI, app: tuple[str, Path], platform: RunningPlatform
) -> None:
    name, _ = app
    heroku("maintenance:on", "-a", name)
    wait_for(lambda: router_get(platform, name).status_code == 503, 10, what="maintenance page")
    assert heroku("maintenance", "-a", name).stdout.strip() == "on"
    heroku("maintenance:off", "-a", name)
    wait_for(lambda: router_get(platform, name).status_code == 200, 10, what="back up")
    feats = heroku("features", "-a", name).stdout
    assert "preboot" in feats and "http-session-affinity" in feats
    heroku("features:enable", "http-session-affinity", "-a", name)
    assert "[+] http-session-affinity" in heroku("features", "-a", name).stdout
    assert (
        platform.client().get(f"/apps/{name}/features/http-session-affinity").json()["enabled"]
        is True
    )
    heroku("domains:add", f"www.{name}.example", "-a", name)
    assert f"www.{name}.example" in heroku("domains", "-a", name).stdout
    r = httpx.get(platform.endpoints["router_http_url"], headers={"Host": f"www.{name}.example"})
    assert r.status_code == 200


def test_addons(heroku: HerokuCLI, app: tuple[str, Path], platform: RunningPlatform) -> None:
    name, _ = app
    res = heroku("addons:create", "heroku-redis:mini", "-a", name)
    assert "REDIS_URL" in res.stdout + res.stderr
    listing = heroku("addons", "-a", name).stdout
    assert "heroku-redis" in listing and "mini" in listing
    addon = json.loads(heroku("addons", "-a", name, "--json").stdout)[0]["name"]
    info = heroku("addons:info", addon, "-a", name).stdout
    assert f"=== {addon}" in info and "heroku-redis:mini" in info
    assert heroku("config:get", "REDIS_URL", "-a", name).stdout.startswith("rediss://")
    heroku("addons:destroy", addon, "-a", name, "--confirm", name)
    assert "REDIS_URL" not in heroku("config", "-a", name, "--json").stdout


def test_drains_buildpacks_stack(heroku: HerokuCLI, app: tuple[str, Path]) -> None:
    name, _ = app
    assert (
        "Successfully added drain"
        in heroku("drains:add", "syslog+tls://127.0.0.1:6514", "-a", name).stdout
    )
    assert "syslog+tls://127.0.0.1:6514" in heroku("drains", "-a", name).stdout
    heroku("buildpacks:set", "https://github.com/heroku/heroku-buildpack-python", "-a", name)
    assert "heroku-buildpack-python" in heroku("buildpacks", "-a", name).stdout
    assert "* heroku-24" in heroku("stack", "-a", name).stdout


def test_auth_and_access(
    heroku: HerokuCLI, app: tuple[str, Path], platform: RunningPlatform
) -> None:
    name, _ = app
    assert heroku("auth:whoami").stdout.strip() == "admin@spruce.local"
    email = f"pal-{uuid.uuid4().hex[:6]}@example.com"
    platform.cli("users:create", email, "--home", str(platform.home), check=True)
    heroku("access:add", email, "-a", name)
    out = heroku("access", "-a", name).stdout
    assert email in out and "admin@spruce.local" in out


def test_rename_and_destroy(heroku: HerokuCLI) -> None:
    name = f"hk-{uuid.uuid4().hex[:6]}"
    heroku("apps:create", name, "--no-remote")
    heroku("apps:rename", f"{name}-x", "-a", name)
    assert f"{name}-x" in heroku("apps").stdout
    heroku("apps:destroy", "-a", f"{name}-x", "--confirm", f"{name}-x")
    assert f"{name}-x" not in heroku("apps").stdout


def test_certs_auto_enable_refresh_disable(heroku: HerokuCLI, platform: RunningPlatform) -> None:
    """ACM without an ACME directory: the internal CA issues, through the same statuses.
    (With NO_COLOR the CLI prints app names without their ⬢.)"""
    name = f"hk-{uuid.uuid4().hex[:6]}"
    host = f"www.{name}.example"
    heroku("apps:create", name, "--no-remote")
    off = heroku("certs:auto", "-a", name).stdout
    assert f"=== Automatic Certificate Management is disabled on {name}" in off
    heroku("domains:add", host, "-a", name)
    enabled = heroku("certs:auto:enable", "-a", name)
    assert (
        "Enabling Automatic Certificate Management... starting. See status with heroku "
        "certs:auto or wait until active with heroku certs:auto --wait"
    ) in enabled.stderr
    assert (
        "=== Your certificate will now be managed by Heroku. Check the status by running "
        "heroku certs:auto."
    ) in enabled.stdout
    status = output_with(lambda: heroku("certs:auto", "-a", name).stdout, "Cert issued")
    assert f"=== Automatic Certificate Management is enabled on {name}" in status
    assert "Renewal scheduled for " in status and "Certificate details:" in status
    assert f"Common Name(s): {host}" in status and "Issuer:         CN=Spruce Internal CA" in (
        status.replace("O=Spruce,", "")
    )
    assert "SSL certificate is verified by a root authority." in status
    assert re.search(rf"{re.escape(host)}\s+Cert issued\s+less than a minute", status)
    listing = heroku("certs", "-a", name).stdout
    assert re.search(rf"{re.escape(host)}\s+\d{{4}}-\d\d-\d\d \d\d:\d\d UTC\s+True\s+ACM", listing)
    info = heroku("certs:info", "-a", name)
    assert "Fetching SSL certificate" in info.stderr and f"Common Name(s): {host}" in info.stdout
    # The router serves it on the next handshake for that name.
    port = int(platform.endpoints["router_https_url"].rsplit(":", 1)[1])
    ctx = ssl.create_default_context(cafile=platform.endpoints["ca_bundle"])
    with socket.create_connection(("127.0.0.1", port)) as raw:
        with ctx.wrap_socket(raw, server_hostname=host) as tls:
            assert ("DNS", host) in tls.getpeercert()["subjectAltName"]
    refreshed = heroku("certs:auto:refresh", "-a", name)
    assert "Refreshing Automatic Certificate Management... done" in refreshed.stderr
    disabled = heroku("certs:auto:disable", "-a", name, "--confirm", name)
    assert "Disabling Automatic Certificate Management... done" in disabled.stderr
    assert f"{name} has no SSL certificates." in heroku("certs", "-a", name).stdout


def _git_buildpack(root: Path, heroku: HerokuCLI) -> Path:
    """A classic buildpack in a local bare git repository: `main` and a `v2` branch."""
    work = root / "bp"
    (work / "bin").mkdir(parents=True)
    (work / "bin" / "detect").write_text('#!/bin/sh\n[ -f "$1/greeting.txt" ] && echo Greeter\n')
    compile_ = '#!/bin/sh\necho "-----> Greeter MARK"\nmkdir -p "$1/site"\n'
    compile_ += '{ cat "$1/greeting.txt"; echo MARK; } > "$1/site/index.html"\n'
    (work / "bin" / "compile").write_text(compile_.replace("MARK", "v1"))
    release = "#!/bin/sh\nprintf -- '---\\ndefault_process_types:\\n"
    release += "  web: cd site && exec python3 -m http.server $PORT\\n'\n"
    (work / "bin" / "release").write_text(release)
    for script in (work / "bin").iterdir():
        script.chmod(0o755)
    heroku.git("init", "-q", "-b", "main", cwd=work)
    heroku.git("add", "-A", cwd=work)
    heroku.git("commit", "-q", "-m", "v1", cwd=work)
    heroku.git("checkout", "-q", "-b", "v2", cwd=work)
    (work / "bin" / "compile").write_text(compile_.replace("MARK", "v2"))
    heroku.git("commit", "-q", "-am", "v2", cwd=work)
    heroku.git("checkout", "-q", "main", cwd=work)  # the bare repository's HEAD
    bare = root / "greeter.git"
    heroku.git("clone", "-q", "--bare", str(work), str(bare), cwd=root)
    return bare


def test_buildpack_from_a_git_url(
    heroku: HerokuCLI, platform: RunningPlatform, tmp_path: Path
) -> None:
    """`buildpacks:set` with a git URL: cloned at build time (a branch after #) and run as a
    classic buildpack (detect, compile, release's default process types)."""
    url = "file://" + str(_git_buildpack(tmp_path, heroku))
    name = f"hkgb-{uuid.uuid4().hex[:6]}"
    repo = tmp_path / "app"
    repo.mkdir()
    (repo / "greeting.txt").write_text("hello from a git buildpack\n")
    heroku.git("init", "-q", "-b", "main", cwd=repo)
    heroku.git("add", "-A", cwd=repo)
    heroku.git("commit", "-q", "-m", "first", cwd=repo)
    heroku("apps:create", name, cwd=repo)
    heroku("buildpacks:set", url, "-a", name)
    assert url in heroku("buildpacks", "-a", name).stdout
    push = heroku.git("push", "heroku", "main", cwd=repo)
    assert f"Using buildpack: {url}" in push.stderr and "Greeter app detected" in push.stderr
    assert "-----> Greeter v1" in push.stderr and "Default types for buildpack -> web" in (
        push.stderr
    )
    wait_for(lambda: "v1" in router_get(platform, name).text, 30, what="the app serving")
    assert router_get(platform, name).text == "hello from a git buildpack\nv1\n"

    heroku("buildpacks:set", url + "#v2", "-a", name)
    heroku.git("commit", "-q", "--allow-empty", "-m", "again", cwd=repo)
    push = heroku.git("push", "heroku", "main", cwd=repo)
    assert "-----> Greeter v2" in push.stderr
    wait_for(lambda: "v2" in router_get(platform, name).text, 30, what="the v2 build serving")

    heroku("buildpacks:set", "file://" + str(tmp_path / "missing.git"), "-a", name)
    heroku.git("commit", "-q", "--allow-empty", "-m", "broken", cwd=repo)
    push = heroku.git("push", "heroku", "main", cwd=repo, check=False)
    assert push.returncode != 0 and "could not clone buildpack" in push.stderr
    heroku("apps:destroy", "-a", name, "--confirm", name)
