"""The spruce CLI against a running platform: Heroku CLI verbs, output, exit codes."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from support import RunningPlatform


@pytest.fixture(scope="module")
def p(api_platform: RunningPlatform) -> RunningPlatform:
    return api_platform


def test_apps_create_info_rename_destroy(p: RunningPlatform, tmp_path: Path) -> None:
    name = "cli-" + uuid.uuid4().hex[:8]
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    res = p.cli("apps:create", name, cwd=str(tmp_path), check=True)
    assert f"Creating ⬢ {name}... done" in res.stdout
    assert "Git remote spruce added" in res.stdout
    # The app is inferred from the `spruce` git remote.
    info = p.cli("apps:info", cwd=str(tmp_path), check=True).stdout
    assert f"=== {name}" in info and "Web URL:" in info and "Owner:" in info
    data = json.loads(p.cli("apps:info", "--json", "-a", name, check=True).stdout)
    assert data["app"]["name"] == name
    listing = p.cli("apps", check=True).stdout
    assert name in listing.splitlines()
    assert name in [a["name"] for a in json.loads(p.cli("apps", "--json", check=True).stdout)]
    new = name + "-2"
    assert p.cli("apps:rename", new, "-a", name, check=True).returncode == 0
    res = p.cli("apps:destroy", "-a", new)
    assert res.returncode != 0 and "--confirm" in res.stderr
    res = p.cli("apps:destroy", "-a", new, "--confirm", "wrong")
    assert res.returncode != 0
    assert p.cli("apps:destroy", "-a", new, "--confirm", new, check=True).returncode == 0
    res = p.cli("apps:info", "-a", new)
    assert res.returncode == 1 and "Couldn't find that app." in res.stderr


def test_config_and_releases(p: RunningPlatform) -> None:
    name = "clc-" + uuid.uuid4().hex[:8]
    p.cli("apps:create", name, "--no-remote", check=True)
    res = p.cli("config:set", "FOO=bar", "URL=http://x/?a=b", "-a", name, check=True)
    assert "done, v2" in res.stdout
    assert p.cli("config:get", "FOO", "-a", name, check=True).stdout.strip() == "bar"
    assert json.loads(p.cli("config", "--json", "-a", name, check=True).stdout) == {
        "FOO": "bar",
        "URL": "http://x/?a=b",
    }
    assert (
        "FOO='bar'" not in p.cli("config", "-s", "-a", name, check=True).stdout
    )  # shlex quotes only when needed
    assert "FOO=bar" in p.cli("config", "-s", "-a", name, check=True).stdout
    res = p.cli("config:set", "NOEQUALS", "-a", name)
    assert res.returncode == 1 and "FOO=bar" in res.stderr
    assert "done, v3" in p.cli("config:unset", "FOO", "-a", name, check=True).stdout
    rel = p.cli("releases", "-a", name, check=True).stdout
    assert "v3  Remove FOO config vars" in rel and "v1  Initial release" in rel
    info = p.cli("releases:info", "v2", "-a", name, check=True).stdout
    assert "Set FOO, URL config vars" in info and "FOO:" in info
    assert "done, v4" in p.cli("rollback", "v2", "-a", name, check=True).stdout
    assert p.cli("config:get", "FOO", "-a", name, check=True).stdout.strip() == "bar"
    assert "done, v5" in p.cli("releases:rollback", "-a", name, check=True).stdout
    p.cli("apps:destroy", "-a", name, "--confirm", name, check=True)


def test_scale_features_maintenance_access(p: RunningPlatform) -> None:
    name = "cls-" + uuid.uuid4().hex[:8]
    p.cli("apps:create", name, "--no-remote", check=True)
    api = p.client()
    slug = api.post(
        f"/apps/{name}/slugs", json={"process_types": {"web": "sleep 100", "worker": "sleep 100"}}
    ).json()
    api.post(f"/apps/{name}/releases", json={"slug": slug["id"]})
    res = p.cli("ps:scale", "worker=1:standard-2x", "web=0", "-a", name, check=True)
    assert "now running" in res.stdout and "worker=1:Standard-2X" in res.stdout
    assert "worker=2" in p.cli("ps:scale", "worker+1", "-a", name, check=True).stdout
    res = p.cli("ps:scale", "clock=1", "-a", name)
    assert res.returncode == 1 and "process type" in res.stderr
    assert "web=0:Basic worker=2:Standard-2X" in p.cli("ps:scale", "-a", name, check=True).stdout

    assert "[ ] preboot" in p.cli("features", "-a", name, check=True).stdout
    p.cli("features:enable", "preboot", "-a", name, check=True)
    assert "[+] preboot" in p.cli("features", "-a", name, check=True).stdout
    assert p.cli("features:enable", "preboot", "-a", name).returncode == 1
    p.cli("features:disable", "preboot", "-a", name, check=True)

    assert p.cli("maintenance", "-a", name, check=True).stdout.strip() == "off"
    p.cli("maintenance:on", "-a", name, check=True)
    assert p.cli("maintenance", "-a", name, check=True).stdout.strip() == "on"
    p.cli("maintenance:off", "-a", name, check=True)

    email = f"friend-{uuid.uuid4().hex[:6]}@example.com"
    p.cli("users:create", email, "--home", str(p.home), check=True)
    p.cli("access:add", email, "-a", name, check=True)
    out = p.cli("access", "-a", name, check=True).stdout
    assert email in out and "collaborator" in out and "owner" in out
    p.cli("access:remove", email, "-a", name, check=True)
    assert email not in p.cli("access", "-a", name, check=True).stdout
    p.cli("apps:destroy", name, "--confirm", name, check=True)


def test_no_app_and_not_logged_in(p: RunningPlatform, tmp_path: Path) -> None:
    res = p.cli("config", cwd=str(tmp_path))
    assert res.returncode == 1 and "No app specified" in res.stderr
    res = p.cli("apps", key="HRKU-wrong")
    assert res.returncode == 1 and "Invalid credentials" in res.stderr


def test_repl_runs_several_commands_in_one_process(p: RunningPlatform) -> None:
    name = "rpl-" + uuid.uuid4().hex[:8]
    script = f"apps:create {name} --no-remote\nconfig:set A=1 -a {name}\nconfig:get A -a {name}\nconfig:get A -a no-such-app-zz\napps:destroy {name} --confirm {name}\nexit\n"
    res = p.cli("repl", input=script)
    assert res.returncode == 0
    assert f"Creating ⬢ {name}... done" in res.stdout
    assert "\n1\n" in res.stdout
    assert "Couldn't find that app." in res.stderr
    assert f"Destroying ⬢ {name}" in res.stdout


def test_fir_apps_follow_heroku_cli_v10_rules(p: RunningPlatform) -> None:
    name = "fir-" + uuid.uuid4().hex[:8]
    assert (
        p.client()
        .post("/apps", json={"name": name, "generation": "fir"})
        .json()["generation"]["name"]
        == "fir"
    )
    res = p.cli("ps:restart", "web", "-a", name)
    assert res.returncode == 1 and "--process-type or --dyno-name" in res.stderr
    res = p.cli("ps:stop", "--dyno", "web.1", "-a", name)
    assert res.returncode == 1 and "--process-type or --dyno-name" in res.stderr
    # CLI 11 runs `run` on Fir (with the launcher); before a deploy there is nothing to run.
    res = p.cli("run", "-a", name, "--", "echo hi")
    assert res.returncode == 1 and "no release with code yet" in res.stderr
    # Fir logs always stream: the command keeps running after "Fetching logs...".
    import sys

    env = dict(p.env, SPRUCE_API_URL=p.api_url, SPRUCE_API_KEY=p.api_key)
    tail = subprocess.Popen(
        [sys.executable, "-m", "spruce.cli.main", "logs", "-a", name, "--num", "1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert tail.stderr is not None
        assert "Fetching logs..." in tail.stderr.readline()
        time.sleep(1)
        assert tail.poll() is None
    finally:
        tail.kill()
        tail.wait(10)
    p.cli("apps:destroy", name, "--confirm", name, check=True)


def test_per_app_settings_limit_scaling(p: RunningPlatform) -> None:
    name = "set-" + uuid.uuid4().hex[:8]
    p.cli("apps:create", name, "--no-remote", check=True)
    api = p.client()
    slug = api.post(f"/apps/{name}/slugs", json={"process_types": {"web": "sleep 100"}}).json()
    api.post(f"/apps/{name}/releases", json={"slug": slug["id"]})
    api.patch(f"/apps/{name}/formation", json={"updates": [{"type": "web", "quantity": 0}]})
    out = p.cli(
        "apps:settings", "formation_limit=3", "boot_timeout=120", "-a", name, check=True
    ).stdout
    assert "formation_limit: 3" in out and "boot_timeout:    120" in out
    res = p.cli("ps:scale", "web=4:standard-1x", "-a", name)
    assert res.returncode == 1 and "limited to 3" in res.stderr
    assert p.cli("ps:scale", "web=0:standard-1x", "-a", name).returncode == 0
    res = p.cli("apps:settings", "boot_timeout=0", "-a", name)
    assert res.returncode == 1 and "from 1 to 3600" in res.stderr
    res = p.cli("apps:settings", "colour=3", "-a", name)
    assert res.returncode == 1 and "Unknown setting" in res.stderr
    p.cli("apps:destroy", name, "--confirm", name, check=True)
