"""Upstream models: a second Spruce inference server is the OpenAI-compatible upstream.

Server A serves the local models; server B's catalogue forwards to A (chat streamed or
not, embeddings) and to a small image endpoint, with each upstream's own key and model name.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from inference_harness import InferenceProcess, LocalLink, grant, local_app, sse_data, usage_of

pytestmark = pytest.mark.slow


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + b"\x08\x02\x00\x00\x00"
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


class ImageUpstream(BaseHTTPRequestHandler):
    seen: list[tuple[str, dict[str, Any]]] = []

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        ImageUpstream.seen.append((self.headers.get("Authorization", ""), body))
        out = json.dumps(
            {
                "created": 1,
                "data": [
                    {
                        "b64_json": base64.b64encode(png(2, 2, (0, 128, 0))).decode(),
                        "revised_prompt": body["prompt"],
                    }
                ],
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args: Any) -> None:
        pass


class Env:
    def __init__(self, root: Path) -> None:
        self.link_a = LocalLink()
        app_a = local_app(root, "gateway")
        self.link_a.add_app(app_a)
        self.link_a.add_key("inf-a-chat", grant(app_a, "smollm2-135m-instruct", "a-chat"))
        self.link_a.add_key("inf-a-std", grant(app_a, None, "a-std"))
        self.a = InferenceProcess(root / "a", self.link_a).start()
        self.images = ThreadingHTTPServer(("127.0.0.1", 0), ImageUpstream)
        threading.Thread(target=self.images.serve_forever, daemon=True).start()
        models = [
            {
                "id": "big-chat",
                "type": "text-to-text",
                "backend": "upstream",
                "url": self.a.url + "/v1",
                "api_key_env": "UPSTREAM_A_KEY",
                "model": "smollm2-135m-instruct",
                "ca_file": self.a.ca_file,
                "max_tokens": 64,
            },
            {
                "id": "big-embed",
                "type": "text-to-embedding",
                "backend": "upstream",
                "url": self.a.url + "/v1",
                "api_key_env": "UPSTREAM_A_STD",
                "model": "all-minilm-l6-v2",
                "ca_file": self.a.ca_file,
            },
            {
                "id": "stable-image-ultra",
                "type": "text-to-image",
                "backend": "upstream",
                "url": f"http://127.0.0.1:{self.images.server_address[1]}/v1",
                "api_key_env": "UPSTREAM_IMG",
                "model": "painter-9",
            },
        ]
        # A forces tool calls through a schema and answers real `tool_calls`: to B, an
        # upstream with native tool calling
        models.append(dict(models[0], id="native-chat", native_tools=True))
        self.link_b = LocalLink()
        app_b = local_app(root, "shop")
        (app_b.directory / "catalog.csv").write_text("sku,name\n")
        self.link_b.add_app(app_b)
        self.link_b.add_key("inf-b", grant(app_b, None, "b-std"))
        os.environ.update(
            UPSTREAM_A_KEY="inf-a-chat", UPSTREAM_A_STD="inf-a-std", UPSTREAM_IMG="img-secret"
        )
        # as root, B also shows the inference host on 443 of a spare loopback address
        # (what Heroku's AI plugin needs); 127.0.0.3 is reserved for that on this machine
        on_443 = os.geteuid() == 0
        self.b = InferenceProcess(
            root / "b",
            self.link_b,
            models=models,
            host="127.0.0.3" if on_443 else "127.0.0.1",
            port=443 if on_443 else None,
        ).start()


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    e = Env(tmp_path_factory.mktemp("upstream"))
    yield e
    e.b.stop()
    e.a.stop()
    e.images.shutdown()


def test_catalogue_of_the_forwarding_server(env: Env) -> None:
    if os.geteuid() == 0:
        assert env.b.url == "https://127.0.0.3:443"
    with env.b.client() as c:
        assert [m["model_id"] for m in c.get("/available-models").json()] == [
            "big-chat",
            "big-embed",
            "stable-image-ultra",
            "native-chat",
        ]


def test_chat_is_forwarded_under_the_catalogue_name(env: Env) -> None:
    with env.b.client("inf-b") as c:
        r = c.post(
            "/v1/chat/completions",
            json={
                "model": "big-chat",
                "messages": [{"role": "user", "content": "Say hi."}],
                "max_tokens": 12,
            },
        )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == "big-chat" and body["choices"][0]["message"]["content"]
    # A saw the request under its own key and model name, and accounted for it
    (usage,) = usage_of(env.link_a, addon_id="a-chat")
    assert (
        usage.model_id == "smollm2-135m-instruct"
        and usage.completion_tokens == body["usage"]["completion_tokens"]
    )
    (mine,) = usage_of(env.link_b, kind="chat")
    assert mine.model_id == "big-chat" and mine.completion_tokens == usage.completion_tokens


def test_streaming_is_forwarded_chunk_by_chunk(env: Env) -> None:
    with env.b.client("inf-b") as c:
        with c.stream(
            "POST",
            "/v1/chat/completions",
            json={
                "model": "big-chat",
                "messages": [{"role": "user", "content": "Count to three."}],
                "max_tokens": 16,
                "stream": True,
            },
        ) as r:
            assert r.status_code == 200
            data = sse_data(r.read().decode())
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    assert len(chunks) > 3 and all(ch["model"] == "big-chat" for ch in chunks)
    assert chunks[-1]["usage"]["completion_tokens"] > 0


def test_tools_through_an_upstream_without_native_tool_calls(env: Env) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "lookup",
                "parameters": {
                    "type": "object",
                    "properties": {"q": {"type": "string"}},
                    "required": ["q"],
                },
            },
        }
    ]
    with env.b.client("inf-b") as c:
        r = c.post(
            "/v1/chat/completions",
            json={
                "model": "big-chat",
                "messages": [{"role": "user", "content": "Look up spruce."}],
                "tools": tools,
                "tool_choice": "required",
            },
        )
    choice = r.json()["choices"][0]
    assert (
        choice["finish_reason"] == "tool_calls"
        and choice["message"]["tool_calls"][0]["function"]["name"] == "lookup"
    )


def test_embeddings_are_forwarded(env: Env) -> None:
    with env.b.client("inf-b") as c:
        r = c.post("/v1/embeddings", json={"model": "big-embed", "input": ["one", "two"]})
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert len(data) == 2 and len(data[0]["embedding"]) == 384 and r.json()["model"] == "big-embed"


def test_images_are_forwarded_with_the_upstreams_key_and_model(env: Env) -> None:
    with env.b.client("inf-b") as c:
        r = c.post(
            "/v1/images/generations",
            json={"model": "stable-image-ultra", "prompt": "a spruce", "aspect_ratio": "1:1"},
        )
    assert r.status_code == 200, r.text
    img = base64.b64decode(r.json()["data"][0]["b64_json"])
    assert img.startswith(b"\x89PNG")
    auth, sent = ImageUpstream.seen[-1]
    assert (
        auth == "Bearer img-secret"
        and sent["model"] == "painter-9"
        and sent["prompt"] == "a spruce"
    )


def test_upstream_errors_name_the_model_not_the_key(env: Env) -> None:
    env.link_a.revoke_key("inf-a-std")  # the upstream now refuses B's key
    time.sleep(0.6)
    with env.b.client("inf-b") as c:
        r = c.post("/v1/embeddings", json={"model": "big-embed", "input": "x"})
    assert r.status_code == 502
    msg = r.json()["error"]["message"]
    assert "big-embed" in msg and "401" in msg and "inf-a-std" not in msg


def test_agent_on_an_upstream_with_native_tool_calls(env: Env) -> None:
    ls = {
        "type": "heroku_tool",
        "name": "dyno_run_command",
        "runtime_params": {"target_app_name": "shop", "max_calls": 1, "tool_params": {"cmd": "ls"}},
    }
    body = {
        "model": "native-chat",
        "messages": [{"role": "user", "content": "What files are there?"}],
        "tools": [ls],
        "max_tokens_per_inference_request": 32,
        "temperature": 0,  # greedy: tool_choice is auto here, the same choice every run
    }
    with env.b.client("inf-b") as c:
        r = c.post("/v1/agents/heroku", json=body)
    assert r.status_code == 200, r.text
    events = [json.loads(d) for d in sse_data(r.text)[:-1]]
    # B passed the tools through (native), A forced the call, B ran it in B's "dyno"
    assert events[0]["choices"][0]["finish_reason"] == "tool_calls"
    assert events[0]["model"] == "native-chat"
    assert "catalog.csv" in events[1]["choices"][0]["message"]["content"]
    assert ("shop", "ls", "standard-1x", 120) in env.link_b.commands
