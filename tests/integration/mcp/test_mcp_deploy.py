"""An agent with nothing but `spruce mcp:start`: deploy a folder (app.json with a Postgres
add-on), scale it, read its logs, query its database, run one-offs, roll back. Each step
is checked against the platform's state through the Platform API."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Any

from support import REPO, RunningPlatform, wait_for

from .clients import failed, ok, stdio_session, text

APP_JSON = {
    "name": "mcp deploy",
    "env": {"GREETING": {"value": "hello from app.json"}},
    "addons": [{"plan": "heroku-postgresql:essential-0"}],
    "formation": {"web": {"quantity": 1}},
}


def _up(platform: RunningPlatform, name: str, n: int) -> Any:
    api = platform.client()
    return wait_for(
        lambda: len([d for d in api.get(f"/apps/{name}/dynos").json() if d["state"] == "up"]) == n,
        60,
        what=f"{n} web dynos up",
    )


async def test_an_agent_deploys_scales_reads_logs_and_queries(
    platform: RunningPlatform, tmp_path: Path
) -> None:
    api = platform.client()
    name = f"mcp-{uuid.uuid4().hex[:6]}"
    folder = tmp_path / "site"
    shutil.copytree(REPO / "examples" / "apps" / "release-phase", folder)
    team = api.post("/teams", json={"name": f"mcpdeploy-{uuid.uuid4().hex[:6]}"}).json()
    async with stdio_session(platform) as s:
        # A new app, set up from app.json in a team (teamId, as Heroku's tool sends it).
        out = ok(
            await s.call_tool(
                "deploy_to_heroku",
                {
                    "name": name,
                    "rootUri": str(folder),
                    "appJson": json.dumps(APP_JSON),
                    "teamId": team["id"],
                },
            )
        )
        assert out["created"] is True and out["status"] == "succeeded", out
        app = api.get(f"/apps/{name}").json()
        assert out["web_url"] == app["web_url"]
        assert app["team"]["name"] == team["name"]
        assert name in {a["name"] for a in api.get(f"/teams/{team['id']}/apps").json()}
        config = api.get(f"/apps/{name}/config-vars").json()
        assert config["GREETING"] == "hello from app.json" and "DATABASE_URL" in config
        _up(platform, name, 1)

        assert "web.1" in {d["name"] for d in ok(await s.call_tool("ps_list", {"app": name}))}
        assert "web=1:Basic" in ok(await s.call_tool("ps_scale", {"app": name}))
        assert ok(await s.call_tool("ps_scale", {"app": name, "dyno": "web=2:standard-1x"})) == [
            "web=2:Standard-1X"
        ]
        web = [f for f in api.get(f"/apps/{name}/formation").json() if f["type"] == "web"]
        assert [(f["quantity"], f["size"].lower()) for f in web] == [(2, "standard-1x")]
        _up(platform, name, 2)
        ok(await s.call_tool("ps_restart", {"app": name, "process-type": "web"}))
        ok(await s.call_tool("ps_restart", {"app": name, "dyno-name": "web.1"}))

        logs = ok(await s.call_tool("get_app_logs", {"app": name}))
        assert "Scaled to web=2:standard-1X by user admin@spruce.local via MCP" in logs or (
            "Scaled to web=2" in logs and "via MCP" in logs
        )
        web_only = ok(await s.call_tool("get_app_logs", {"app": name, "processType": "web"}))
        assert web_only and all("[web." in line for line in web_only.splitlines())

        # Postgres, with the add-on's own credentials and no local psql.
        sql = ok(
            await s.call_tool(
                "pg_psql",
                {"app": name, "command": "CREATE TABLE notes (id int, body text)"},
            )
        )
        assert sql == {"status": "CREATE TABLE"}
        script = tmp_path / "fill.sql"
        script.write_text("INSERT INTO notes VALUES (1, 'one'), (2, 'two');")
        assert ok(await s.call_tool("pg_psql", {"app": name, "file": str(script)})) == {
            "status": "INSERT 0 2"
        }
        rows = ok(
            await s.call_tool(
                "pg_psql",
                {
                    "app": name,
                    "database": "DATABASE_URL",
                    "command": "SELECT * FROM notes ORDER BY id",
                },
            )
        )
        assert rows["columns"] == ["id", "body"] and rows["rows"] == [[1, "one"], [2, "two"]]
        assert "does not exist" in failed(
            await s.call_tool("pg_psql", {"app": name, "command": "SELECT * FROM nowhere"})
        )
        addon = api.get(f"/apps/{name}/addons").json()[0]
        info = ok(await s.call_tool("pg_info", {"app": name}))
        assert info["addon"] == addon["name"] and info["plan"] == addon["plan"]["name"]
        assert isinstance(ok(await s.call_tool("pg_ps", {"app": name, "verbose": True})), list)
        assert ok(await s.call_tool("pg_locks", {"app": name})) == []
        creds = ok(await s.call_tool("pg_credentials", {"app": name}))
        assert creds[0]["name"] == "default" and f"{name}::DATABASE" in creds[0]["attachments"]
        assert "password" not in json.dumps(creds).lower()
        assert ok(await s.call_tool("pg_backups", {"app": name})) == []
        assert "No query with pid" in failed(await s.call_tool("pg_kill", {"app": name, "pid": 1}))
        assert (
            ok(await s.call_tool("pg_maintenance", {"app": name}))["maintenance_required"] is False
        )
        outliers = ok(await s.call_tool("pg_outliers", {"app": name, "num": 50}))
        assert outliers["columns"] == ["total_exec_time", "prop_exec_time", "calls", "query"]
        assert any("notes" in row[3] for row in outliers["rows"]), outliers
        ok(await s.call_tool("pg_outliers", {"app": name, "reset": True}))
        after = ok(await s.call_tool("pg_outliers", {"app": name, "num": 50}))
        assert not any("INSERT INTO notes" in row[3] for row in after["rows"]), after
        assert "not built in Spruce yet" in failed(
            await s.call_tool("pg_upgrade", {"app": name, "version": "17"})
        )

        # Add-ons.
        ok(await s.call_tool("create_addon", {"app": name, "serviceAndPlan": "heroku-redis:mini"}))
        assert "REDIS_URL" in api.get(f"/apps/{name}/config-vars").json()
        listed = ok(await s.call_tool("list_addons", {"app": name}))
        assert {a["service"] for a in listed} == {"heroku-postgresql", "heroku-redis"}
        got = ok(await s.call_tool("get_addon_info", {"app": name, "addon": "REDIS"}))
        assert got["addon_service"]["name"] == "heroku-redis"
        assert ok(await s.call_tool("kvs_info", {"app": name}))["Version"][0].isdigit()
        services = ok(await s.call_tool("list_addon_services", {}))
        assert {"heroku-postgresql", "heroku-redis"} <= {x["name"] for x in services}
        plans = ok(await s.call_tool("list_addon_plans", {"service": "heroku-redis"}))
        assert "heroku-redis:mini" in {p["name"] for p in plans}

        # One-off dynos: output and exit code.
        one_off = ok(
            await s.call_tool(
                "deploy_one_off_dyno",
                {
                    "name": name,
                    "command": "cat data/hello.txt && echo $GREETING $EXTRA",
                    "sources": [{"relativePath": "data/hello.txt", "contents": "staged file\n"}],
                    "env": {"EXTRA": "extra-env"},
                },
            )
        )
        assert one_off["exit_code"] == 0
        assert "staged file" in one_off["output"]
        assert "hello from app.json extra-env" in one_off["output"]
        ran = ok(await s.call_tool("run_command", {"app": name, "command": "echo out; exit 3"}))
        assert ran["exit_code"] == 3 and "out" in ran["output"]
        assert "relativePath" in failed(
            await s.call_tool(
                "deploy_one_off_dyno",
                {
                    "name": name,
                    "command": "true",
                    "sources": [{"relativePath": "../x", "contents": ""}],
                },
            )
        )

        # Builds, a second deploy to the existing app, releases and rollback.
        (folder / "VERSION").write_text("two\n")
        again = ok(
            await s.call_tool(
                "deploy_to_heroku",
                {"name": name, "rootUri": str(folder), "appJson": json.dumps(APP_JSON)},
            )
        )
        assert again["created"] is False and again["status"] == "succeeded"
        # An existing app is deployed where it is: a space it is not in is an error.
        assert "is not in the space" in failed(
            await s.call_tool(
                "deploy_to_heroku",
                {
                    "name": name,
                    "rootUri": str(folder),
                    "appJson": json.dumps(APP_JSON),
                    "spaceId": "some-space",
                },
            )
        )
        builds = ok(await s.call_tool("list_builds", {"app": name}))
        assert len(builds) == 2 and builds[0]["status"] == "succeeded"
        output = ok(await s.call_tool("get_build_output", {"app": name}))
        assert output["id"] == builds[0]["id"] and output["output"]
        releases = ok(await s.call_tool("list_releases", {"app": name}))
        current = releases[0]["version"]
        assert current == api.get(f"/apps/{name}/releases").json()[-1]["version"]
        assert "confirm" in failed(await s.call_tool("rollback", {"app": name, "confirm": "x"}))
        rolled = ok(await s.call_tool("rollback", {"app": name, "confirm": name}))
        assert rolled["release"] == current + 1
        assert f"Rollback to v{current - 1}" in rolled["description"]

        ok(await s.call_tool("destroy_app", {"app": name, "confirm": name}))
        assert api.get(f"/apps/{name}").status_code == 404
        assert "Couldn't find" in text(await s.call_tool("ps_list", {"app": name}))
