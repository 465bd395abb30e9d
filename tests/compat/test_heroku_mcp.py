"""Heroku's MCP server (@heroku/mcp-server, installed with the CLI) against Spruce.

The server drives `heroku repl`; the harness only works around its own known defects
(tests/compat/mcp_harness). Each tool's result is checked against the platform's state.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from compat_support import HerokuCLI
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from support import REPO, RunningPlatform, wait_for

HARNESS = Path(__file__).parent / "mcp_harness"


def server_params(heroku: HerokuCLI) -> StdioServerParameters:
    server = heroku.bin_dir.parent / "@heroku" / "mcp-server" / "bin" / "heroku-mcp-server.mjs"
    env = dict(heroku.env)
    env["PATH"] = f"{HARNESS}{os.pathsep}{env['PATH']}"
    env["MCP_SERVER_REQUEST_TIMEOUT"] = "60000"
    return StdioServerParameters(
        command="node", args=["--import", str(HARNESS / "register.mjs"), str(server)], env=env
    )


def text(result: Any) -> str:
    assert not result.is_error, result
    return "\n".join(c.text for c in result.content if getattr(c, "type", "") == "text")


def test_mcp_tools(heroku: HerokuCLI, platform: RunningPlatform, tmp_path: Path) -> None:
    name = f"mcp-{uuid.uuid4().hex[:6]}"
    repo = tmp_path / name
    shutil.copytree(REPO / "examples" / "apps" / "release-phase", repo)
    for args in (("init", "-q", "-b", "main"), ("add", "-A"), ("commit", "-q", "-m", "first")):
        heroku.git(*args, cwd=repo)
    api = platform.client()

    async def session_run() -> None:
        async with stdio_client(server_params(heroku)) as (read, write):
            async with ClientSession(read, write) as s:
                await s.initialize()
                names = {t.name for t in (await s.list_tools()).tools}
                assert {
                    "list_apps",
                    "get_app_info",
                    "create_app",
                    "ps_list",
                    "ps_scale",
                    "ps_restart",
                    "maintenance_on",
                    "maintenance_off",
                    "get_app_logs",
                    "list_addons",
                    "create_addon",
                    "deploy_one_off_dyno",
                } <= names
                out = text(await s.call_tool("create_app", {"app": name}))
                assert f"Creating {name}" in out and api.get(f"/apps/{name}").status_code == 200
                assert name in text(await s.call_tool("list_apps", {}))
                info = text(await s.call_tool("get_app_info", {"app": name}))
                assert f"=== {name}" in info and "admin@spruce.local" in info

                heroku("git:remote", "-a", name, cwd=repo)
                assert "Released v2" in heroku.git("push", "heroku", "main", cwd=repo).stderr
                wait_for(
                    lambda: [
                        d for d in api.get(f"/apps/{name}/dynos").json() if d["state"] == "up"
                    ],
                    30,
                    what="web up",
                )

                assert "web.1: up" in text(await s.call_tool("ps_list", {"app": name}))
                out = text(
                    await s.call_tool("ps_scale", {"app": name, "dyno": "web=2:standard-1x"})
                )
                assert "2:Standard-1X" in out
                formation = api.get(f"/apps/{name}/formation").json()
                assert [f["quantity"] for f in formation if f["type"] == "web"] == [2]
                out = text(await s.call_tool("ps_restart", {"app": name, "process-type": "web"}))
                assert "Restarting" in out
                text(await s.call_tool("maintenance_on", {"app": name}))
                assert api.get(f"/apps/{name}").json()["maintenance"] is True
                text(await s.call_tool("maintenance_off", {"app": name}))
                assert api.get(f"/apps/{name}").json()["maintenance"] is False
                logs = text(await s.call_tool("get_app_logs", {"app": name}))
                assert "Release v2 created" in logs or "heroku[web.1]" in logs
                out = text(
                    await s.call_tool(
                        "create_addon", {"app": name, "serviceAndPlan": "heroku-redis:mini"}
                    )
                )
                assert (
                    "REDIS_URL" in out
                    and "REDIS_URL" in api.get(f"/apps/{name}/config-vars").json()
                )
                assert "heroku-redis" in text(await s.call_tool("list_addons", {"app": name}))
                out = text(
                    await s.call_tool(
                        "deploy_one_off_dyno", {"name": name, "command": "echo one-off-says-hi"}
                    )
                )
                assert "one-off-says-hi" in out

    asyncio.run(asyncio.wait_for(session_run(), 400))


async def _calls(heroku: HerokuCLI, calls: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """One session of Heroku's server: the tools it lists, and each call's result."""
    out: dict[str, Any] = {}
    async with stdio_client(server_params(heroku)) as (read, write):
        async with ClientSession(read, write) as s:
            await s.initialize()
            out["__tools__"] = {t.name for t in (await s.list_tools()).tools}
            for name, args in calls:
                if name in out["__tools__"]:
                    out[name] = await s.call_tool(name, args)
    return out


def test_mcp_more_tools(heroku: HerokuCLI, platform: RunningPlatform, tmp_path: Path) -> None:
    """rename_app, get_addon_info, list_addon_services, list_addon_plans, deploy_to_heroku."""
    api = platform.client()
    name, new_name, deployed = (f"mcp-{uuid.uuid4().hex[:6]}" for _ in range(3))
    api.post("/apps", json={"name": name}).raise_for_status()
    addon = api.post(f"/apps/{name}/addons", json={"plan": "heroku-redis:mini"}).json()
    folder = tmp_path / "site"
    shutil.copytree(REPO / "examples" / "apps" / "release-phase", folder)
    app_json = json.dumps({"name": "deployed", "env": {"GREETING": {"value": "from app.json"}}})
    results = asyncio.run(
        asyncio.wait_for(
            _calls(
                heroku,
                [
                    ("rename_app", {"app": name, "newName": new_name}),
                    ("get_addon_info", {"app": new_name, "addon": "REDIS"}),
                    ("list_addon_services", {}),
                    ("list_addon_plans", {"service": "heroku-redis"}),
                    (
                        "deploy_to_heroku",
                        {"name": deployed, "rootUri": str(folder), "appJson": app_json},
                    ),
                ],
            ),
            400,
        )
    )
    assert f"Renaming {name} to {new_name}" in text(results["rename_app"])
    assert api.get(f"/apps/{new_name}").status_code == 200
    assert api.get(f"/apps/{name}").status_code == 404
    info = text(results["get_addon_info"])
    assert addon["name"] in info and f"{new_name}::REDIS" in info
    services = text(results["list_addon_services"])
    assert "heroku-postgresql" in services and "heroku-redis" in services
    assert "heroku-redis:mini" in text(results["list_addon_plans"])
    text(results["deploy_to_heroku"])
    assert api.get(f"/apps/{deployed}/config-vars").json()["GREETING"] == "from app.json"
    releases = api.get(f"/apps/{deployed}/releases").json()
    assert releases[-1]["status"] == "succeeded" and releases[-1]["version"] >= 2


def test_mcp_pipelines(heroku: HerokuCLI, platform: RunningPlatform, tmp_path: Path) -> None:
    """pipelines_create (with its first app), pipelines_list, pipelines_info and
    pipelines_promote, whose output carries the target's release phase."""
    api = platform.client()
    base = f"mcpp{uuid.uuid4().hex[:5]}"
    dev, stg = f"{base}-dev", f"{base}-staging"
    repo = tmp_path / dev
    shutil.copytree(REPO / "examples" / "apps" / "release-phase", repo)
    for args in (("init", "-q", "-b", "main"), ("add", "-A"), ("commit", "-q", "-m", "first")):
        heroku.git(*args, cwd=repo)
    heroku("apps:create", dev, cwd=repo)
    assert "Released v2" in heroku.git("push", "heroku", "main", cwd=repo).stderr
    api.post("/apps", json={"name": stg}).raise_for_status()

    create = {"name": base, "stage": "development", "app": dev}
    first = asyncio.run(asyncio.wait_for(_calls(heroku, [("pipelines_create", create)]), 120))
    assert f"Creating {base} pipeline" in text(first["pipelines_create"])
    pipeline = api.get(f"/apps/{dev}/pipeline-couplings").json()["pipeline"]
    assert pipeline["name"] == base
    coupled = api.post(
        "/pipeline-couplings", json={"app": stg, "pipeline": pipeline["id"], "stage": "staging"}
    )
    assert coupled.status_code == 201, coupled.text
    calls: list[tuple[str, dict[str, Any]]] = [
        ("pipelines_list", {}),
        ("pipelines_info", {"pipeline": base}),
        ("pipelines_promote", {"app": dev}),
    ]
    results = asyncio.run(asyncio.wait_for(_calls(heroku, calls), 300))
    assert base in text(results["pipelines_list"])
    info = text(results["pipelines_info"])
    assert f"=== {base}" in info and dev in info and stg in info
    promoted = text(results["pipelines_promote"])
    assert "Starting promotion to staging" in promoted
    assert "release phase: preparing version" in promoted and "Promotion successful" in promoted
    latest = api.get(f"/apps/{stg}/releases").json()[-1]
    assert latest["status"] == "succeeded" and latest["description"].startswith(f"Promote {dev}")


# Every tool Heroku's server registers here is checked above and below; its AI tools, which
# it registers only when its CLI has @heroku/plugin-ai (and Spruce serves the inference
# host on port 443), are checked in test_heroku_mcp_ai.py.


MCP_TEAM = "mcp-team-" + uuid.uuid4().hex[:6]
MCP_SPACE = "mcp-space-" + uuid.uuid4().hex[:6]
TEAM_APP, SPACE_APP = (f"mcp-{kind}-{uuid.uuid4().hex[:6]}" for kind in ("team", "space"))
TEAM_CALLS: list[tuple[str, dict[str, Any]]] = [
    ("list_teams", {}),
    ("list_private_spaces", {}),
    ("create_app", {"app": TEAM_APP, "team": MCP_TEAM}),
    ("create_app", {"app": SPACE_APP, "space": MCP_SPACE}),
    ("list_apps", {"team": MCP_TEAM}),
    ("list_apps", {"space": MCP_SPACE}),
]


async def _team_calls(heroku: HerokuCLI) -> list[Any]:
    """Heroku's server on teams and spaces, in order (the apps are made by the calls)."""
    out = []
    async with stdio_client(server_params(heroku)) as (read, write):
        async with ClientSession(read, write) as s:
            await s.initialize()
            for name, args in TEAM_CALLS:
                out.append(await s.call_tool(name, args))
    return out


def test_mcp_teams_and_spaces(heroku: HerokuCLI, platform: RunningPlatform) -> None:
    """Teams and spaces landed: Heroku's server lists them, creates apps in them and lists
    those apps by team and by space, each checked against the platform."""
    api = platform.client()
    api.post("/teams", json={"name": MCP_TEAM}).raise_for_status()
    api.post("/spaces", json={"name": MCP_SPACE, "team": MCP_TEAM}).raise_for_status()
    wait_for(
        lambda: api.get(f"/spaces/{MCP_SPACE}").json()["state"] == "allocated",
        30,
        what="the space allocated",
    )
    teams, spaces, in_team, in_space, by_team, by_space = (
        text_of(r) for r in asyncio.run(asyncio.wait_for(_team_calls(heroku), 300))
    )
    assert MCP_TEAM in teams, teams
    assert MCP_SPACE in spaces and MCP_TEAM in spaces, spaces
    assert TEAM_APP in in_team and SPACE_APP in in_space, (in_team, in_space)
    assert api.get(f"/apps/{TEAM_APP}").json()["team"]["name"] == MCP_TEAM
    assert api.get(f"/apps/{SPACE_APP}").json()["space"]["name"] == MCP_SPACE
    assert TEAM_APP in by_team and SPACE_APP in by_team, by_team
    assert SPACE_APP in by_space and TEAM_APP not in by_space, by_space


def text_of(result: Any) -> str:
    return "\n".join(c.text for c in result.content if getattr(c, "type", "") == "text")
