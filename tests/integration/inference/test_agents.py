"""Agents on the real local model: tool calls forced through a schema, run in "dynos".

The dynos are LocalLink's subprocesses, reached through the real LinkServer socket; the
database is a real PostgreSQL with a read-only role; the MCP server is a real stdio server
driven by the `mcp` SDK, both through the agent loop and through the /mcp toolkit.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import ssl
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import psycopg
import pytest
from inference_harness import InferenceProcess, LocalLink, grant, local_app, sse_data, usage_of
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

from spruce.inference.link import PostgresCredentials

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
CHAT = "smollm2-135m-instruct"
MCP_SERVER = Path(__file__).with_name("mcp_notes_server.py")


class Env:
    def __init__(self, root: Path, pg_url: str, pg_port: int) -> None:
        self.link = LocalLink()
        self.app = local_app(root, "demo")
        (self.app.directory / "hello.txt").write_text("hi\n")
        (self.app.directory / "Procfile").write_text("web: python -m http.server $PORT\n")
        db = pg_url.rsplit("/", 1)[1]
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute("CREATE TABLE widgets (id serial PRIMARY KEY, name text NOT NULL)")
            conn.execute("INSERT INTO widgets (name) VALUES ('sprocket'), ('gear')")
            conn.execute("DROP ROLE IF EXISTS reader")
            conn.execute("CREATE ROLE reader LOGIN")
            conn.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public TO reader")
        self.app.postgres["DATABASE"] = PostgresCredentials(
            "127.0.0.1", pg_port, db, "reader", "unused"
        )
        self.mcp_app = local_app(root, "notes-mcp")
        (self.mcp_app.directory / "todo.note").write_text("buy milk")
        (self.mcp_app.directory / "ideas.note").write_text("spruce")
        self.mcp_app.mcp["mcp-notes"] = f"{sys.executable} {MCP_SERVER}"
        self.mcp_app.env["PYTHONPATH"] = ":".join(sys.path)
        self.link.add_app(self.app)
        self.link.add_app(self.mcp_app)
        g = grant(self.app, CHAT, "addon-agent")
        self.link.add_key("inf-agent", g)
        self.link.attach(g.addon_id, self.mcp_app.name)  # registers its mcp* process types
        self.link.add_key(
            "inf-agent-1rpm", grant(self.app, CHAT, "addon-1rpm", requests_per_minute=1)
        )
        self.link.add_key("inf-lonely", grant(local_app(root, "lonely"), CHAT, "addon-lonely"))
        self.server = InferenceProcess(root / "server", self.link).start()


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, postgres_server: Any) -> Iterator[Env]:
    e = Env(
        tmp_path_factory.mktemp("agents"), postgres_server.create_database(), postgres_server.port
    )
    yield e
    e.server.stop()


def agent_call(
    env: Env, body: dict[str, Any], key: str = "inf-agent"
) -> tuple[list[dict[str, Any]], str]:
    body.setdefault("max_tokens_per_inference_request", 48)  # SmolLM2 rambles otherwise
    with env.server.client(key) as c:
        r = c.post("/v1/agents/heroku", json=body, headers={"Accept": "text/event-stream"})
    assert r.status_code == 200, r.text
    data = sse_data(r.text)
    assert data[-1] == "[DONE]"
    return [json.loads(d) for d in data[:-1]], r.text


def tool(name: str, **runtime: Any) -> dict[str, Any]:
    return {
        "type": "heroku_tool",
        "name": name,
        "runtime_params": {"target_app_name": "demo", **runtime},
    }


def test_agent_lists_files_through_dyno_run_command(env: Env) -> None:
    ls = tool(
        "dyno_run_command",
        max_calls=1,
        dyno_size="standard-2x",
        tool_params={
            "cmd": "ls",
            "description": "Lists the files of the app.",
            "parameters": {"type": "object", "properties": {}},
        },
    )
    events, raw = agent_call(
        env,
        {
            "model": CHAT,
            "messages": [{"role": "user", "content": "Which files does my app have?"}],
            "tools": [ls],
        },
    )
    assert "event: message\n" in raw and raw.rstrip().endswith("event: done\ndata: [DONE]")
    kinds = [e["object"] for e in events]
    assert (
        kinds[0] == "chat.completion"
        and kinds[1] == "tool.completion"
        and kinds[-1] == "chat.completion"
    )
    first = events[0]["choices"][0]
    assert first["finish_reason"] == "tool_calls"
    assert first["message"]["tool_calls"][0]["function"]["name"] == "dyno_run_command"
    result = events[1]["choices"][0]["message"]
    assert (
        result["role"] == "tool"
        and result["tool_call_id"] == first["message"]["tool_calls"][0]["id"]
    )
    assert result["content"].startswith("Tool 'dyno_run_command' returned result: ")
    payload = json.loads(result["content"].split("returned result: ", 1)[1])
    assert payload["isError"] is False
    assert payload["content"][0]["text"].split() == ["Procfile", "hello.txt"]
    assert events[-1]["choices"][0]["finish_reason"] in ("stop", "length")
    assert len({e["id"] for e in events}) == 1  # one agent session
    # max_calls=1: the command ran once, in a dyno of the target app, of the asked size
    assert [c for c in env.link.commands if c[1] == "ls"] == [("demo", "ls", "standard-2x", 120)]
    records = usage_of(env.link, kind="agents", app_id="id-demo")
    assert records and records[0].tool_calls == 1 and records[0].completion_tokens > 0


def test_ttl_seconds_kills_the_dyno(env: Env) -> None:
    slow = tool(
        "dyno_run_command",
        max_calls=1,
        ttl_seconds=1,
        tool_params={"cmd": "echo started; sleep 30"},
    )
    events, _ = agent_call(
        env, {"messages": [{"role": "user", "content": "Run it."}], "tools": [slow]}
    )
    out = json.loads(events[1]["choices"][0]["message"]["content"].split("returned result: ", 1)[1])
    assert out["isError"] is True and "started" in out["content"][0]["text"]
    assert "[killed after 1 s]" in out["content"][0]["text"]


def test_postgres_schema_through_the_read_only_credentials(env: Env) -> None:
    events, _ = agent_call(
        env,
        {
            "messages": [{"role": "user", "content": "What tables are there?"}],
            "tools": [tool("postgres_get_schema", max_calls=1)],
        },
    )
    text = events[1]["choices"][0]["message"]["content"]
    assert "widgets(id integer not null, name text not null)" in text


def test_agent_refuses_apps_without_the_add_on(env: Env) -> None:
    other = {
        "type": "heroku_tool",
        "name": "dyno_run_command",
        "runtime_params": {
            "target_app_name": "notes-mcp-typo",
            "max_calls": 1,
            "tool_params": {"cmd": "ls"},
        },
    }
    events, _ = agent_call(env, {"messages": [{"role": "user", "content": "ls"}], "tools": [other]})
    out = json.loads(events[1]["choices"][0]["message"]["content"].split("returned result: ", 1)[1])
    assert out["isError"] is True and "not attached" in out["content"][0]["text"]


def test_agent_request_errors(env: Env) -> None:
    with env.server.client("inf-agent") as c:
        bad = c.post(
            "/v1/agents/heroku",
            json={
                "messages": [{"role": "user", "content": "x"}],
                "tools": [tool("dyno_run_command", ttl_seconds=500)],
            },
        )
        assert bad.status_code == 400 and "ttl_seconds" in bad.json()["error"]["message"]
        bad = c.post(
            "/v1/agents/heroku",
            json={"messages": [{"role": "user", "content": "x"}], "tools": [tool("rm_rf")]},
        )
        assert bad.status_code == 400 and "unknown Heroku tool" in bad.json()["error"]["message"]
        ghost = {"type": "mcp", "name": "no-such/tool", "runtime_params": {"max_calls": 1}}
        bad = c.post(
            "/v1/agents/heroku",
            json={"messages": [{"role": "user", "content": "x"}], "tools": [ghost]},
        )
        assert bad.status_code == 400 and "no registered MCP tool" in bad.json()["error"]["message"]


def test_mcp_servers_are_listed_with_namespaced_tools(env: Env) -> None:
    with env.server.client("inf-agent") as c:
        servers = c.get("/v1/mcp/servers").json()
    with env.server.client("inf-lonely") as c:
        assert c.get("/v1/mcp/servers").json() == []
    (s,) = servers
    assert s["app_id"] == "id-notes-mcp" and s["process_type"] == "mcp-notes"
    assert s["server_status"] == "registered" and s["primitives_status"] == "synced"
    ns = s["namespace"]
    assert len(ns.split("-")) == 2
    names = sorted(t["namespaced_name"] for t in s["tools"])
    assert names == [f"{ns}/add", f"{ns}/list_notes"]
    add = next(t for t in s["tools"] if t["name"] == "add")
    assert add["input_schema"]["properties"].keys() == {"a", "b"}


def test_agent_calls_an_mcp_tool_in_a_dyno(env: Env) -> None:
    with env.server.client("inf-agent") as c:
        ns = c.get("/v1/mcp/servers").json()[0]["namespace"]
    mcp_tool = {
        "type": "mcp",
        "name": f"{ns}/list_notes",
        "runtime_params": {"target_app_name": "notes-mcp", "max_calls": 1},
    }
    events, _ = agent_call(
        env, {"messages": [{"role": "user", "content": "List my notes."}], "tools": [mcp_tool]}
    )
    msg = events[1]["choices"][0]["message"]
    assert msg["name"] == f"{ns}/list_notes"
    out = json.loads(msg["content"].split("returned result: ", 1)[1])
    assert out["isError"] is False and out["content"][0]["text"] == "ideas.note\ntodo.note"


def test_the_mcp_toolkit_endpoint_aggregates_the_servers(env: Env) -> None:
    async def run() -> tuple[list[str], str]:
        ctx = ssl.create_default_context(cafile=env.server.ca_file)
        headers = {"Authorization": "Bearer inf-agent"}
        async with httpx2.AsyncClient(verify=ctx, headers=headers, timeout=60) as http:
            async with streamable_http_client(env.server.url + "/mcp", http_client=http) as streams:
                async with ClientSession(streams[0], streams[1]) as session:
                    await session.initialize()
                    listed = await session.list_tools()
                    names = sorted(t.name for t in listed.tools)
                    add = next(n for n in names if n.endswith("/add"))
                    result = await session.call_tool(add, {"a": 20, "b": 22})
                    text = result.content[0].text  # type: ignore[union-attr]
                    return names, text

    names, text = asyncio.run(run())
    assert [n.split("/")[1] for n in names] == ["add", "list_notes"]
    assert text == "42"
    with httpx2.Client(verify=ssl.create_default_context(cafile=env.server.ca_file)) as c:
        r = c.post(
            env.server.url + "/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
        )
        assert r.status_code == 401


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_code_exec_node_runs_in_a_dyno(env: Env) -> None:
    from spruce.inference.tools import HerokuTools, ToolSpec

    spec = ToolSpec(
        "heroku_tool", "code_exec_node", "code_exec_node", "", {}, "demo", "standard-1x", 30, 1
    )
    link = env.link

    async def run() -> dict[str, Any]:
        result: dict[str, Any] = await HerokuTools(link).run(
            "addon-agent", spec, {"code": "console.log(6 * 7)"}
        )
        return result

    # on the link's long-lived loop: asyncio.run would close its loop before the
    # subprocess transport's last callbacks ran
    out = json.loads(env.server.link_thread.call(run())["content"][0]["text"])
    assert out == {"returncode": 0, "stdout": "42\n", "stderr": ""}


def test_toolkit_calls_count_against_the_keys_rate_limit(env: Env) -> None:
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    headers = {"Accept": "application/json, text/event-stream"}
    with env.server.client("inf-agent-1rpm") as c:
        first = c.post("/mcp", json=ping, headers=headers)
        second = c.post("/mcp", json=ping, headers=headers)
    assert first.status_code != 429
    assert second.status_code == 429 and second.json()["error"]["type"] == "rate_limit_error"
    assert int(second.headers["retry-after"]) >= 1
