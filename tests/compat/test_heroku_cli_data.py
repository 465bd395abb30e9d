"""Heroku's CLI v11 on Spruce's data add-ons and release phase: pg:*, redis:*, releases:retry,
ps:restart web, and an app destroyed while its release phase, a build and a one-off run.

pg:psql, pg:outliers, pg:extensions, pg:ps, pg:locks and pg:kill run the machine's psql
with PGSSLMODE=require (the CLI's rule for any host but localhost); pg:info,
pg:credentials*, pg:backups* and redis:* call the data API, which the CLI reaches through
HEROKU_DATA_HOST (set by `spruce heroku-env`) with HEROKU_HOST's protocol and port. The
platform runs with --data-host, an HTTPS listener: pg:backups:download fetches the backup's
link with https only.
"""

from __future__ import annotations

import json
import re
import shutil
import ssl
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from compat_support import HerokuCLI
from conftest import TUNING
from support import REPO, RunningPlatform, free_port, start_platform, wait_for


@pytest.fixture(scope="module")
def platform() -> Iterator[RunningPlatform]:
    # Not under pytest's basetemp: any pytest session on the machine resets
    # /tmp/pytest-of-<user> to 0700, cutting the spruce-postgres user off mid-run.
    home = Path(tempfile.mkdtemp(prefix="spruce-compat-data-"))
    p = start_platform(
        home,
        extra_env={"SPRUCE_TUNING": json.dumps(TUNING)},
        extra_args=["--data-host", f"127.0.0.1:{free_port()}"],
    )
    yield p
    p.stop()
    shutil.rmtree(home, ignore_errors=True)


def _push_release_phase_app(heroku: HerokuCLI, repo: Path, name: str) -> None:
    shutil.copytree(REPO / "examples" / "apps" / "release-phase", repo)
    # SLOW_RELEASE=1 holds the release phase so a test can destroy the app mid-release
    release = repo / "release.sh"
    release.write_text(
        release.read_text().replace(
            'echo "release phase: done"',
            'if [ "${SLOW_RELEASE:-}" = "1" ]; then echo "release phase: holding"; sleep 297; fi\n'
            'echo "release phase: done"',
        )
    )
    heroku.git("init", "-q", "-b", "main", cwd=repo)
    heroku.git("add", "-A", cwd=repo)
    heroku.git("commit", "-q", "-m", "first", cwd=repo)
    heroku("apps:create", name, cwd=repo)
    push = heroku.git("push", "heroku", "main", cwd=repo)
    assert "Released v2" in push.stderr


@pytest.fixture(scope="module")
def app(heroku: HerokuCLI, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A deployed app (Procfile with a release: line) with a Postgres database."""
    name = f"hd-{uuid.uuid4().hex[:6]}"
    _push_release_phase_app(heroku, tmp_path_factory.mktemp("repo") / name, name)
    res = heroku("addons:create", "heroku-postgresql:essential-0", "-a", name)
    assert "DATABASE_URL" in res.stdout + res.stderr
    return name


def test_pg_psql_over_tls(heroku: HerokuCLI, app: str) -> None:
    res = heroku(
        "pg:psql",
        "-a",
        app,
        "-c",
        "SELECT 'tls=' || ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
    )
    assert "--> Connecting to postgresql-" in res.stderr
    assert "tls=true" in res.stdout
    heroku("pg:psql", "-a", app, "-c", "CREATE TABLE notes (body text)")
    heroku("pg:psql", "-a", app, "-c", "INSERT INTO notes VALUES ('over tls')")
    assert "over tls" in heroku("pg:psql", "-a", app, "-c", "SELECT body FROM notes").stdout


def test_pg_outliers(heroku: HerokuCLI, app: str) -> None:
    for _ in range(3):
        heroku("pg:psql", "-a", app, "-c", "SELECT count(*) FROM notes WHERE body <> 'x'")
    out = heroku("pg:outliers", "-a", app).stdout
    assert "total_exec_time" in out and "prop_exec_time" in out
    assert "SELECT count(*) FROM notes WHERE body <> $1" in out
    assert re.search(r"\|\s+3\s+\|.*FROM notes WHERE body", out), out
    heroku("pg:outliers", "-a", app, "--reset")
    assert "FROM notes WHERE body" not in heroku("pg:outliers", "-a", app).stdout


def test_pg_extensions(heroku: HerokuCLI, app: str) -> None:
    heroku("pg:psql", "-a", app, "-c", "CREATE EXTENSION IF NOT EXISTS hstore")
    heroku("pg:psql", "-a", app, "-c", "CREATE EXTENSION IF NOT EXISTS bloom")
    out = heroku("pg:extensions", "-a", app).stdout
    rows = {
        cells[0]: cells
        for line in out.splitlines()
        if len(cells := [c.strip() for c in line.split("|")]) >= 3
    }
    assert rows["hstore"][2] != "" and rows["bloom"][2] != ""  # installed_version
    assert rows["pg_stat_statements"][2] != ""  # Heroku enables it everywhere
    assert "pgcrypto" in rows and rows["pgcrypto"][2] == ""  # available, not installed
    assert "dblink" not in rows and "file_fdw" not in rows  # not offered on Essential


def test_pg_info_through_the_data_api(heroku: HerokuCLI, app: str) -> None:
    out = heroku("pg:info", "-a", app).stdout
    assert "=== DATABASE_URL" in out
    assert re.search(r"Plan:\s+Essential 0", out) and re.search(r"Status:\s+Available", out)
    assert re.search(r"Add-on:\s+postgresql-", out)


def test_redis_info_and_promote(heroku: HerokuCLI, app: str, platform: RunningPlatform) -> None:
    heroku("addons:create", "heroku-redis:mini", "-a", app)
    heroku("addons:create", "heroku-redis:mini", "-a", app)
    addons = json.loads(heroku("addons", "-a", app, "--json").stdout)
    first, second = sorted(
        (a for a in addons if a["addon_service"]["name"] == "heroku-redis"),
        key=lambda a: "REDIS_URL" not in a["config_vars"],
    )
    info = heroku("redis:info", "-a", app).stdout
    assert f"=== {first['name']}" in info and f"=== {second['name']}" in info
    assert re.search(r"Plan:\s+Mini", info)
    res = heroku("redis:maxmemory", second["name"], "-a", app, "--policy", "allkeys-lru")
    assert "set to allkeys-lru" in res.stdout
    res = heroku("redis:promote", second["name"], "-a", app)
    assert f"Promoting {second['name']} to REDIS_URL on {app}" in res.stdout
    api = platform.client()
    config = api.get(f"/apps/{app}/config-vars").json()
    atts = {a["name"]: a["addon"]["name"] for a in api.get(f"/apps/{app}/addon-attachments").json()}
    assert atts["REDIS"] == second["name"]
    # the add-on that was REDIS keeps an attachment (and its URL) under another name
    kept = [n for n, a in atts.items() if a == first["name"]]
    assert kept and config[f"{kept[0]}_URL"] != config["REDIS_URL"]
    creds = heroku("redis:credentials", second["name"], "-a", app).stdout.strip()
    assert creds == config["REDIS_URL"]
    # promoting what is already REDIS is not an error
    heroku("redis:promote", second["name"], "-a", app)


def test_release_in_formation_and_releases_retry(
    heroku: HerokuCLI, app: str, platform: RunningPlatform
) -> None:
    api = platform.client()
    formation = {f["type"]: f for f in api.get(f"/apps/{app}/formation").json()}
    assert formation["release"]["quantity"] == 0
    assert formation["release"]["command"] == "bash release.sh"
    assert "release=0" in heroku("ps:scale", "-a", app).stdout
    before = api.get(f"/apps/{app}/releases", headers={"Range": "version ..; order=desc"}).json()
    res = heroku("releases:retry", "-a", app)
    latest = before[0]["version"]
    assert f"Retrying v{latest}" in res.stderr and f"done, v{latest + 1}" in res.stderr
    assert "Running release command..." in res.stdout
    assert "release phase: done" in res.stdout
    rel = api.get(f"/apps/{app}/releases/{latest + 1}").json()
    assert rel["status"] == "succeeded" and rel["description"].startswith(f"Retry of v{latest}")
    # a dyno count for release is refused: it runs once per release
    bad = heroku("ps:scale", "release=1", "-a", app, check=False)
    assert bad.returncode != 0 and "release cannot be scaled" in bad.stderr


def test_ps_restart_web(heroku: HerokuCLI, app: str, platform: RunningPlatform) -> None:
    api = platform.client()

    def web_up() -> dict[str, str] | None:
        dynos = [d for d in api.get(f"/apps/{app}/dynos").json() if d["type"] == "web"]
        return dynos[0] if dynos and dynos[0]["state"] == "up" else None

    before = wait_for(web_up, 60, interval=0.5, what="web.1 up")
    res = heroku("ps:restart", "web", "-a", app)
    assert "Restarting dyno web on" in res.stderr and "done" in res.stderr
    after = wait_for(
        lambda: (d := web_up()) and d["updated_at"] != before["updated_at"] and d,
        60,
        interval=0.5,
        what="web.1 restarted",
    )
    assert after["name"] == "web.1"


def test_destroy_mid_release_phase_build_and_one_off(
    heroku: HerokuCLI, platform: RunningPlatform, tmp_path: Path
) -> None:
    name = f"hg-{uuid.uuid4().hex[:6]}"
    repo = tmp_path / name
    _push_release_phase_app(heroku, repo, name)
    api = platform.client()
    log_start = platform.log_path.stat().st_size
    heroku("config:set", "SLOW_RELEASE=1", "-a", name)  # a release phase that holds
    heroku("run:detached", "-a", name, "--", "sleep 299")
    (repo / "VERSION").write_text("2\n")
    heroku.git("commit", "-q", "-am", "second", cwd=repo)
    push = subprocess.Popen(
        ["git", "push", "heroku", "main"],
        cwd=repo,
        env=heroku.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:

        def busy() -> bool:
            dynos = api.get(f"/apps/{name}/dynos").json()
            releases = [d for d in dynos if d["type"] == "release"]
            builds = api.get(f"/apps/{name}/builds").json()
            running = [b for b in builds if b["status"] == "pending"]
            return len(releases) >= 2 and bool(running) and any(d["type"] == "run" for d in dynos)

        wait_for(busy, 240, interval=1, what="two release phases, a build and a one-off")
        heroku("apps:destroy", name, "--confirm", name)
        out, _ = push.communicate(timeout=60)
    finally:
        if push.poll() is None:
            push.kill()
    assert api.get(f"/apps/{name}").status_code == 404
    assert "holding" in out  # the build's own release phase had started
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert "sleep 297" not in ps and "sleep 299" not in ps
    logged = platform.log_path.read_text(errors="replace")[log_start:]
    for marker in (
        "Traceback",
        "Task exception was never retrieved",
        "Exception in callback",
        "Exception in ASGI application",
    ):
        assert marker not in logged, logged[-4000:]


def _trust(heroku: HerokuCLI) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=heroku.env["NODE_EXTRA_CA_CERTS"])


def _psql(heroku: HerokuCLI, app: str, sql: str) -> str:
    return heroku("pg:psql", "-a", app, "-c", sql).stdout


def test_pg_credentials(heroku: HerokuCLI, app: str, platform: RunningPlatform) -> None:
    out = heroku("pg:credentials", "-a", app).stdout
    assert re.search(r"default\s.*active|default[\s\S]*active", out), out
    url_out = heroku("pg:credentials:url", "-a", app).stdout
    api = platform.client()
    before = api.get(f"/apps/{app}/config-vars").json()["DATABASE_URL"]
    user_pass = before.split("//", 1)[1].split("@", 1)[0]
    assert "Connection info string:" in url_out and user_pass in url_out
    assert "sslmode=require" in url_out
    made = heroku("pg:credentials:create", "-a", app, "--name", "analyst", check=False)
    assert made.returncode != 0
    res = heroku("pg:credentials:rotate", "-a", app, "--confirm", app)
    assert res.returncode == 0
    after = api.get(f"/apps/{app}/config-vars").json()["DATABASE_URL"]
    assert after != before
    assert "tls=true" in _psql(
        heroku, app, "SELECT 'tls=' || ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
    )


def test_pg_backups(heroku: HerokuCLI, app: str, platform: RunningPlatform, tmp_path: Path) -> None:
    _psql(heroku, app, "CREATE TABLE IF NOT EXISTS kept (v text)")
    _psql(heroku, app, "INSERT INTO kept VALUES ('before backup')")
    assert "No backups. Capture one" in heroku("pg:backups", "-a", app).stdout
    res = heroku("pg:backups:capture", "-a", app, "--wait-interval", "1")
    assert "Backing up DATABASE to b001" in res.stderr and "done" in res.stderr
    listing = heroku("pg:backups", "-a", app).stdout
    assert re.search(r"b001\s.*Completed", listing), listing
    info = heroku("pg:backups:info", "b001", "-a", app).stdout
    assert "=== Backup b001" in info and re.search(r"Status:\s+Completed", info)
    url = heroku("pg:backups:url", "b001", "-a", app).stdout.strip()
    assert url.startswith("https://"), url
    dump = httpx.get(url, verify=_trust(heroku), timeout=30)
    assert dump.status_code == 200 and dump.content.startswith(b"PGDMP")
    assert httpx.get(url.replace("/backups/", "/backups/x"), verify=False).status_code == 404
    target = tmp_path / "latest.dump"
    heroku("pg:backups:download", "-a", app, "--output", str(target))
    assert target.read_bytes() == dump.content
    # a row added after the backup is gone once it is restored
    _psql(heroku, app, "INSERT INTO kept VALUES ('after backup')")
    res = heroku(
        "pg:backups:restore",
        "b001",
        "DATABASE_URL",
        "-a",
        app,
        "--confirm",
        app,
        "--wait-interval",
        "1",
    )
    assert "Restoring... done" in res.stderr, res.stderr
    rows = _psql(heroku, app, "SELECT v FROM kept ORDER BY v")
    assert "before backup" in rows and "after backup" not in rows
    listing = heroku("pg:backups", "-a", app).stdout
    assert re.search(r"r001\s.*Completed", listing), listing
    assert "No backup schedules found" in heroku("pg:backups:schedules", "-a", app).stderr
    sched = heroku("pg:backups:schedule", "DATABASE_URL", "--at", "02:00", "-a", app, check=False)
    assert sched.returncode != 0 and "scheduled backups" in sched.stderr
    heroku("pg:backups:delete", "b001", "-a", app, "--confirm", app)
    assert "No backups. Capture one" in heroku("pg:backups", "-a", app).stdout
    assert httpx.get(url, verify=_trust(heroku)).status_code == 404


def test_pg_ps_locks_kill(heroku: HerokuCLI, app: str) -> None:
    _psql(heroku, app, "CREATE TABLE IF NOT EXISTS held (v text)")
    sleeper = subprocess.Popen(
        [
            str(heroku.bin_dir / "heroku"),
            "pg:psql",
            "-a",
            app,
            "-c",
            "BEGIN; LOCK TABLE held IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(120)",
        ],
        env=heroku.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        ps = wait_for(
            lambda: (out := heroku("pg:ps", "-a", app).stdout) and "pg_sleep" in out and out,
            60,
            interval=1,
            what="the sleeping query in pg:ps",
        )
        pid = next(
            line.split("|")[0].strip()
            for line in ps.splitlines()
            if "pg_sleep" in line and line.split("|")[0].strip().isdigit()
        )
        locks = heroku("pg:locks", "-a", app).stdout
        # pg:locks lists the relations locked, with the query holding them
        assert re.search(rf"{pid}\s*\|.*\|\s*t\s*\|.*LOCK TABLE held", locks), locks
        killed = heroku("pg:kill", pid, "-a", app, "--force").stdout
        assert "pg_terminate_backend" in killed and "t" in killed
        out, _ = sleeper.communicate(timeout=60)
        assert sleeper.returncode != 0, out
    finally:
        if sleeper.poll() is None:
            sleeper.kill()
    assert "pg_sleep" not in heroku("pg:ps", "-a", app).stdout


def test_redis_cli(heroku: HerokuCLI, app: str, platform: RunningPlatform) -> None:
    def kvs() -> list[str]:
        addons = json.loads(heroku("addons", "-a", app, "--json").stdout)
        return [a["name"] for a in addons if a["addon_service"]["name"] == "heroku-redis"]

    if not kvs():
        heroku("addons:create", "heroku-redis:mini", "-a", app)
    name = kvs()[0]
    res = subprocess.run(
        [str(heroku.bin_dir / "heroku"), "redis:cli", name, "-a", app, "--confirm", app],
        env=heroku.env,
        input="SET compat-key from-the-cli\nGET compat-key\nQUIT\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "from-the-cli" in res.stdout, res.stdout + res.stderr
    creds = heroku("redis:credentials", name, "-a", app).stdout.strip()
    assert creds.startswith("redis")
    # the value is in the add-on's own server, seen through its URL (TLS; the add-on's
    # certificate is its own, as Heroku's are: not verified here, as Heroku advises)
    client = redis.Redis.from_url(creds, ssl_cert_reqs="none")
    assert client.get("compat-key") == b"from-the-cli"
