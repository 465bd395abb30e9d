"""heroku-inference on a real `spruce up`: the add-on, a pushed app, agents in real dynos.

One platform for the module. An app pushed with git reads INFERENCE_URL / INFERENCE_KEY /
INFERENCE_MODEL_ID and asks the local model through the platform's inference server; an
agent call runs `ls` in a real one-off dyno of that app; keys rotate and die with the add-on.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from inference_harness import sse_data
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from support import RunningPlatform, start_platform, wait_for

pytestmark = pytest.mark.slow
CHAT = "smollm2-135m-instruct"
TUNING = {"dynos": {"stop_grace": 3.0, "boot_timeout": 30.0}, "router": {"boot_wait": 20.0}}

# The app: stdlib only. It trusts the platform's CA from a config var (INFERENCE_CA), as
# an app on a self-hosted platform with an internal CA must.
ASK = """import http.server, json, os, ssl, urllib.request

class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        ctx = ssl.create_default_context(cadata=os.environ["INFERENCE_CA"])
        body = json.dumps({
            "model": os.environ["INFERENCE_MODEL_ID"],
            "messages": [{"role": "user", "content": "Say hello."}],
            "max_tokens": 12,
        }).encode()
        req = urllib.request.Request(
            os.environ["INFERENCE_URL"] + "/v1/chat/completions", data=body,
            headers={"Authorization": "Bearer " + os.environ["INFERENCE_KEY"],
                     "Content-Type": "application/json"})
        with urllib.request.urlopen(req, context=ctx, timeout=120) as r:
            answer = r.read()
        self.send_response(200)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *a):
        pass

http.server.ThreadingHTTPServer(("", int(os.environ["PORT"])), H).serve_forever()
"""


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    p = start_platform(
        tmp_path_factory.mktemp("inference-home"),
        extra_env={"SPRUCE_TUNING": json.dumps(TUNING), "HF_HUB_OFFLINE": "1"},
    )
    yield p
    p.stop()


def git(path: Path, p: RunningPlatform, *args: str) -> None:
    env = dict(os.environ, GIT_SSL_CAINFO=str(p.home / "ca" / "ca.pem"), GIT_TERMINAL_PROMPT="0")
    subprocess.run(
        ["git", "-c", "user.email=dev@example.com", "-c", "user.name=Dev", *args],
        cwd=path,
        env=env,
        check=True,
        capture_output=True,
        timeout=600,
    )


def push(p: RunningPlatform, root: Path, app: str, files: dict[str, str]) -> None:
    path = root / app
    path.mkdir(parents=True)
    for name, text in files.items():
        (path / name).write_text(text)
    git(path, p, "init", "-q", "-b", "main")
    git(path, p, "add", "-A")
    git(path, p, "commit", "-q", "-m", "first")
    url = p.endpoints["git_url"].replace("https://", f"https://git:{p.api_key}@")
    git(path, p, "push", f"{url}/{app}.git", "HEAD:main")


def inference(p: RunningPlatform, url: str, key: str) -> httpx.Client:
    ctx = ssl.create_default_context(cafile=str(p.home / "ca" / "ca.pem"))
    return httpx.Client(
        base_url=url, headers={"Authorization": f"Bearer {key}"}, verify=ctx, timeout=180
    )


@pytest.fixture(scope="module")
def deployed(platform: RunningPlatform, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    api = platform.client()
    assert api.post("/apps", json={"name": "asker"}).status_code == 201
    r = api.post(
        "/apps/asker/addons",
        json={"plan": f"heroku-inference:{CHAT}"},
        headers={"Accept-Expansion": "plan"},
        timeout=240,
    )
    assert r.status_code in (200, 201), r.text
    addon = r.json()
    ca = (platform.home / "ca" / "ca.pem").read_text()
    assert api.patch("/apps/asker/config-vars", json={"INFERENCE_CA": ca}).status_code == 200
    push(
        platform,
        tmp_path_factory.mktemp("repos"),
        "asker",
        {"Procfile": "web: python3 ask.py\n", "ask.py": ASK},
    )
    config = api.get("/apps/asker/config-vars").json()
    return {"addon": addon, "config": config}


def test_the_addon_sets_herokus_config_vars(
    platform: RunningPlatform, deployed: dict[str, Any]
) -> None:
    config, addon = deployed["config"], deployed["addon"]
    assert addon["addon_service"]["name"] == "heroku-inference"
    assert addon["plan"]["name"] == f"heroku-inference:{CHAT}"
    assert addon["name"].startswith("inference-")
    assert config["INFERENCE_MODEL_ID"] == CHAT
    assert config["INFERENCE_URL"] == platform.endpoints["inference_url"]
    assert config["INFERENCE_URL"].startswith("https://127.0.0.1:")
    key = config["INFERENCE_KEY"]
    assert key.startswith("inf-") and len(key) == 40
    # the provider keeps only the key's hash
    state = (platform.home / "addons" / "inference" / "state.json").read_text()
    assert key not in state
    catalogue = httpx.get(
        config["INFERENCE_URL"] + "/available-models",
        verify=ssl.create_default_context(cafile=str(platform.home / "ca" / "ca.pem")),
    ).json()
    assert {m["model_id"] for m in catalogue} == {CHAT, "all-minilm-l6-v2"}


def test_a_pushed_app_gets_a_completion_from_the_local_model(
    platform: RunningPlatform, deployed: dict[str, Any]
) -> None:
    def answer() -> dict[str, Any] | None:
        try:
            r = httpx.get(
                platform.endpoints["router_http_url"] + "/",
                headers={"Host": "asker.localhost"},
                timeout=150,
            )
        except httpx.HTTPError:
            return None
        return r.json() if r.status_code == 200 else None  # type: ignore[no-any-return]

    body = wait_for(answer, 180, interval=0.5, what="the app's completion")
    assert body["object"] == "chat.completion" and body["model"] == CHAT
    assert body["choices"][0]["message"]["content"].strip()
    assert 0 < body["usage"]["completion_tokens"] <= 12


def test_an_agent_runs_a_command_in_a_one_off_dyno(
    platform: RunningPlatform, deployed: dict[str, Any]
) -> None:
    config = deployed["config"]
    ls = {
        "type": "heroku_tool",
        "name": "dyno_run_command",
        "runtime_params": {
            "target_app_name": "asker",
            "max_calls": 1,
            "tool_params": {"cmd": "ls", "description": "Lists the app's files."},
        },
    }
    body = {
        "model": CHAT,
        "messages": [{"role": "user", "content": "Which files does my app have?"}],
        "tools": [ls],
        "max_tokens_per_inference_request": 32,
    }
    with inference(platform, config["INFERENCE_URL"], config["INFERENCE_KEY"]) as c:
        r = c.post("/v1/agents/heroku", json=body, headers={"Accept": "text/event-stream"})
    assert r.status_code == 200, r.text
    data = sse_data(r.text)
    assert data[-1] == "[DONE]"
    events = [json.loads(d) for d in data[:-1]]
    assert [e["object"] for e in events][:2] == ["chat.completion", "tool.completion"]
    result = events[1]["choices"][0]["message"]
    payload = json.loads(result["content"].split("returned result: ", 1)[1])
    assert payload["isError"] is False, payload
    assert payload["content"][0]["text"].split() == ["Procfile", "ask.py"]
    # it was a real one-off of the app: the app's log says so
    log = platform.client().post("/apps/asker/log-sessions", json={"lines": 200}).json()
    lines = httpx.get(log["logplex_url"], timeout=30).text
    assert "Starting process with command `ls` by add-on inference-" in lines


def test_another_apps_dynos_are_refused(
    platform: RunningPlatform, deployed: dict[str, Any]
) -> None:
    api = platform.client()
    assert api.post("/apps", json={"name": "bystander"}).status_code == 201
    config = deployed["config"]
    tool = {
        "type": "heroku_tool",
        "name": "dyno_run_command",
        "runtime_params": {
            "target_app_name": "bystander",
            "max_calls": 1,
            "tool_params": {"cmd": "ls"},
        },
    }
    body = {
        "messages": [{"role": "user", "content": "List files."}],
        "tools": [tool],
        "max_tokens_per_inference_request": 48,
    }
    with inference(platform, config["INFERENCE_URL"], config["INFERENCE_KEY"]) as c:
        r = c.post("/v1/agents/heroku", json=body)
    events = [json.loads(d) for d in sse_data(r.text)[:-1]]
    tool_events = [e for e in events if e["object"] == "tool.completion"]
    assert tool_events, r.text
    text = tool_events[0]["choices"][0]["message"]["content"]
    assert "not attached to bystander" in text


MCP_SERVER = Path(__file__).with_name("stdlib_mcp_server.py")


def test_mcp_process_types_of_attached_apps_serve_an_agent(
    platform: RunningPlatform, deployed: dict[str, Any], tmp_path: Path
) -> None:
    api = platform.client()
    assert api.post("/apps", json={"name": "notes-mcp"}).status_code == 201
    push(
        platform,
        tmp_path,
        "notes-mcp",
        {
            "Procfile": "mcp-notes: python3 server.py\n",
            "server.py": MCP_SERVER.read_text(),
            "todo.note": "milk",
            "ideas.note": "spruce",
        },
    )
    addon = deployed["addon"]
    r = api.post(
        "/addon-attachments", json={"addon": {"name": addon["name"]}, "app": {"name": "notes-mcp"}}
    )
    assert r.status_code == 201, r.text
    config = deployed["config"]
    with inference(platform, config["INFERENCE_URL"], config["INFERENCE_KEY"]) as c:
        servers = c.get("/v1/mcp/servers").json()
        assert [s["process_type"] for s in servers] == ["mcp-notes"], servers
        server = servers[0]
        assert server["primitives_status"] == "synced", server
        name = f"{server['namespace']}/list_notes"
        assert [t["namespaced_name"] for t in server["tools"]] == [name]
        body = {
            "messages": [{"role": "user", "content": "Which notes are there?"}],
            "tools": [{"type": "mcp", "name": name, "runtime_params": {"max_calls": 1}}],
            "max_tokens_per_inference_request": 32,
        }
        r = c.post("/v1/agents/heroku", json=body)
    events = [json.loads(d) for d in sse_data(r.text)[:-1]]
    results = [e for e in events if e["object"] == "tool.completion"]
    assert results, r.text
    payload = json.loads(results[0]["choices"][0]["message"]["content"].split("result: ", 1)[1])
    assert payload["content"][0]["text"].split() == ["ideas.note", "todo.note"]

    # the MCP toolkit: one Streamable-HTTP endpoint at <INFERENCE_URL>/mcp over the servers
    async def toolkit() -> tuple[list[str], str]:
        ctx = ssl.create_default_context(cafile=str(platform.home / "ca" / "ca.pem"))
        headers = {"Authorization": f"Bearer {config['INFERENCE_KEY']}"}
        async with (
            httpx2.AsyncClient(verify=ctx, headers=headers, timeout=120) as http,
            streamable_http_client(config["INFERENCE_URL"] + "/mcp", http_client=http) as st,
            ClientSession(st[0], st[1]) as session,
        ):
            await session.initialize()
            names = [t.name for t in (await session.list_tools()).tools]
            result = await session.call_tool(name, {})
            return names, result.content[0].text  # type: ignore[union-attr]

    names, text = asyncio.run(toolkit())
    assert names == [name] and text.split() == ["ideas.note", "todo.note"]


def test_spruces_ai_commands(platform: RunningPlatform, deployed: dict[str, Any]) -> None:
    models = platform.cli("ai:models:list", check=True).stdout
    assert CHAT in models and "text-to-embedding" in models
    info = platform.cli("ai:models:info", "-a", "asker", check=True).stdout
    assert f"=== {CHAT}" in info and "Ready:" in info and "Usage (chat):" in info
    called = platform.cli(
        "ai:models:call", "-a", "asker", "-p", "Hi", "-j", "--opts", '{"max_tokens": 4}'
    )
    assert called.returncode == 0, called.stderr
    assert json.loads(called.stdout)["usage"]["completion_tokens"] <= 4
    url = deployed["config"]["INFERENCE_URL"]
    assert platform.cli("ai:mcp", "-a", "asker", check=True).stdout.strip() == url + "/mcp"
    tools = platform.cli("ai:tools:list", "-a", "asker", check=True).stdout
    assert "/list_notes" in tools
    missing = platform.cli("ai:models:call", "NOPE", "-a", "asker", "-p", "x")
    assert missing.returncode == 1
    assert "We can't find a model resource called NOPE on asker." in missing.stderr


def test_a_detach_gives_the_others_a_new_key(
    platform: RunningPlatform, deployed: dict[str, Any]
) -> None:
    api = platform.client()
    addon = deployed["addon"]
    r = api.post(
        "/addon-attachments",
        json={"addon": {"name": addon["name"]}, "app": {"name": "bystander"}, "name": "LENT"},
    )
    assert r.status_code == 201, r.text
    lent = api.get("/apps/bystander/config-vars").json()["LENT_KEY"]
    assert api.delete(f"/addon-attachments/{r.json()['id']}").status_code == 200
    assert "LENT_KEY" not in api.get("/apps/bystander/config-vars").json()
    kept = api.get("/apps/asker/config-vars").json()["INFERENCE_KEY"]
    assert kept != lent and api.get("/apps/notes-mcp/config-vars").json()["INFERENCE_KEY"] == kept

    def status(key: str) -> int:
        with inference(platform, deployed["config"]["INFERENCE_URL"], key) as c:
            return c.get(f"/models/{addon['id']}").status_code

    wait_for(lambda: status(lent) == 401 or None, 15, interval=0.5, what="the lent key refused")
    assert status(kept) == 200


def test_rotation_and_destroy_revoke_the_key(
    platform: RunningPlatform, deployed: dict[str, Any]
) -> None:
    api = platform.client()
    addon = deployed["addon"]
    old = api.get("/apps/asker/config-vars").json()["INFERENCE_KEY"]
    url = deployed["config"]["INFERENCE_URL"]
    r = api.post(f"/addons/{addon['id']}/actions/credentials-reset")
    assert r.status_code == 200, r.text
    new = api.get("/apps/asker/config-vars").json()["INFERENCE_KEY"]
    assert new != old and new.startswith("inf-")

    def status(key: str) -> int:
        with inference(platform, url, key) as c:
            return c.get(f"/models/{addon['id']}").status_code

    wait_for(lambda: status(old) == 401 or None, 15, interval=0.5, what="the old key refused")
    assert status(new) == 200
    # attached to notes-mcp as well: destroying it needs force, as on Heroku
    gone = api.request("DELETE", f"/apps/asker/addons/{addon['id']}", json={"force": True})
    assert gone.status_code == 200, gone.text
    assert "INFERENCE_KEY" not in api.get("/apps/notes-mcp/config-vars").json()
    assert "INFERENCE_KEY" not in api.get("/apps/asker/config-vars").json()
    wait_for(lambda: status(new) == 401 or None, 15, interval=0.5, what="the key revoked")


def test_a_restart_keeps_the_host_and_the_keys(platform: RunningPlatform) -> None:
    """Last: the module's platform is stopped and another started on its home."""
    api = platform.client()
    r = api.post("/apps/asker/addons", json={"plan": "heroku-inference:standard"}, timeout=240)
    assert r.status_code in (200, 201), r.text
    config = api.get("/apps/asker/config-vars").json()
    assert "INFERENCE_MODEL_ID" not in config  # standard: the request names the model
    url, key = config["INFERENCE_URL"], config["INFERENCE_KEY"]
    r = api.post(
        "/apps/asker/addons",
        json={"plan": f"heroku-inference:{CHAT}", "attachment": {"name": "LIMITED"}},
    )
    assert r.status_code in (200, 201), r.text
    limited = api.get("/apps/asker/config-vars").json()["LIMITED_KEY"]
    platform.stop()
    # the operator's catalogue now: the same models, the chat one limited to 2 requests/min
    models = platform.home.parent / "models.yaml"
    models.write_text(
        "models:\n"
        f"  - {{id: {CHAT}, type: text-to-text, backend: local, gguf: 'builtin:smollm2',"
        " requests_per_minute: 2}\n"
        "  - {id: all-minilm-l6-v2, type: text-to-embedding, backend: local,"
        " gguf: 'builtin:minilm', context: 512}\n"
    )
    again = start_platform(
        platform.home,
        extra_env={"SPRUCE_TUNING": json.dumps(TUNING)},
        extra_args=["--models", str(models)],
    )
    try:
        assert again.endpoints["inference_url"] == url
        body = {"model": CHAT, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}

        def completion() -> dict[str, Any] | None:
            try:
                with inference(again, url, key) as c:
                    r = c.post("/v1/chat/completions", json=body)
            except httpx.HTTPError:
                return None
            return r.json() if r.status_code == 200 else None  # type: ignore[no-any-return]

        answer = wait_for(completion, 120, interval=0.5, what="the inference host back")
        assert answer["model"] == CHAT
        with inference(again, url, key) as c:
            unnamed = c.post("/v1/chat/completions", json={"messages": body["messages"]})
        assert unnamed.status_code == 400 and "model" in unnamed.json()["error"]["message"]
        with inference(again, url, limited) as c:
            codes = [c.post("/v1/chat/completions", json=body) for _ in range(3)]
        assert [r.status_code for r in codes] == [200, 200, 429]
        assert codes[2].json()["error"]["type"] == "rate_limit_error"
        assert int(codes[2].headers["retry-after"]) > 0
    finally:
        again.stop()
