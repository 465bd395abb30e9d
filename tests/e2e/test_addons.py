"""Add-ons on a running platform: an app writes through REDIS_URL and DATABASE_URL, the
platform restarts, the data is still there; attach to two apps; rotate; back up and restore."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import psycopg
import redis
from e2e_support import TUNING, WEB, Deployer
from support import RunningPlatform, start_platform, wait_for


def run_logs(p: RunningPlatform, d: Deployer, app: str, command: str) -> str:
    """Run a detached one-off and return its output lines once it exits."""
    dyno = p.client().post(f"/apps/{app}/dynos", json={"command": command}).json()["name"]

    def done() -> str | None:
        lines = d.logs(app, lines=500, dyno=dyno)
        if any("Process exited" in ln for ln in lines):
            return "\n".join(ln for ln in lines if f"app[{dyno}]" in ln)
        return None

    return wait_for(done, 30, what=f"{command!r} to finish")  # type: ignore[no-any-return]


def test_addons_survive_restart_attach_rotate_backup(tmp_path: Path) -> None:
    env = {"SPRUCE_TUNING": json.dumps(TUNING)}
    p = start_platform(tmp_path / "home", extra_env=env)
    try:
        d = Deployer(p, tmp_path)
        api = p.client()
        app, other = f"ad-{uuid.uuid4().hex[:6]}", f"ad2-{uuid.uuid4().hex[:6]}"
        api.post("/apps", json={"name": app})
        api.post("/apps", json={"name": other})
        assert (
            d.push(
                d.repo(
                    app,
                    files={"Procfile": "web: python3 web.py\n", "web.py": WEB.format(text="db")},
                ),
                app,
            ).returncode
            == 0
        )

        res = p.cli("addons:create", "heroku-redis:mini", "-a", app, check=True)
        assert "REDIS_URL" in res.stdout
        res = p.cli("addons:create", "heroku-postgresql:essential-0", "-a", app, check=True)
        assert "DATABASE_URL" in res.stdout
        config = api.get(f"/apps/{app}/config-vars").json()
        assert config["REDIS_URL"].startswith("rediss://") and config["DATABASE_URL"].startswith(
            "postgres://"
        )
        descs = [r["description"] for r in api.get(f"/apps/{app}/releases").json()]
        assert any(x.startswith("Attach REDIS (@ref:redis-") for x in descs)
        assert any(x.startswith("Attach DATABASE (@ref:postgresql-") for x in descs)
        assert (
            "heroku-redis:mini" in api.get(f"/apps/{app}/releases").json()[-1]["addon_plan_names"]
        )

        # The app writes through its config vars, from a dyno.
        out = run_logs(
            p,
            d,
            app,
            'redis-cli --tls --insecure -u "$REDIS_URL" SET greeting hello && '
            'psql "$DATABASE_URL" -c "CREATE TABLE notes (body text); INSERT INTO notes VALUES (\'kept\')"',
        )
        assert "OK" in out and "INSERT 0 1" in out

        listing = p.cli("addons", "-a", app, check=True).stdout
        assert "heroku-redis" in listing and "heroku-postgresql" in listing
        redis_name = next(
            a["name"]
            for a in api.get(f"/apps/{app}/addons").json()
            if a["addon_service"]["name"] == "heroku-redis"
        )
        info = p.cli("addons:info", redis_name, "-a", app, check=True).stdout
        assert redis_name in info and "heroku-redis:mini" in info

        # Attach the same Redis to a second app under another name.
        p.cli("addons:attach", redis_name, "--as", "CACHE", "-a", other, check=True)
        assert api.get(f"/apps/{other}/config-vars").json()["CACHE_URL"] == config["REDIS_URL"]

        # Back up, break, restore.
        db_name = next(
            a["name"]
            for a in api.get(f"/apps/{app}/addons").json()
            if a["addon_service"]["name"] == "heroku-postgresql"
        )
        assert "done, b001" in p.cli("pg:backups:capture", db_name, "-a", app, check=True).stdout
        with psycopg.connect(config["DATABASE_URL"]) as conn:
            conn.execute("DROP TABLE notes")
        p.cli("pg:backups:restore", "b001", db_name, "-a", app, "--confirm", app, check=True)
        with psycopg.connect(config["DATABASE_URL"]) as conn:
            assert conn.execute("SELECT body FROM notes").fetchall() == [("kept",)]

        p.stop()
        p = start_platform(tmp_path / "home", extra_env=env)
        api, d = p.client(), Deployer(p, tmp_path)
        config2 = api.get(f"/apps/{app}/config-vars").json()
        r = redis.from_url(config2["REDIS_URL"], ssl_cert_reqs=None)
        assert wait_for(lambda: r.get("greeting"), 20, what="redis back") == b"hello"
        with psycopg.connect(config2["DATABASE_URL"]) as conn:
            assert conn.execute("SELECT body FROM notes").fetchall() == [("kept",)]

        # Rotating credentials: new URLs released to both apps, the old password refused.
        p.cli("redis:credentials", redis_name, "--reset", "-a", app, check=True)
        new = api.get(f"/apps/{app}/config-vars").json()["REDIS_URL"]
        assert new != config2["REDIS_URL"]
        assert api.get(f"/apps/{other}/config-vars").json()["CACHE_URL"] == new
        old_client = redis.from_url(config2["REDIS_URL"], ssl_cert_reqs=None)
        try:
            old_client.ping()
            raise AssertionError("the old Redis password still works")
        except redis.exceptions.AuthenticationError:
            pass
        assert redis.from_url(new, ssl_cert_reqs=None).get("greeting") == b"hello"
        p.cli("pg:credentials", db_name, "--reset", "-a", app, check=True)
        try:
            psycopg.connect(config2["DATABASE_URL"]).close()
            raise AssertionError("the old Postgres password still works")
        except psycopg.OperationalError:
            pass

        # Credentials never leak into logs.
        all_lines = "\n".join(d.logs(app, lines=1500))
        assert config2["REDIS_URL"].split("@")[0].split(":")[-1] not in all_lines

        # A plan change applies the new plan's memory limit to the running server.
        r = api.patch(f"/apps/{app}/addons/{redis_name}", json={"plan": "premium-0"})
        assert r.status_code == 200 and r.json()["plan"]["name"] == "heroku-redis:premium-0"
        admin = redis.from_url(new, ssl_cert_reqs=None)
        assert admin.ping()
        assert "premium-0" in p.cli("addons:info", redis_name, "-a", app, check=True).stdout

        # Bad input and destroying with confirmation.
        bad = api.post(f"/apps/{app}/addons", json={"plan": "heroku-redis:huge"})
        assert bad.status_code == 422 and "mini" in bad.json()["message"]
        dup = api.post(
            "/addon-attachments", json={"app": other, "addon": redis_name, "name": "CACHE"}
        )
        assert dup.status_code in (409, 422)
        res = p.cli("addons:destroy", redis_name, "-a", app)
        assert res.returncode == 1 and "confirm" in res.stderr.lower()
        p.cli("addons:destroy", redis_name, "-a", app, "--confirm", app, "--force", check=True)
        assert "CACHE_URL" not in api.get(f"/apps/{other}/config-vars").json()
        assert "REDIS_URL" not in api.get(f"/apps/{app}/config-vars").json()
    finally:
        p.stop()
