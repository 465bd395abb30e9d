"""Heroku's MCP server (@heroku/mcp-server, installed with the CLI) against Spruce.

The server drives `heroku repl`; the harness only works around its own known defects
(tests/compat/mcp_harness). Each tool's result is checked against the platform's state.
"""

from __future__ import annotations

import asyncio
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
    assert not getattr(result, "isError", False), result
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
                assert {f["type"]: f["quantity"] for f in formation}.get("web") == 2
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
