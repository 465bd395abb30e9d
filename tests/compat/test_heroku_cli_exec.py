"""Heroku Exec on Cedar with Heroku's CLI v11, unchanged: `ps:exec`, `ps:copy`,
`ps:forward` and `ps:socks` against a real dyno, through the platform's exec manager
(HEROKU_EXEC_URL, from `spruce heroku-env`) and its SSH gateway on port 80 of the
`--exec-host` address (a loopback address of its own; ports 80 and 443 need root)."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from compat_support import HerokuCLI
from support import REPO, RunningPlatform, start_platform, wait_for

SOCKS_PORT = 1080  # fixed in Heroku's CLI (ps:socks and ps:forward)


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
            return True
        except OSError:
            return False


def _free_exec_address() -> str | None:
    if os.geteuid() != 0:
        return None
    for _ in range(30):
        host = f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(2, 254)}"
        if _port_free(host, 80) and _port_free(host, 443):
            return host
    return None


EXEC_HOST = _free_exec_address()
SFTP = any(
    Path(p).exists() for p in ("/usr/lib/openssh/sftp-server", "/usr/libexec/openssh/sftp-server")
)
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        EXEC_HOST is None, reason="ports 80 and 443 of a loopback address need root"
    ),
    pytest.mark.skipif(shutil.which("bwrap") is None, reason="dyno sandboxes need bubblewrap"),
    pytest.mark.skipif(
        not SFTP, reason="ps:copy needs OpenSSH's sftp-server (openssh-sftp-server)"
    ),
]
TUNING = {"dynos": {"stop_grace": 3.0}, "router": {"boot_wait": 20.0}}
# The web dyno leaves proof of where it runs in its own /tmp (a mount of its sandbox only).
PROCFILE = 'web: echo "made-in-$DYNO-as-$(id -u)" > /tmp/exec-proof.txt && exec python3 web.py\n'


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    assert EXEC_HOST is not None
    p = start_platform(
        tmp_path_factory.mktemp("exec-home"),
        extra_env={"SPRUCE_TUNING": json.dumps(TUNING)},
        extra_args=["--exec-host", EXEC_HOST],
    )
    yield p
    p.stop()


def cli(
    heroku: HerokuCLI, *args: str, stdin: str = "", key: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = dict(heroku.env, HEROKU_API_KEY=key) if key else dict(heroku.env)
    if os.environ.get("SPRUCE_EXEC_DEBUG"):
        env["DEBUG"] = "cli:ps-exec:*,cli:ps:exec"
    try:
        return subprocess.run(
            [str(heroku.bin_dir / "heroku"), *args],
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=90,
            cwd=cwd,
        )
    except subprocess.TimeoutExpired as e:
        out, err = (
            x.decode(errors="replace") if isinstance(x, bytes) else x or ""
            for x in (e.stdout, e.stderr)
        )
        raise AssertionError(f"heroku {' '.join(args)} timed out:\n{out}\n{err}") from None


def said(res: subprocess.CompletedProcess[str]) -> str:
    return " ".join((res.stdout + res.stderr).split())


@pytest.fixture(scope="module")
def app(heroku: HerokuCLI, tmp_path_factory: pytest.TempPathFactory) -> str:
    name = f"hkx-{uuid.uuid4().hex[:6]}"
    repo = tmp_path_factory.mktemp("exec-repo") / name
    shutil.copytree(REPO / "examples" / "apps" / "release-phase", repo)
    (repo / "Procfile").write_text(PROCFILE)
    heroku.git("init", "-q", "-b", "main", cwd=repo)
    heroku.git("add", "-A", cwd=repo)
    heroku.git("commit", "-q", "-m", "first", cwd=repo)
    heroku("apps:create", name, cwd=repo)
    assert "Released v2" in heroku.git("push", "heroku", "main", cwd=repo).stderr
    wait_for(lambda: ": up " in heroku("ps", "-a", name).stdout or None, 60, what="web.1 up")
    return name


@pytest.fixture(scope="module")
def enabled(heroku: HerokuCLI, app: str) -> str:
    """The first ps:exec: asked to restart, answered y, the feature goes on, the dynos
    restart and the command runs in the new web.1."""
    before = _exec_manager(heroku, "PUT", "api/v2/web.1", app, heroku.env["HEROKU_API_KEY"])
    assert before.status_code == 422 and "not enabled" in before.json()["message"], before.text
    res = cli(heroku, "ps:exec", "-a", app, "cat /tmp/exec-proof.txt; echo dyno=$DYNO", stdin="y\n")
    out = said(res)
    assert "Running this command for the first time requires a dyno restart." in out, out
    assert "Restarting dynos" in out and "Waiting for web.1 to start" in out, out
    assert "dyno=web.1" in out, out
    info = heroku("features:info", "runtime-heroku-exec", "-a", app, "--json").stdout
    assert json.loads(info)["enabled"] is True
    return app


def _exec_manager(
    heroku: HerokuCLI, method: str, path: str, app: str | None, key: str | None
) -> httpx.Response:
    ctx = ssl.create_default_context(cafile=heroku.env["NODE_EXTRA_CA_CERTS"])
    return httpx.request(
        method,
        heroku.env["HEROKU_EXEC_URL"] + path,
        auth=(app, key) if app and key else None,
        json={"client_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDy2"}
        if method == "PUT"
        else None,
        verify=ctx,
    )


def test_exec_runs_the_command_inside_the_dyno(heroku: HerokuCLI, enabled: str) -> None:
    res = cli(heroku, "ps:exec", "-a", enabled, "cat /tmp/exec-proof.txt; echo $DYNO; id -u; pwd")
    assert res.returncode == 0, said(res)
    lines = [ln.strip() for ln in res.stdout.replace("\r", "\n").splitlines() if ln.strip()]
    proof = next((ln for ln in lines if ln.startswith("made-in-")), None)
    assert proof is not None, res.stdout + res.stderr
    uid = proof.rsplit("-as-", 1)[1]
    # The dyno's own /tmp, its DYNO, its uid (not root) and its /app.
    assert proof == f"made-in-web.1-as-{uid}" and uid != "0"
    assert lines[lines.index(proof) + 1 :][:3] == ["web.1", uid, "/app"], lines
    assert f"Connecting to web.1 on {enabled}" in res.stderr


def test_exec_status_lists_the_running_dyno(heroku: HerokuCLI, enabled: str) -> None:
    out = heroku("ps:exec", "--status", "-a", enabled).stdout
    row = next(ln for ln in out.splitlines() if "web.1" in ln)
    assert row.split() == ["web.1", "up", "running"], out


def test_copy_fetches_a_file_written_in_the_dyno(
    heroku: HerokuCLI, enabled: str, tmp_path: Path
) -> None:
    res = cli(
        heroku, "ps:copy", "/tmp/exec-proof.txt", "-a", enabled, "-o", "got.txt", cwd=tmp_path
    )
    assert res.returncode == 0, said(res)
    assert re.fullmatch(r"made-in-web\.1-as-\d+\n", (tmp_path / "got.txt").read_text())
    # a relative path is the dyno's home (/app)
    res = cli(heroku, "ps:copy", "VERSION", "-a", enabled, cwd=tmp_path)
    assert res.returncode == 0, said(res)
    assert (tmp_path / "VERSION").read_text() == (
        REPO / "examples" / "apps" / "release-phase" / "VERSION"
    ).read_text()


def _dyno_port(heroku: HerokuCLI, app: str) -> int:
    res = cli(heroku, "ps:exec", "-a", app, "echo port=$PORT")
    m = re.search(r"port=(\d+)", res.stdout)
    assert m, said(res)
    return int(m.group(1))


def _background(heroku: HerokuCLI, *args: str, ready: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [str(heroku.bin_dir / "heroku"), *args],
        env=heroku.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    seen = ""
    deadline = time.monotonic() + 60
    while ready not in seen:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"heroku {' '.join(args)} did not get ready:\n{seen}")
        seen += line
    return proc


def _end(proc: subprocess.Popen[str]) -> None:
    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


needs_socks_port = pytest.mark.skipif(
    not _port_free("127.0.0.1", SOCKS_PORT), reason="Heroku's CLI needs 127.0.0.1:1080 free"
)


@needs_socks_port
def test_forward_reaches_a_port_the_dyno_listens_on(heroku: HerokuCLI, enabled: str) -> None:
    port = _dyno_port(heroku, enabled)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        local = s.getsockname()[1]
    proc = _background(
        heroku, "ps:forward", f"{local}:{port}", "-a", enabled, ready="Use CTRL+C to stop"
    )
    try:
        r = wait_for(
            lambda: _get(f"http://127.0.0.1:{local}/"), 20, what="the forwarded port answers"
        )
        assert r == "release-phase app version 1"
    finally:
        _end(proc)


def _get(url: str) -> str | None:
    try:
        return httpx.get(url, timeout=5).text.strip()
    except httpx.HTTPError:
        return None


def _socks_get(dest: str, port: int) -> bytes:
    """GET / through the SOCKS5 proxy on 127.0.0.1:1080 (no auth, a domain name)."""
    with socket.create_connection(("127.0.0.1", SOCKS_PORT), timeout=10) as s:
        s.sendall(b"\x05\x01\x00")
        assert s.recv(2) == b"\x05\x00"
        name = dest.encode()
        s.sendall(b"\x05\x01\x00\x03" + bytes([len(name)]) + name + port.to_bytes(2, "big"))
        reply = s.recv(10)
        assert reply[:2] == b"\x05\x00", reply
        s.sendall(b"GET / HTTP/1.0\r\nHost: dyno\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
        return data


@needs_socks_port
def test_socks_proxies_a_connection_into_the_dyno(heroku: HerokuCLI, enabled: str) -> None:
    port = _dyno_port(heroku, enabled)
    proc = _background(heroku, "ps:socks", "-a", enabled, ready="SOCKSv5 proxy server started")
    try:
        body = _socks_get("localhost", port)
        assert body.startswith(b"HTTP/1.0 200") and b"release-phase app version 1" in body
    finally:
        _end(proc)


def test_another_user_is_refused(
    heroku: HerokuCLI, enabled: str, platform: RunningPlatform
) -> None:
    email = f"stranger-{uuid.uuid4().hex[:6]}@example.com"
    made = platform.cli("users:create", email, "--home", str(platform.home), check=True)
    m = re.search(r"API key: (\S+)", made.stdout)
    assert m
    key = m.group(1)
    res = cli(heroku, "ps:exec", "-a", enabled, "id", key=key)
    assert res.returncode != 0 and "made-in" not in res.stdout
    assert "You do not have access to the app" in said(res), said(res)
    # The exec manager itself answers Heroku's error shape to that user, and 401 without a key.
    r = _exec_manager(heroku, "PUT", "api/v2/web.1", enabled, key)
    assert r.status_code == 403 and set(r.json()) == {"id", "message"}, r.text
    r = _exec_manager(heroku, "GET", "api/v2", None, None)
    assert r.status_code == 401, r.text


def test_exec_without_a_command_is_a_shell_in_the_dyno(heroku: HerokuCLI, enabled: str) -> None:
    res = cli(heroku, "ps:exec", "-a", enabled, stdin="echo shell-in-$DYNO-at-$(pwd)\ntty\nexit\n")
    assert "shell-in-web.1-at-/app" in res.stdout, said(res)
    # a terminal of the sandbox's own /dev/pts, so programs inside can name it
    assert re.search(r"^/dev/pts/\d+\r?$", res.stdout, re.M), res.stdout


def test_spruce_ps_exec_runs_in_the_dyno_with_its_exit_status(
    platform: RunningPlatform, enabled: str
) -> None:
    res = platform.cli(
        "ps:exec", "-a", enabled, "--", "echo in-$DYNO-as-$(id -u); exit 5", input=""
    )
    assert re.search(r"^in-web\.1-as-[1-9]\d*$", res.stdout, re.M), res.stdout + res.stderr
    assert res.returncode == 5
    status = platform.cli("ps:exec", "--status", "-a", enabled, input="", check=True).stdout
    assert "web.1  running" in status


def test_fir_apps_stay_refused(heroku: HerokuCLI, platform: RunningPlatform) -> None:
    name = f"hkxf-{uuid.uuid4().hex[:6]}"
    r = platform.client().post("/apps", json={"name": name, "generation": "fir"})
    assert r.status_code == 201, r.text
    res = cli(heroku, "ps:exec", "-a", name, "id")
    assert res.returncode != 0 and "run:inside" in said(res), said(res)
    r = _exec_manager(heroku, "PUT", "api/v2/web.1", name, heroku.env["HEROKU_API_KEY"])
    assert r.status_code == 422 and "run:inside" in r.json()["message"], r.text
