"""`spruce up`: endpoints file, one platform per home, clean stops, nothing lost on restart."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from support import platform_env, start_platform


def test_up_stop_restart_keeps_state(tmp_path: Path) -> None:
    home = tmp_path / "home"
    p = start_platform(home)
    ep = p.endpoints
    assert set(ep) >= {
        "api_url",
        "router_http_url",
        "router_https_url",
        "git_url",
        "api_key",
        "app_domain",
    }
    assert ep["app_domain"] == "localhost"
    assert (home / "endpoints.json").stat().st_mode & 0o077 == 0  # it holds the API key
    api = p.client()
    api.post("/apps", json={"name": "keepme"})
    api.patch("/apps/keepme/config-vars", json={"DATABASE": "yes"})
    pipeline = api.post("/pipelines", json={"name": "keepers"}).json()
    api.post(
        "/pipeline-couplings",
        json={"app": "keepme", "pipeline": pipeline["id"], "stage": "staging"},
    )
    api.post(f"/pipelines/{pipeline['id']}/review-app-config", json={"destroy_stale_apps": True})

    # A second platform on the same home refuses with a clear message.
    second = subprocess.run(
        [sys.executable, "-m", "spruce.cli.main", "up", "--home", str(home), "--api-port", "0"],
        env=platform_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode == 1
    assert "already running" in second.stderr

    assert p.stop(signal.SIGTERM) == 0
    assert "Spruce is up in " in p.log()

    again = start_platform(home)
    # Same operator key across restarts, and every app, release and config var is back.
    assert again.api_key == ep["api_key"]
    api2 = again.client()
    assert api2.get("/apps/keepme/config-vars").json() == {"DATABASE": "yes"}
    assert [r["version"] for r in api2.get("/apps/keepme/releases").json()] == [1, 2]
    coupling = api2.get("/apps/keepme/pipeline-couplings").json()
    assert coupling["pipeline"] == {"id": pipeline["id"], "name": "keepers"}
    assert coupling["stage"] == "staging"
    config = api2.get(f"/pipelines/{pipeline['id']}/review-app-config").json()
    assert config["destroy_stale_apps"] is True and config["repo"]["name"] == "keepme"
    assert again.stop(signal.SIGINT) == 0


def test_up_reports_a_busy_port(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        busy = s.getsockname()[1]
        res = subprocess.run(
            [
                sys.executable,
                "-m",
                "spruce.cli.main",
                "up",
                "--home",
                str(tmp_path / "h"),
                "--api-port",
                str(busy),
            ],
            env=platform_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert res.returncode == 1
    assert f"cannot listen on 127.0.0.1:{busy}" in res.stderr
    # The failed start released the home: a later start works.
    p = start_platform(tmp_path / "h")
    assert json.loads((tmp_path / "h" / "endpoints.json").read_text())["api_url"] == p.api_url
    p.stop()
