"""Dynos, logs, routing features and restarts, driven through the CLI and the API."""

from __future__ import annotations

import datetime as dt
import json
import re
import signal
import subprocess
import sys
import time
import uuid

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from e2e_support import WEB, Deployer
from support import RunningPlatform, start_platform, wait_for


def deployed(
    platform: RunningPlatform,
    deploy: Deployer,
    text: str,
    procfile: str = "web: python3 web.py\n",
    extra: dict[str, str] | None = None,
) -> str:
    app = f"rt-{uuid.uuid4().hex[:6]}"
    platform.client().post("/apps", json={"name": app})
    repo = deploy.repo(
        app, files={"Procfile": procfile, "web.py": WEB.format(text=text), **(extra or {})}
    )
    res = deploy.push(repo, app)
    assert res.returncode == 0, res.stderr
    if procfile.startswith("web"):
        deploy.wait_serving(app, text)
    return app


def test_run_attached_returns_output_and_exit_status(
    platform: RunningPlatform, deploy: Deployer
) -> None:
    app = deployed(platform, deploy, "run")
    res = platform.cli("run", "-a", app, "--no-tty", "--", "echo hello-$DYNO; exit 7")
    assert res.returncode == 7, res.stderr
    assert "hello-run." in res.stdout
    res = platform.cli("run", "-a", app, "--no-tty", "--", "echo ok")
    assert res.returncode == 0 and "ok" in res.stdout
    res = platform.cli("run:detached", "-a", app, "echo detached-output")
    assert "done, run." in res.stdout
    name = res.stdout.split("done, ")[1].split()[0]
    wait_for(
        lambda: any("detached-output" in ln and name in ln for ln in deploy.logs(app, lines=100)),
        15,
        what="detached output",
    )
    res = platform.cli("run", "-a", app, "--no-tty", "--", "")
    assert res.returncode != 0


def test_ps_scale_restart_stop(platform: RunningPlatform, deploy: Deployer) -> None:
    app = deployed(platform, deploy, "ps")
    api = platform.client()
    platform.cli("ps:scale", "web=2:standard-1x", "-a", app, check=True)
    wait_for(
        lambda: len([d for d in api.get(f"/apps/{app}/dynos").json() if d["state"] == "up"]) == 2,
        30,
        what="2 web dynos",
    )
    for _ in range(40):
        r = deploy.get(app)
        assert r.status_code == 200
    seen = {
        ln.split("dyno=")[1].split()[0]
        for ln in deploy.logs(app, lines=200, dyno="router")
        if "dyno=web" in ln
    }
    assert seen == {"web.1", "web.2"}  # random choice per request reaches both
    out = platform.cli("ps", "-a", app, check=True).stdout
    assert "web.1: up" in out and "web.2: up" in out
    before = {d["name"]: d["updated_at"] for d in api.get(f"/apps/{app}/dynos").json()}
    res = platform.cli("ps:restart", "--dyno-name", "web.2", "-a", app, check=True)
    assert "Restarting dyno web.2" in res.stdout
    res = platform.cli("ps:restart", "web", "-a", app, check=True)  # deprecated positional form
    assert "deprecated" in res.stderr
    res = platform.cli("ps:stop", "--process-type", "web", "-a", app, check=True)
    assert "Stopping web dynos" in res.stdout
    wait_for(
        lambda: any(
            "Stopping all processes with SIGTERM" in ln for ln in deploy.logs(app, lines=300)
        ),
        15,
        what="SIGTERM line",
    )
    res = platform.cli("ps:scale", "web=1:basic", "-a", app, check=True)
    wait_for(
        lambda: [d["name"] for d in api.get(f"/apps/{app}/dynos").json()] == ["web.1"],
        30,
        what="scaled down",
    )
    assert before


def test_logs_cli_and_tail(platform: RunningPlatform, deploy: Deployer) -> None:
    app = deployed(platform, deploy, "logs")
    deploy.get(app, "/seen-path")

    def logs_with_path() -> str | None:
        out = platform.cli("logs", "-a", app, "-n", "50").stdout
        return out if "/seen-path" in out else None

    out = wait_for(logs_with_path, 15, what="router line in logs")
    assert 'heroku[router]: at=info method=GET path="/seen-path"' in out
    assert "app[api]: Release v2 created by user admin@spruce.local" in out
    src = platform.cli(
        "logs", "-a", app, "-s", "heroku", "--dyno-name", "router", check=True
    ).stdout
    assert src and all("heroku[router]" in ln for ln in src.splitlines())
    env = dict(platform.env, SPRUCE_API_URL=platform.api_url, SPRUCE_API_KEY=platform.api_key)
    tail = subprocess.Popen(
        [sys.executable, "-m", "spruce.cli.main", "logs", "--tail", "-n", "0", "-a", app],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        # The tail starts when its session exists, which takes a moment on a loaded machine:
        # send a fresh marker each second until one comes through, then time the next one.
        import queue
        import threading

        lines: queue.Queue[str] = queue.Queue()
        assert tail.stdout is not None
        threading.Thread(target=lambda: [lines.put(x) for x in tail.stdout], daemon=True).start()

        def through(marker: str, wait: float) -> bool:
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                try:
                    if marker in lines.get(timeout=0.2):
                        return True
                except queue.Empty:
                    pass
            return False

        deadline = time.monotonic() + 30
        while True:
            warmup = f"/warm-{uuid.uuid4().hex[:6]}"
            deploy.get(app, warmup)
            if through(warmup, 1.0):
                break
            assert time.monotonic() < deadline, "the tail never started"
        marker = f"/tail-{uuid.uuid4().hex[:6]}"
        sent = time.monotonic()
        deploy.get(app, marker)
        assert through(marker, 10)
        assert time.monotonic() - sent < 5
    finally:
        tail.terminate()
        tail.wait(10)


def test_drains_receive_lines(platform: RunningPlatform, deploy: Deployer) -> None:
    import socket
    import threading

    app = deployed(platform, deploy, "drain")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    got: list[bytes] = []

    def accept() -> None:
        conn, _ = listener.accept()
        conn.settimeout(20)
        try:
            while b"drained-path" not in b"".join(got):
                data = conn.recv(65536)
                if not data:
                    break
                got.append(data)
        except OSError:
            pass
        conn.close()

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    res = platform.cli("drains:add", f"syslog://127.0.0.1:{port}", "-a", app, check=True)
    assert "Successfully added drain" in res.stdout
    drains = json.loads(platform.cli("drains", "--json", "-a", app, check=True).stdout)
    assert drains[0]["token"].startswith("d.")
    time.sleep(0.5)
    deploy.get(app, "/drained-path")
    t.join(20)
    data = b"".join(got)
    assert b"drained-path" in data
    assert re.match(rb"^\d+ <\d+>1 ", data)  # octet-counted RFC 5424 frames
    assert b"<134>1 " in data and b" heroku router - " in data
    assert drains[0]["token"].encode() in data
    res = platform.cli("drains:add", "ftp://example.com/x", "-a", app)
    assert res.returncode == 1
    platform.cli("drains:remove", f"syslog://127.0.0.1:{port}", "-a", app, check=True)
    listener.close()


def test_maintenance_and_custom_domains(platform: RunningPlatform, deploy: Deployer) -> None:
    app = deployed(platform, deploy, "dom")
    router = platform.endpoints["router_http_url"]
    platform.cli("domains:add", "www.example.test", "-a", app, check=True)
    platform.cli("domains:add", "*.wild.example", "-a", app, check=True)
    assert wait_for(
        lambda: httpx.get(router, headers={"Host": "www.example.test"}).text == "dom",
        10,
        what="custom domain",
    )
    assert httpx.get(router, headers={"Host": "any.wild.example"}).text == "dom"
    out = platform.cli("domains", "-a", app, check=True).stdout
    assert "www.example.test" in out and f"{app}.localhost" in out
    other = f"rt-{uuid.uuid4().hex[:6]}"
    platform.client().post("/apps", json={"name": other})
    r = platform.client().post(f"/apps/{other}/domains", json={"hostname": "www.example.test"})
    assert r.status_code == 422
    platform.cli("maintenance:on", "-a", app, check=True)

    def maintenance_page() -> httpx.Response | None:
        r = deploy.get(app)
        return r if r.status_code == 503 else None

    r = wait_for(maintenance_page, 10, what="maintenance page")
    assert "maintenance" in r.text.lower()
    wait_for(lambda: any("code=H80" in ln for ln in deploy.logs(app, lines=50)), 10, what="H80")
    platform.cli("maintenance:off", "-a", app, check=True)
    wait_for(lambda: deploy.get(app).status_code == 200, 10, what="back from maintenance")
    platform.cli("domains:remove", "www.example.test", "-a", app, check=True)
    wait_for(
        lambda: httpx.get(router, headers={"Host": "www.example.test"}).status_code == 404,
        10,
        what="domain removed",
    )


def _self_signed(host: str) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return (
        cert.public_bytes(serialization.Encoding.PEM).decode(),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
    )


def test_sni_endpoint_serves_uploaded_certificate(
    platform: RunningPlatform, deploy: Deployer, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    import socket
    import ssl

    app = deployed(platform, deploy, "tls")
    cert, key = _self_signed("secure.example.test")
    (tmp_path / "c.pem").write_text(cert)
    (tmp_path / "k.pem").write_text(key)
    res = platform.cli(
        "certs:add", str(tmp_path / "c.pem"), str(tmp_path / "k.pem"), "-a", app, check=True
    )
    assert "secure.example.test" in res.stdout
    platform.cli("domains:add", "secure.example.test", "-a", app, check=True)
    port = int(platform.endpoints["router_https_url"].rsplit(":", 1)[1])
    ctx = ssl.create_default_context(cadata=cert)

    def fetch() -> str | None:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="secure.example.test") as s:
                s.sendall(
                    b"GET / HTTP/1.1\r\nHost: secure.example.test\r\nConnection: close\r\n\r\n"
                )
                data = b""
                while chunk := s.recv(65536):
                    data += chunk
        return data.decode() if data.endswith(b"tls") else None

    assert wait_for(fetch, 10, what="TLS with the uploaded certificate")
    listing = json.loads(platform.cli("certs", "--json", "-a", app, check=True).stdout)
    assert listing[0]["ssl_cert"]["cert_domains"] == ["secure.example.test"]
    assert "private_key" not in listing[0]
    bad = platform.client().post(
        f"/apps/{app}/sni-endpoints",
        json={"certificate_chain": cert, "private_key": _self_signed("x.test")[1]},
    )
    assert bad.status_code == 422 and "does not match" in bad.json()["message"]


def test_platform_restart_brings_dynos_back(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from e2e_support import TUNING

    p = start_platform(tmp_path / "home", extra_env={"SPRUCE_TUNING": json.dumps(TUNING)})
    try:
        d = Deployer(p, tmp_path)
        p.client().post("/apps", json={"name": "survivor"})
        assert (
            d.push(
                d.repo(
                    "survivor",
                    files={"Procfile": "web: python3 web.py\n", "web.py": WEB.format(text="alive")},
                ),
                "survivor",
            ).returncode
            == 0
        )
        d.wait_serving("survivor", "alive")
        pid_before = [x["name"] for x in p.client().get("/apps/survivor/dynos").json()]
        assert p.stop(signal.SIGTERM) == 0
        assert pid_before == ["web.1"]
        p2 = start_platform(tmp_path / "home", extra_env={"SPRUCE_TUNING": json.dumps(TUNING)})
        try:
            d2 = Deployer(p2, tmp_path)
            d2.wait_serving("survivor", "alive")
            # kill -9 of the platform: the next start must not find the port taken forever.
            p2.stop(signal.SIGKILL)
            p3 = start_platform(tmp_path / "home", extra_env={"SPRUCE_TUNING": json.dumps(TUNING)})
            try:
                Deployer(p3, tmp_path).wait_serving("survivor", "alive")
            finally:
                p3.stop()
        finally:
            p2.stop()
    finally:
        p.stop()


def test_renamed_app_gets_a_certificate_for_its_new_name(
    platform: RunningPlatform, deploy: Deployer
) -> None:
    import socket
    import ssl

    app = deployed(platform, deploy, "renamed")
    new = app + "-n"
    platform.cli("apps:rename", new, "-a", app, check=True)
    port = int(platform.endpoints["router_https_url"].rsplit(":", 1)[1])
    ctx = ssl.create_default_context(cafile=str(platform.home / "ca" / "ca.pem"))

    def fetch() -> bool:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname=f"{new}.localhost") as s:
                s.sendall(
                    f"GET / HTTP/1.1\r\nHost: {new}.localhost\r\nConnection: close\r\n\r\n".encode()
                )
                data = b""
                while chunk := s.recv(65536):
                    data += chunk
        return data.endswith(b"renamed")

    assert wait_for(fetch, 10, what="TLS for the new name")
