"""Heroku's AI plugin (`@heroku/plugin-ai` from npm), unchanged, against Spruce.

The plugin fixes https and port 443 for the inference host, so the platform serves it on
port 443 of a spare loopback address (`--inference-host`, as root); `spruce heroku-env`
gives the CLI `HEROKU_INFERENCE_HOST` and the CA. The models are the real local ones.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from compat_support import HerokuCLI, free_loopback_443, link_ai_plugin, start_inference_platform
from support import RunningPlatform

pytestmark = pytest.mark.slow
CHAT = "smollm2-135m-instruct"
EMBED = "all-minilm-l6-v2"
HOST = free_loopback_443()

if HOST is None:
    pytest.skip(
        "the AI plugin needs port 443 of a loopback address (run as root)", allow_module_level=True
    )


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    assert HOST is not None
    p = start_inference_platform(tmp_path_factory.mktemp("ai-home"), HOST)
    yield p
    p.stop()


@pytest.fixture(scope="module")
def heroku(
    platform: RunningPlatform, heroku_bin: Path, tmp_path_factory: pytest.TempPathFactory
) -> HerokuCLI:
    cli = HerokuCLI(platform, heroku_bin, tmp_path_factory.mktemp("heroku-home"))
    link_ai_plugin(cli)
    assert cli.env["HEROKU_INFERENCE_HOST"] == HOST
    return cli


def test_models_list_before_any_model_resource(
    heroku: HerokuCLI, platform: RunningPlatform
) -> None:
    """The host named by --inference-host answers from the platform's start: the plugin
    lists the models there before anything is provisioned (first in this module)."""
    assert platform.client().get("/addons").json() == []
    out = heroku("ai:models:list").stdout
    assert re.search(rf"{CHAT}\s+text-to-text\s+us", out), out


@pytest.fixture(scope="module")
def app(heroku: HerokuCLI, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A deployed app (agents run their tools in its one-off dynos) with a chat model."""
    name = f"ai-{uuid.uuid4().hex[:6]}"
    repo = tmp_path_factory.mktemp("repo") / name
    repo.mkdir()
    (repo / "Procfile").write_text("worker: sleep 1000000\n")
    (repo / "notes.txt").write_text("spruce\n")
    heroku.git("init", "-q", "-b", "main", cwd=repo)
    heroku.git("add", "-A", cwd=repo)
    heroku.git("commit", "-q", "-m", "first", cwd=repo)
    heroku("apps:create", name, cwd=repo)
    heroku.git("push", "heroku", "main", cwd=repo)
    out = heroku("ai:models:create", CHAT, "-a", name, timeout=300)
    text = out.stdout + out.stderr
    assert f"Creating heroku-inference:{CHAT} on {name}... metered" in text
    assert re.search(r"Resource name: inference-[a-z]+-\d+", text), text
    assert f"heroku config -a {name}" in text
    return name


def test_models_create_sets_the_config_vars(heroku: HerokuCLI, app: str) -> None:
    config = json.loads(heroku("config", "-a", app, "--json").stdout)
    assert config["INFERENCE_URL"] == f"https://{HOST}"
    assert config["INFERENCE_MODEL_ID"] == CHAT
    assert config["INFERENCE_KEY"].startswith("inf-")


def test_models_list(heroku: HerokuCLI) -> None:
    out = heroku("ai:models:list").stdout
    assert re.search(rf"{CHAT}\s+text-to-text\s+us", out), out
    assert re.search(rf"{EMBED}\s+text-to-embedding\s+us", out), out


def test_models_info(heroku: HerokuCLI, app: str) -> None:
    out = heroku("ai:models:info", "-a", app).stdout
    assert f"=== {CHAT}" in out
    assert re.search(rf"Base Model ID:?\s+{CHAT}", out), out
    assert re.search(r"Ready:?\s+Yes", out), out
    assert re.search(r"Model Alias:?\s+INFERENCE", out), out


def test_models_call_chat(heroku: HerokuCLI, app: str) -> None:
    out = heroku(
        "ai:models:call",
        "INFERENCE",
        "-a",
        app,
        "-p",
        "Say hello.",
        "--opts",
        json.dumps({"max_tokens": 12}),
        timeout=180,
    )
    assert out.stdout.strip(), out.stderr
    whole = json.loads(
        heroku(
            "ai:models:call",
            "INFERENCE",
            "-a",
            app,
            "-p",
            "Hi",
            "--json",
            "--opts",
            json.dumps({"max_tokens": 4}),
            timeout=180,
        ).stdout
    )
    assert whole["object"] == "chat.completion" and whole["model"] == CHAT
    assert whole["usage"]["completion_tokens"] <= 4


def test_models_call_embeddings(heroku: HerokuCLI, app: str) -> None:
    out = heroku("ai:models:create", EMBED, "-a", app, "--as", "EMBED", timeout=300)
    assert "Resource alias: EMBED" in out.stdout + out.stderr
    vector = heroku("ai:models:call", "EMBED", "-a", app, "-p", "hello world").stdout
    values = [float(v) for v in vector.strip().split(",")]
    assert len(values) == 384 and any(values)


def test_agents_call_runs_a_tool_in_a_one_off_dyno(heroku: HerokuCLI, app: str) -> None:
    ls = {
        "type": "heroku_tool",
        "name": "dyno_run_command",
        "runtime_params": {
            "target_app_name": app,
            "max_calls": 1,
            "tool_params": {"cmd": "ls", "description": "Lists the app's files."},
        },
    }
    out = heroku(
        "ai:agents:call",
        "INFERENCE",
        "-a",
        app,
        "--messages",
        json.dumps([{"role": "user", "content": "Which files does my app have?"}]),
        "--opts",
        json.dumps({"tools": [ls], "max_tokens_per_inference_request": 48}),
        timeout=300,
    ).stdout
    assert "Procfile" in out and "notes.txt" in out, out


def test_tools_list_and_mcp(heroku: HerokuCLI, app: str) -> None:
    out = heroku("ai:tools:list", "INFERENCE", "-a", app)
    assert "No AI tools are currently available for this app" in out.stdout + out.stderr
    mcp = heroku("ai:mcp", "INFERENCE", "-a", app).stdout.strip()
    assert mcp == f"https://{HOST}/mcp"


def test_models_attach_detach_and_destroy(
    heroku: HerokuCLI, app: str, platform: RunningPlatform
) -> None:
    api = platform.client()  # checks through the API: each CLI start costs seconds here
    other = f"{app}-b"
    assert api.post("/apps", json={"name": other}).status_code == 201
    heroku("ai:models:attach", "EMBED", "-s", app, "-t", other, "--as", "SHARED")
    shared = api.get(f"/apps/{other}/config-vars").json()
    assert shared["SHARED_MODEL_ID"] == EMBED and shared["SHARED_KEY"].startswith("inf-")
    heroku("ai:models:detach", "SHARED", "-a", other)
    assert "SHARED_KEY" not in api.get(f"/apps/{other}/config-vars").json()
    embed = next(
        a for a in api.get(f"/apps/{app}/addons").json() if a["plan"]["name"].endswith(EMBED)
    )
    out = heroku("ai:models:destroy", embed["name"], "-a", app, "--confirm", app)
    assert f"Destroying {embed['name']}" in out.stdout + out.stderr
    config = api.get(f"/apps/{app}/config-vars").json()
    assert "EMBED_KEY" not in config and "INFERENCE_KEY" in config
