"""Spruce's MCP server through a real MCP client: the tool list, app tools checked against
the Platform API's state, bad input, another user's key, capabilities not built yet."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import httpx
import pytest
from mcp import MCPError
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


async def test_the_stdio_relay(platform: RunningPlatform) -> None:
    """`spruce mcp:start` passes messages through as bytes: progress notifications on
    their way, concurrent calls each answered, and a wrong key refused with the API's
    sentence."""
    api = platform.client()
    name = _name()
    api.post("/apps", json={"name": name}).raise_for_status()
    api.patch(f"/apps/{name}", json={"maintenance": True}).raise_for_status()
    async with stdio_session(platform) as s:
        seen: list[str | None] = []

        async def progress(done: float, total: float | None, message: str | None) -> None:
            seen.append(message)

        logs = ok(await s.call_tool("get_app_logs", {"app": name}, progress_callback=progress))
        assert "Maintenance mode on" in logs and seen == logs.splitlines()
        answers = await asyncio.gather(
            *(s.call_tool("get_app_info", {"app": name}) for _ in range(4)),
            s.call_tool("ps_list", {"app": name}),
            s.call_tool("get_app_info", {"app": "no-such-app-here"}),
        )
        assert [ok(a)["app"]["name"] for a in answers[:4]] == [name] * 4
        assert ok(answers[4]) == []
        assert "Couldn't find that app" in failed(answers[5])
    with pytest.raises(BaseExceptionGroup) as caught:
        async with stdio_session(platform, "HRKU-not-a-key"):
            pass
    refused = caught.value.subgroup(lambda e: isinstance(e, MCPError))
    assert refused is not None and "Invalid credentials provided" in str(refused.exceptions)


async def test_a_plain_call_is_one_json_answer_and_the_same_as_streamed(
    platform: RunningPlatform,
) -> None:
    """A tools/call without a progress token is answered as one JSON response (the fast
    path), with one on the mcp library's SSE stream: the same answer either way."""
    api = platform.client()
    name = _name()
    api.post("/apps", json={"name": name}).raise_for_status()

    async def nothing(done: float, total: float | None, message: str | None) -> None:
        return None

    async with http_session(platform) as s:
        for tool, args in (
            ("get_app_info", {"app": name}),
            ("list_apps", {}),
            ("ps_scale", {"app": name, "dyno": "web==1"}),
            ("get_app_info", {"app": name, "extra": 1}),
        ):
            plain = await s.call_tool(tool, args)
            streamed = await s.call_tool(tool, args, progress_callback=nothing)
            assert (plain.is_error, text(plain)) == (streamed.is_error, text(streamed)), tool
            assert plain.structured_content == streamed.structured_content, tool
        listed = (await s.list_tools()).tools
        assert {t.name for t in listed} >= set(HEROKU_TOOLS)

    # On the wire: the session's plain call answers application/json, a call with a
    # progress token an event stream.
    headers = {
        "Authorization": f"Bearer {platform.api_key}",
        "Accept": "application/json, text/event-stream",
    }
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "wire", "version": "1"},
        },
    }
    with httpx.Client(base_url=platform.api_url, headers=headers, timeout=30) as http:
        opened = http.post("/mcp", json=init)
        session = {"mcp-session-id": opened.headers["mcp-session-id"]}
        done = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        assert http.post("/mcp", json=done, headers=session).status_code == 202
        call = {"name": "ps_list", "arguments": {"app": name}}
        plain = http.post(
            "/mcp",
            json={"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": call},
            headers=session,
        )
        assert plain.headers["content-type"] == "application/json"
        assert plain.json()["id"] == 2 and plain.json()["result"]["content"][0]["text"] == "[]"
        # what Spruce spent on it, the call's share within the request's
        timing = dict(
            part.strip().split(";dur=") for part in plain.headers["server-timing"].split(",")
        )
        assert 0 < float(timing["tool"]) <= float(timing["mcp"])
        call["_meta"] = {"progressToken": "t"}
        streamed = http.post(
            "/mcp",
            json={"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": call},
            headers=session,
        )
        assert streamed.headers["content-type"].startswith("text/event-stream")
        assert '"id":3' in streamed.text.replace(" ", "")
        # Another session's id (or none) is not answered on the fast path.
        stray = http.post(
            "/mcp",
            json={"jsonrpc": "2.0", "id": 4, "method": "tools/list"},
            headers={"mcp-session-id": "not-a-session"},
        )
        assert stray.status_code == 404


def test_the_endpoint_wants_an_api_key(platform: RunningPlatform) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    for headers in ({}, {"Authorization": "Bearer HRKU-not-a-key"}):
        resp = httpx.post(platform.api_url + "/mcp", json=body, headers=headers)
        assert resp.status_code == 401
        assert resp.json() == {"id": "unauthorized", "message": "Invalid credentials provided."}


async def test_missing_capabilities_say_so(platform: RunningPlatform) -> None:
    async with stdio_session(platform) as s:
        for tool, args, capability in (
            (
                "deploy_to_heroku",
                {
                    "name": "mcp-internal",
                    "rootUri": "/nowhere",
                    "tarballUri": "http://127.0.0.1:9/none.tgz",
                    "appJson": "{}",
                    "internalRouting": True,
                },
                "Internally routed apps (reachable only in a space)",
            ),
        ):
            msg = failed(await s.call_tool(tool, args))
            assert f"{capability} are not built in Spruce yet" in msg, (tool, msg)


async def test_ai_model_tools(platform: RunningPlatform) -> None:
    """The platform offers heroku-inference: its models are listed and provisioned as the
    API does it, and make_ai_inference runs an agent call on the local model."""
    api = platform.client()
    name = _name()
    api.post("/apps", json={"name": name}).raise_for_status()
    async with http_session(platform) as s:
        models = ok(await s.call_tool("list_ai_available_models", {}))
        plans = api.get("/addon-services/heroku-inference/plans").json()
        assert models and {m["plan"] for m in models} == {p["name"] for p in plans}
        model = models[0]["model_id"]
        assert model == "smollm2-135m-instruct"  # the catalogue's first: the chat model
        made = ok(
            await s.call_tool(
                "provision_ai_model", {"app": name, "modelName": model, "as": "INFERENCE"}
            )
        )
        assert made["plan"] == f"heroku-inference:{model}"
        assert {"INFERENCE_KEY", "INFERENCE_URL"} <= set(made["config_vars"])
        config = api.get(f"/apps/{name}/config-vars").json()
        assert config["INFERENCE_MODEL_ID"] == model and config["INFERENCE_KEY"]
        assert "no-such-model" in failed(
            await s.call_tool("provision_ai_model", {"app": name, "modelName": "no-such-model"})
        )
        assert len(api.get(f"/apps/{name}/addons").json()) == 1

        opts = {
            "model": model,
            "messages": [{"role": "user", "content": "Say hello."}],
            "max_tokens_per_inference_request": 12,
        }
        # Heroku's default modelResource (the service's name): the app's one model resource
        answer = ok(await s.call_tool("make_ai_inference", {"app": name, "opts": opts}))
        assert answer["resource"] == "INFERENCE" and answer["model"] == model
        assert answer["answer"].strip(), answer
        events = ok(
            await s.call_tool(
                "make_ai_inference",
                {"app": name, "modelResource": "INFERENCE", "opts": opts, "json": True},
            )
        )
        assert events[-1]["object"] == "chat.completion"
        assert events[-1]["choices"][0]["message"]["role"] == "assistant"
        usage = api.get(f"/apps/{name}/config-vars").json()
        assert usage["INFERENCE_KEY"] == config["INFERENCE_KEY"]  # nothing rotated

        # bad input: a clear tool error each, and the key never in it
        for args, says in (
            ({"app": name, "opts": {**opts, "model": "all-minilm-l6-v2"}}, "serves " + model),
            ({"app": name, "opts": {**opts, "messages": []}}, "messages"),
            ({"app": name, "modelResource": "NOPE", "opts": opts}, "model resource 'NOPE'"),
            ({"app": name, "opts": {"model": model}}, "messages"),
            ({"app": "no-such-app-mcp", "opts": opts}, "Couldn't find that app."),
            ({"app": name, "opts": opts, "output": "/tmp/x.txt"}, "output"),
        ):
            msg = failed(await s.call_tool("make_ai_inference", args))
            assert says in msg, (args, msg)
            assert config["INFERENCE_KEY"] not in msg
    # another user can neither see the app nor use its model resource
    other = create_user(platform, f"ai-{uuid.uuid4().hex[:6]}@example.com")
    async with http_session(platform, other) as s:
        msg = failed(await s.call_tool("make_ai_inference", {"app": name, "opts": opts}))
        assert f"You do not have access to the app {name}." in msg
        assert config["INFERENCE_KEY"] not in msg


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
