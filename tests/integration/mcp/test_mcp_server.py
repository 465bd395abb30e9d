"""Spruce's MCP server through a real MCP client: the tool list, app tools checked against
the Platform API's state, bad input, another user's key, capabilities not built yet."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
from support import REPO, RunningPlatform

from .clients import create_user, failed, http_session, ok, stdio_session, text

HEROKU_TOOLS = {
    t["name"]: t for t in json.loads((REPO / "src/spruce/mcp/heroku_tools.json").read_text())
}
SPEC = Path("/work/shared/spec/heroku-mcp-tools.json")


def _name() -> str:
    return f"mcp-{uuid.uuid4().hex[:8]}"


def test_the_tools_are_herokus_with_its_schemas() -> None:
    # The shipped copy is Heroku's list (when the spec is at hand to compare with).
    if SPEC.exists():
        assert json.loads(SPEC.read_text()) == list(HEROKU_TOOLS.values())
    assert len(HEROKU_TOOLS) == 36


async def test_lists_every_tool_over_stdio_and_http(platform: RunningPlatform) -> None:
    async with stdio_session(platform) as s:
        over_stdio = {t.name: t for t in (await s.list_tools()).tools}
    async with http_session(platform) as s:
        over_http = {t.name: t for t in (await s.list_tools()).tools}
    assert over_stdio.keys() == over_http.keys()
    assert set(HEROKU_TOOLS) <= set(over_http)
    for name, spec in HEROKU_TOOLS.items():
        assert over_http[name].input_schema == spec["inputSchema"], name
    for t in over_http.values():
        a = t.annotations
        assert a is not None and a.read_only_hint is not None and a.destructive_hint is not None
    assert over_http["list_apps"].annotations.read_only_hint is True
    assert over_http["pg_kill"].annotations.destructive_hint is True
    assert over_http["destroy_app"].annotations.destructive_hint is True
    assert "confirm" in over_http["rollback"].input_schema["required"]


async def test_app_tools_change_the_platform(platform: RunningPlatform) -> None:
    api = platform.client()
    name, new_name = _name(), _name()
    async with http_session(platform) as s:
        created = ok(await s.call_tool("create_app", {"app": name, "region": "eu"}))
        assert created["name"] == name
        assert api.get(f"/apps/{name}").json()["region"]["name"] == "eu"
        assert name in [a["name"] for a in ok(await s.call_tool("list_apps", {}))]

        ok(await s.call_tool("maintenance_on", {"app": name}))
        assert api.get(f"/apps/{name}").json()["maintenance"] is True
        ok(await s.call_tool("maintenance_off", {"app": name}))
        assert api.get(f"/apps/{name}").json()["maintenance"] is False

        ok(await s.call_tool("config_set", {"app": name, "vars": {"GREETING": "hi"}}))
        assert api.get(f"/apps/{name}/config-vars").json()["GREETING"] == "hi"
        assert ok(await s.call_tool("config_get", {"app": name})) == {"GREETING": "hi"}
        ok(await s.call_tool("config_unset", {"app": name, "names": ["GREETING"]}))
        assert "GREETING" not in api.get(f"/apps/{name}/config-vars").json()
        releases = ok(await s.call_tool("list_releases", {"app": name}))
        assert [r["version"] for r in releases] == [
            r["version"] for r in reversed(api.get(f"/apps/{name}/releases").json())
        ]

        info = ok(await s.call_tool("get_app_info", {"app": name}))
        assert info["app"]["name"] == name and info["config_var_names"] == []
        assert info["collaborators"] == [] or "admin" in info["collaborators"][0]

        domain = ok(await s.call_tool("add_domain", {"app": name, "hostname": "www.mcp.test"}))
        assert domain["hostname"] == "www.mcp.test"
        assert "www.mcp.test" in [d["hostname"] for d in api.get(f"/apps/{name}/domains").json()]

        ok(await s.call_tool("rename_app", {"app": name, "newName": new_name}))
        assert api.get(f"/apps/{name}").status_code == 404
        assert api.get(f"/apps/{new_name}").status_code == 200

        # The app's log says who did it and that it came through MCP.
        logs = ok(await s.call_tool("get_app_logs", {"app": new_name, "source": "app"}))
        assert "Maintenance mode on by user admin@spruce.local via MCP" in logs
        assert "Set GREETING config vars by user admin@spruce.local via MCP" in logs

        # Destructive tools of Spruce's own want the app's name as confirm.
        assert "confirm" in failed(
            await s.call_tool("destroy_app", {"app": new_name, "confirm": "nope"})
        )
        assert api.get(f"/apps/{new_name}").status_code == 200
        ok(await s.call_tool("destroy_app", {"app": new_name, "confirm": new_name}))
        assert api.get(f"/apps/{new_name}").status_code == 404


async def test_bad_input_is_an_error_and_changes_nothing(platform: RunningPlatform) -> None:
    api = platform.client()
    name = _name()
    api.post("/apps", json={"name": name}).raise_for_status()
    before = api.get(f"/apps/{name}").json()
    async with http_session(platform) as s:
        msg = failed(await s.call_tool("maintenance_on", {"app": name, "mode": "on"}))
        assert "'mode' was unexpected" in msg and "app" in msg
        assert "'app' is a required property" in failed(await s.call_tool("maintenance_on", {}))
        assert "region" in failed(
            await s.call_tool("create_app", {"app": _name(), "region": "mars"})
        )
        assert "Couldn't find that app" in failed(
            await s.call_tool("get_app_info", {"app": "no-such-app-here"})
        )
        assert "Invalid scale argument" in failed(
            await s.call_tool("ps_scale", {"app": name, "dyno": "web==2"})
        )
        assert "Unknown tool" in failed(await s.call_tool("transfer_app", {"app": name}))
        assert "not a valid app.json" in failed(
            await s.call_tool(
                "deploy_to_heroku",
                {"name": name, "rootUri": "/nowhere", "appJson": '{"formation": 3}'},
            )
        )
    after = api.get(f"/apps/{name}").json()
    assert after["maintenance"] is before["maintenance"] is False
    assert after["updated_at"] == before["updated_at"]
    assert api.get("/apps").json() and all(
        a["region"]["name"] != "mars" for a in api.get("/apps").json()
    )


async def test_another_users_key_cannot_touch_the_app(platform: RunningPlatform) -> None:
    api = platform.client()
    name = _name()
    api.post("/apps", json={"name": name}).raise_for_status()
    bob = create_user(platform, f"bob-{uuid.uuid4().hex[:6]}@example.com")
    # The API's answer to Bob, which every tool gives too (same access rule).
    refused = platform.client(bob).get(f"/apps/{name}")
    assert refused.status_code == 403
    async with http_session(platform, bob) as s:
        assert name not in text(await s.call_tool("list_apps", {"all": True}))
        for tool, args in (
            ("get_app_info", {"app": name}),
            ("maintenance_on", {"app": name}),
            ("ps_scale", {"app": name, "dyno": "web=2"}),
            ("config_get", {"app": name}),
            ("get_app_logs", {"app": name}),
            ("destroy_app", {"app": name, "confirm": name}),
        ):
            assert failed(await s.call_tool(tool, args)) == refused.json()["message"], tool
        # Bob's own app is his to change.
        mine = _name()
        ok(await s.call_tool("create_app", {"app": mine}))
        assert platform.client(bob).get(f"/apps/{mine}").json()["owner"]["email"].startswith("bob")
    assert api.get(f"/apps/{name}").json()["maintenance"] is False


def test_the_endpoint_wants_an_api_key(platform: RunningPlatform) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    for headers in ({}, {"Authorization": "Bearer HRKU-not-a-key"}):
        resp = httpx.post(platform.api_url + "/mcp", json=body, headers=headers)
        assert resp.status_code == 401
        assert resp.json() == {"id": "unauthorized", "message": "Invalid credentials provided."}


async def test_missing_capabilities_say_so(platform: RunningPlatform) -> None:
    async with stdio_session(platform) as s:
        for tool, args, capability in (
            ("list_teams", {}, "Teams"),
            ("list_private_spaces", {}, "Private Spaces"),
            ("list_apps", {"team": "acme"}, "Teams"),
            ("create_app", {"team": "acme"}, "Teams"),
        ):
            msg = failed(await s.call_tool(tool, args))
            assert f"{capability} are not built in Spruce yet" in msg, (tool, msg)


async def test_resources_and_prompts(platform: RunningPlatform) -> None:
    api = platform.client()
    name = _name()
    api.post("/apps", json={"name": name}).raise_for_status()
    async with http_session(platform) as s:
        uris = {str(r.uri) for r in (await s.list_resources()).resources}
        assert {f"spruce://apps/{name}", f"spruce://apps/{name}/releases"} <= uris
        app = json.loads((await s.read_resource(f"spruce://apps/{name}")).contents[0].text)
        assert app["id"] == api.get(f"/apps/{name}").json()["id"]
        rels = json.loads(
            (await s.read_resource(f"spruce://apps/{name}/releases")).contents[0].text
        )
        assert rels[0]["version"] == 1
        names = {p.name for p in (await s.list_prompts()).prompts}
        assert names == {"deploy-folder", "why-is-my-app-crashing"}
        prompt = await s.get_prompt("why-is-my-app-crashing", {"app": name})
        assert "ps_list" in prompt.messages[0].content.text
