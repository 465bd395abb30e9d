"""The inference API of a real server process with the real local models (SmolLM2, MiniLM)."""

from __future__ import annotations

import asyncio
import base64
import json
import math
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from inference_harness import InferenceProcess, LocalLink, grant, local_app, sse_data, usage_of

pytestmark = pytest.mark.slow
CHAT = "smollm2-135m-instruct"
EMBED = "all-minilm-l6-v2"


class Env:
    def __init__(self, root: Path) -> None:
        self.link = LocalLink()
        self.app = local_app(root, "demo")
        self.other = local_app(root, "other")
        self.link.add_app(self.app)
        self.link.add_app(self.other)
        self.link.add_key("inf-chat", grant(self.app, CHAT, "addon-chat"))
        self.link.add_key("inf-embed", grant(self.app, EMBED, "addon-embed"))
        self.link.add_key("inf-standard", grant(self.other, None, "addon-std"))
        self.link.add_key("inf-other-chat", grant(self.other, CHAT, "addon-other-chat"))
        self.link.add_key(
            "inf-limited", grant(self.other, CHAT, "addon-lim", requests_per_minute=2)
        )
        self.server = InferenceProcess(root / "server", self.link).start()


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    e = Env(tmp_path_factory.mktemp("inference"))
    yield e
    e.server.stop()


def test_available_models_lists_the_default_catalogue(env: Env) -> None:
    with env.server.client() as c:
        r = c.get("/available-models")
    assert r.status_code == 200
    assert r.json() == [
        {"model_id": CHAT, "type": ["text-to-text"], "regions": ["us"]},
        {"model_id": EMBED, "type": ["text-to-embedding"], "regions": ["us"]},
    ]


def test_unknown_key_is_refused_in_herokus_shape(env: Env) -> None:
    with env.server.client("inf-nope") as c:
        r = c.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 401
    assert r.json() == {
        "error": {
            "code": 401,
            "message": "Invalid API key provided",
            "type": "authentication_error",
        }
    }
    with env.server.client() as c:
        assert c.get("/v1/mcp/servers").status_code == 401


def test_chat_completion_from_the_local_model(env: Env) -> None:
    with env.server.client("inf-chat") as c:
        r = c.post(
            "/v1/chat/completions",
            json={
                "model": CHAT,
                "messages": [{"role": "user", "content": "Say hello."}],
                "max_tokens": 16,
            },
        )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "chat.completion" and body["model"] == CHAT
    choice = body["choices"][0]
    assert choice["message"]["role"] == "assistant" and choice["message"]["content"].strip()
    assert choice["finish_reason"] in ("stop", "length")
    u = body["usage"]
    assert u["prompt_tokens"] > 0 and 0 < u["completion_tokens"] <= 16
    assert u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"]
    # usage reached the platform through the link, per app and model resource
    rec = usage_of(env.link, addon_id="addon-chat")[0]
    assert (rec.app_id, rec.model_id, rec.kind) == ("id-demo", CHAT, "chat")
    assert rec.completion_tokens == u["completion_tokens"]


def test_model_of_another_resource_is_forbidden(env: Env) -> None:
    with env.server.client("inf-chat") as c:
        r = c.post(
            "/v1/chat/completions",
            json={"model": EMBED, "messages": [{"role": "user", "content": "x"}]},
        )
    assert r.status_code == 403
    assert r.json()["error"]["type"] == "authorization_error"


def test_standard_plan_needs_a_model(env: Env) -> None:
    with env.server.client("inf-standard") as c:
        r = c.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "x"}]})
        assert r.status_code == 400 and "model is required" in r.json()["error"]["message"]
        r = c.post("/v1/embeddings", json={"model": EMBED, "input": "hello"})
        assert r.status_code == 200


def test_streaming_chat_is_openai_sse(env: Env) -> None:
    with env.server.client("inf-chat") as c:
        with c.stream(
            "POST",
            "/v1/chat/completions",
            json={
                "messages": [{"role": "user", "content": "Count from one to five."}],
                "max_tokens": 24,
                "stream": True,
            },
        ) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            text = r.read().decode()
    data = sse_data(text)
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    assert all(ch["object"] == "chat.completion.chunk" and ch["model"] == CHAT for ch in chunks)
    content = "".join(
        (ch["choices"][0]["delta"].get("content") or "") for ch in chunks if ch["choices"]
    )
    assert content.strip()
    assert chunks[-1]["usage"]["completion_tokens"] > 0


def test_structured_output_follows_the_schema(env: Env) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
        "required": ["city", "population"],
    }
    with env.server.client("inf-chat") as c:
        r = c.post(
            "/v1/chat/completions",
            json={
                "messages": [{"role": "user", "content": "Name a large city and its population."}],
                "max_tokens": 60,
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "city", "schema": schema},
                },
            },
        )
    assert r.status_code == 200, r.text
    out = json.loads(r.json()["choices"][0]["message"]["content"])
    assert isinstance(out["city"], str) and isinstance(out["population"], int)


def test_tools_are_forced_through_a_schema_for_the_local_model(env: Env) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Get the weather of a city",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                },
            },
        }
    ]
    req = {
        "messages": [{"role": "user", "content": "What is the weather in Paris?"}],
        "tools": tools,
        "tool_choice": "required",
        "max_tokens": 60,
    }
    with env.server.client("inf-chat") as c:
        r = c.post("/v1/chat/completions", json=req)
        assert r.status_code == 200, r.text
        choice = r.json()["choices"][0]
        assert choice["finish_reason"] == "tool_calls"
        call = choice["message"]["tool_calls"][0]
        assert call["type"] == "function" and call["function"]["name"] == "get_weather"
        assert isinstance(json.loads(call["function"]["arguments"])["city"], str)
        # streamed, the same call arrives as a tool_calls delta
        r = c.post("/v1/chat/completions", json={**req, "stream": True})
        chunks = [json.loads(d) for d in sse_data(r.text)[:-1]]
        deltas = [ch["choices"][0]["delta"] for ch in chunks if ch["choices"]]
        assert any(d.get("tool_calls") for d in deltas)
        assert [ch["choices"][0]["finish_reason"] for ch in chunks if ch["choices"]][
            -1
        ] == "tool_calls"


def test_bad_requests_get_clear_400s(env: Env) -> None:
    with env.server.client("inf-chat") as c:
        cases = [
            ({}, "messages is required"),
            ({"messages": [{"role": "wizard", "content": "x"}]}, "role must be one of"),
            ({"messages": [{"role": "user", "content": "x"}], "max_tokens": "many"}, "max_tokens"),
            (
                {"messages": [{"role": "user", "content": "x"}], "tool_choice": "sometimes"},
                "tool_choice",
            ),
        ]
        for body, words in cases:
            r = c.post("/v1/chat/completions", json=body)
            assert r.status_code == 400, body
            assert words in r.json()["error"]["message"]
            assert r.json()["error"]["type"] == "invalid_request_error"
        r = c.post(
            "/v1/chat/completions",
            content=b"{not json",
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 400 and "not valid JSON" in r.json()["error"]["message"]
        r = c.post(
            "/v1/chat/completions",
            json={"messages": [{"role": "user", "content": "word " * 3000}], "max_tokens": 8},
        )
        assert r.status_code == 400 and "context" in r.json()["error"]["message"]
        assert c.get("/v1/nothing").json()["error"]["code"] == 404


def test_embeddings_send_both_keys(env: Env) -> None:
    with env.server.client("inf-embed") as c:
        r = c.post(
            "/v1/embeddings",
            json={
                "model": EMBED,
                "input": ["A cat sits on the mat.", "A kitten is on a rug.", "Stock markets fell."],
            },
        )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "list" and body["model"] == EMBED
    vecs = [d["embedding"] for d in body["data"]]
    assert all(d["embeddings"] == d["embedding"] for d in body["data"])
    assert [d["index"] for d in body["data"]] == [0, 1, 2] and len(vecs[0]) == 384

    def cos(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b, strict=True)) / math.sqrt(
            sum(x * x for x in a) * sum(y * y for y in b)
        )

    assert cos(vecs[0], vecs[1]) > cos(vecs[0], vecs[2]) + 0.3  # a real sentence model
    assert body["usage"]["prompt_tokens"] > 0


def test_embedding_types_and_base64(env: Env) -> None:
    with env.server.client("inf-embed") as c:
        flt = c.post("/v1/embeddings", json={"input": "hello world"}).json()["data"][0]["embedding"]
        b64 = c.post(
            "/v1/embeddings", json={"input": "hello world", "encoding_format": "base64"}
        ).json()
        raw = base64.b64decode(b64["data"][0]["embedding"])
        assert struct.unpack(f"<{len(flt)}f", raw) == pytest.approx(flt, abs=1e-6)
        i8 = c.post(
            "/v1/embeddings", json={"input": "hello world", "embedding_type": "int8"}
        ).json()
        assert i8["data"][0]["embedding"] == [round(v * 127) for v in flt]
        ub = c.post(
            "/v1/embeddings", json={"input": "hello world", "embedding_type": "ubinary"}
        ).json()
        assert len(ub["data"][0]["embedding"]) == 48
        r = c.post("/v1/embeddings", json={"input": ["x"] * 97})
        assert r.status_code == 400 and "at most 96" in r.json()["error"]["message"]


def test_images_without_an_image_model_name_what_to_configure(env: Env) -> None:
    with env.server.client("inf-standard") as c:
        r = c.post(
            "/v1/images/generations",
            json={"model": "stable-image-ultra", "prompt": "a spruce tree"},
        )
    assert r.status_code == 400
    msg = r.json()["error"]["message"]
    assert "No image model is configured" in msg and "text-to-image" in msg and "--models" in msg


def test_requests_per_minute_limit_answers_429(env: Env) -> None:
    body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}
    with env.server.client("inf-limited") as c:
        codes = [c.post("/v1/chat/completions", json=body) for _ in range(3)]
    assert [r.status_code for r in codes] == [200, 200, 429]
    assert codes[2].json()["error"] == {
        "code": 429,
        "message": "Rate limit exceeded (requests per minute)",
        "type": "rate_limit_error",
    }
    assert int(codes[2].headers["retry-after"]) >= 1


def test_model_info_and_status(env: Env) -> None:
    with env.server.client("inf-chat") as c:
        info = c.get("/models/addon-chat").json()
        assert (
            info["model_id"] == CHAT
            and info["ready"] == "Yes"
            and "tokens/s" in info["avg_performance"]
        )
        assert c.get("/models/addon-other").status_code == 404
        status = c.get("/spruce/status").json()
    m = status["models"][CHAT]
    assert m["slots"] == 4 and m["running"] == 0 and m["waiting"] == 0 and m["served"] >= 1


def test_revoked_key_stops_working(env: Env) -> None:
    env.link.add_key("inf-temp", grant(env.app, CHAT, "addon-temp"))
    body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}
    with env.server.client("inf-temp") as c:
        assert c.post("/v1/chat/completions", json=body).status_code == 200
        env.link.revoke_key("inf-temp")
        time.sleep(0.6)  # key_cache_seconds in the harness
        assert c.post("/v1/chat/completions", json=body).status_code == 401


def test_one_apps_long_generations_do_not_starve_another(env: Env) -> None:
    long = {
        "messages": [{"role": "user", "content": "Tell a story."}],
        "max_tokens": 96,
        "ignore_eos": True,
    }
    short = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4, "ignore_eos": True}

    async def run() -> tuple[list[float], float, dict[str, int]]:
        ctx = env.server.ssl_context()
        async with (
            httpx.AsyncClient(
                base_url=env.server.url,
                verify=ctx,
                timeout=120,
                headers={"Authorization": "Bearer inf-chat"},
            ) as a,
            httpx.AsyncClient(
                base_url=env.server.url,
                verify=ctx,
                timeout=120,
                headers={"Authorization": "Bearer inf-other-chat"},
            ) as b,
        ):
            t0 = time.monotonic()

            async def one_long() -> float:
                r = await a.post("/v1/chat/completions", json=long)
                assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] == 96
                return time.monotonic() - t0

            tasks = [asyncio.create_task(one_long()) for _ in range(4)]
            while (await a.get("/spruce/status")).json()["models"][CHAT]["yours"] != {
                "running": 3,
                "waiting": 1,
            }:
                await asyncio.sleep(0.05)
            seen = (await a.get("/spruce/status")).json()["models"][CHAT]["yours"]
            r = await b.post("/v1/chat/completions", json=short)
            assert r.status_code == 200
            b_done = time.monotonic() - t0
            return list(await asyncio.gather(*tasks)), b_done, seen

    a_done, b_done, seen = asyncio.run(run())
    assert seen == {"running": 3, "waiting": 1}  # visible: demo holds 3 of 4 slots, 1 queued
    assert b_done < min(a_done)  # the other app was served beside demo's generations


def test_a_closed_stream_stops_generating_and_frees_its_slot(env: Env) -> None:
    body = {
        "messages": [{"role": "user", "content": "Go on."}],
        "max_tokens": 1000,
        "ignore_eos": True,
        "stream": True,
    }
    with env.server.client("inf-chat") as c:
        with c.stream("POST", "/v1/chat/completions", json=body) as r:
            lines = r.iter_lines()
            got = [next(lines) for _ in range(6)]
            assert any(line.startswith("data: ") for line in got)
            assert c.get("/spruce/status").json()["models"][CHAT]["yours"]["running"] == 1
        # the client went away after a few tokens: the slot is back long before 1000 tokens
        deadline = time.monotonic() + 5
        while (
            c.get("/spruce/status").json()["models"][CHAT]["running"]
            and time.monotonic() < deadline
        ):
            time.sleep(0.05)
        assert c.get("/spruce/status").json()["models"][CHAT]["running"] == 0
    # and it was accounted for what it generated, far from 1000 tokens
    cut = [u for u in usage_of(env.link, addon_id="addon-chat") if u.prompt_tokens == 0]
    assert cut and 0 < cut[-1].completion_tokens < 200
