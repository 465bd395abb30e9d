"""Heroku's MCP server's AI tools against Spruce: the server registers them when its CLI
has @heroku/plugin-ai, linked here into the CLI's HOME (as test_heroku_ai_plugin.py does,
with the inference host on port 443 of a spare loopback address). Each call is checked
against the platform; the model is the real local one.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from compat_support import HerokuCLI, free_loopback_443, link_ai_plugin, start_inference_platform
from mcp import ClientSession
from mcp.client.stdio import stdio_client
from support import RunningPlatform
from test_heroku_mcp import server_params, text_of

pytestmark = pytest.mark.slow
CHAT = "smollm2-135m-instruct"
HOST = free_loopback_443()

if HOST is None:
    pytest.skip(
        "the AI plugin needs port 443 of a loopback address (run as root)", allow_module_level=True
    )


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    assert HOST is not None
    p = start_inference_platform(tmp_path_factory.mktemp("mcp-ai-home"), HOST)
    yield p
    p.stop()


@pytest.fixture(scope="module")
def heroku(
    platform: RunningPlatform, heroku_bin: Path, tmp_path_factory: pytest.TempPathFactory
) -> HerokuCLI:
    cli = HerokuCLI(platform, heroku_bin, tmp_path_factory.mktemp("heroku-home"))
    link_ai_plugin(cli)
    cli("plugins:inspect", "@heroku/plugin-ai")  # what Heroku's server asks before it lists
    return cli


AI_TOOLS = {"list_ai_available_models", "provision_ai_model", "make_ai_inference"}
ATTEMPTS = 3
CHECK_LIMIT = 5.0  # Heroku's server: spawnSync('heroku', ['plugins:inspect', ...], 5000 ms)


def inspect_seconds(heroku: HerokuCLI) -> float:
    """How long the plugin check takes when made as Heroku's server makes it: while the
    REPL it has just spawned (`heroku repl`) is starting too."""
    repl = subprocess.Popen(
        [str(heroku.bin_dir / "heroku"), "repl"],
        env=heroku.env,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        start = time.monotonic()
        heroku("plugins:inspect", "@heroku/plugin-ai")
        return time.monotonic() - start
    finally:
        repl.kill()
        repl.wait()


async def _ai_calls(
    heroku: HerokuCLI, calls: list[tuple[str, dict[str, Any]]], checks: list[float], log: Path
) -> dict[str, Any]:
    """Heroku's server registers the AI tools only if `heroku plugins:inspect` exits 0
    within 5 s (its fixed limit), and makes that check while its REPL starts: two CLI
    starts at once, which on two loaded cores can take longer. A server that skipped them
    is started again; each time the check is also timed as the server makes it."""
    out: dict[str, Any] = {}
    for _ in range(ATTEMPTS):
        checks.append(await asyncio.to_thread(inspect_seconds, heroku))
        with log.open("a") as errlog:
            async with stdio_client(server_params(heroku), errlog=errlog) as (read, write):
                async with ClientSession(read, write) as s:
                    await s.initialize()
                    out["__tools__"] = {t.name for t in (await s.list_tools()).tools}
                    if not AI_TOOLS <= out["__tools__"]:
                        continue
                    for name, args in calls:
                        out[name] = await s.call_tool(name, args)
                    return out
    return out


def test_the_ai_tools(heroku: HerokuCLI, platform: RunningPlatform, tmp_path: Path) -> None:
    api = platform.client()
    name = f"mcp-ai-{uuid.uuid4().hex[:6]}"
    api.post("/apps", json={"name": name}).raise_for_status()
    opts = {
        "model": CHAT,
        "messages": [{"role": "user", "content": "Say hello."}],
        "max_tokens_per_inference_request": 12,
    }
    calls: list[tuple[str, dict[str, Any]]] = [
        ("list_ai_available_models", {}),
        ("provision_ai_model", {"app": name, "modelName": CHAT}),
        ("make_ai_inference", {"app": name, "modelResource": "INFERENCE", "opts": opts}),
    ]
    checks: list[float] = []
    log = tmp_path / "server.stderr"
    results = asyncio.run(asyncio.wait_for(_ai_calls(heroku, calls, checks, log), 900))
    if not AI_TOOLS <= results["__tools__"]:
        # Heroku's server's own limit, not Spruce: the plugin is linked and its check
        # succeeds (the fixture ran it), only slower than 5 s when made beside the REPL's
        # start on this machine. docs/compat.md says so.
        said = log.read_text()
        assert said.count("@heroku/plugin-ai: NOT INSTALLED - Skipping AI tools") == ATTEMPTS
        assert max(checks) > CHECK_LIMIT, f"the plugin check took {checks} s"
        pytest.xfail(
            "Heroku's server skipped its AI tools: its 5 s plugin check, made while its "
            f"REPL starts, took {', '.join(f'{c:.1f}' for c in checks)} s here"
        )

    models = results["list_ai_available_models"]
    assert not models.is_error, text_of(models)
    assert CHAT in text_of(models) and "all-minilm-l6-v2" in text_of(models)

    made = results["provision_ai_model"]
    assert not made.is_error, text_of(made)
    addons = api.get(f"/apps/{name}/addons").json()
    assert [a["plan"]["name"] for a in addons] == [f"heroku-inference:{CHAT}"]
    assert addons[0]["name"] in text_of(made)
    config = api.get(f"/apps/{name}/config-vars").json()
    assert config["INFERENCE_MODEL_ID"] == CHAT and config["INFERENCE_KEY"].startswith("inf-")

    answer = results["make_ai_inference"]
    assert not answer.is_error, text_of(answer)
    out = text_of(answer)
    assert out.strip() and config["INFERENCE_KEY"] not in out
