"""Local models, direct through xllamacpp and through Spruce's inference server, one run.

Usage: python benchmarks/inference/run.py [--runs 5] [--tokens 128] [--out results.json]

The reference is the same GGUF loaded in this process by xllamacpp with the settings the
server uses (one compute thread, 4 slots, 2048 tokens a slot). The server is a real
`python -m spruce.inference serve` process over HTTPS, with its link served by LocalLink.
Direct and server runs alternate, so a change in the machine's load hits both alike.

- one stream: time to first token and tokens/s (fixed length: ignore_eos) -> overhead;
- embeddings/s: 32 texts in one request, and one text a request;
- eight streams from eight apps at once: per-stream finish times, Jain's fairness index of
  per-stream throughput, and aggregate tokens/s, for llama.cpp's own queue (direct) and
  Spruce's fair slots.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests" / "integration" / "inference"))

import httpx  # noqa: E402
from inference_harness import InferenceProcess, grant, local_app  # noqa: E402

from spruce.inference.backends.gguf_files import minilm_path, smollm2_path  # noqa: E402
from spruce.inference.locallink import LocalLink  # noqa: E402

CHAT, EMBED = "smollm2-135m-instruct", "all-minilm-l6-v2"
PROMPT = [{"role": "user", "content": "Write a short story about a spruce tree in winter."}]
TEXTS = [
    f"The quick brown fox number {i} jumps over the lazy dog near the river bank."
    for i in range(32)
]


def direct_servers(cache: Path) -> tuple[Any, Any]:
    import xllamacpp

    def params(path: Path, slots: int, ctx: int) -> Any:
        p = xllamacpp.CommonParams()
        p.model.path = str(path)
        p.n_parallel = slots
        p.n_ctx = ctx * slots
        p.cpuparams.n_threads = p.cpuparams_batch.n_threads = 1
        p.verbosity = -1
        return p

    chat = xllamacpp.Server(params(smollm2_path(), 4, 2048))
    e = params(minilm_path(cache), 4, 512)
    e.embedding = True
    e.pooling_type = xllamacpp.llama_pooling_type.LLAMA_POOLING_TYPE_MEAN
    e.n_batch = e.n_ubatch = 512
    return chat, xllamacpp.Server(e)


def direct_stream(server: Any, tokens: int) -> tuple[float, float, int]:
    """Time to first token, seconds to the last, tokens generated."""
    t0 = time.perf_counter()
    first: list[float] = []
    count = [0]

    def on_chunk(chunk: dict[str, Any]) -> bool:
        for c in chunk.get("choices", []):
            if c.get("delta", {}).get("content"):
                if not first:
                    first.append(time.perf_counter() - t0)
        if chunk.get("usage"):
            count[0] = chunk["usage"]["completion_tokens"]
        return False

    req = {
        "messages": PROMPT,
        "max_tokens": tokens,
        "ignore_eos": True,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    server.handle_chat_completions(req, on_chunk)
    return first[0], time.perf_counter() - t0, count[0]


def server_stream(client: httpx.Client, tokens: int) -> tuple[float, float, int]:
    t0 = time.perf_counter()
    first = None
    count = 0
    body = {"messages": PROMPT, "max_tokens": tokens, "ignore_eos": True, "stream": True}
    with client.stream("POST", "/v1/chat/completions", json=body) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            for c in chunk.get("choices", []):
                if first is None and c.get("delta", {}).get("content"):
                    first = time.perf_counter() - t0
            if chunk.get("usage"):
                count = chunk["usage"]["completion_tokens"]
    assert first is not None
    return first, time.perf_counter() - t0, count


def jain(values: list[float]) -> float:
    return sum(values) ** 2 / (len(values) * sum(v * v for v in values))


def eight_direct(server: Any, tokens: int) -> list[tuple[float, int]]:
    out: list[tuple[float, int]] = [(0.0, 0)] * 8
    t0 = time.perf_counter()

    def one(i: int) -> None:
        r = server.handle_chat_completions(
            {"messages": PROMPT, "max_tokens": tokens, "ignore_eos": True}
        )
        out[i] = (time.perf_counter() - t0, r["usage"]["completion_tokens"])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


async def eight_server(proc: InferenceProcess, tokens: int) -> list[tuple[float, int]]:
    ctx = proc.ssl_context()
    t0 = time.perf_counter()

    async def one(i: int) -> tuple[float, int]:
        async with httpx.AsyncClient(
            base_url=proc.url,
            verify=ctx,
            timeout=600,
            headers={"Authorization": f"Bearer inf-app{i}"},
        ) as c:
            r = await c.post(
                "/v1/chat/completions",
                json={"messages": PROMPT, "max_tokens": tokens, "ignore_eos": True},
            )
            r.raise_for_status()
            return time.perf_counter() - t0, r.json()["usage"]["completion_tokens"]

    return list(await asyncio.gather(*(one(i) for i in range(8))))


def neighbour_direct(server: Any) -> float:
    """Seconds for app B's short request while app A has 6 long ones in (llama.cpp's FIFO)."""
    long = {"messages": PROMPT, "max_tokens": 128, "ignore_eos": True}
    threads = [
        threading.Thread(target=server.handle_chat_completions, args=(long,)) for _ in range(6)
    ]
    for t in threads:
        t.start()
    time.sleep(0.5)
    t0 = time.perf_counter()
    server.handle_chat_completions({"messages": PROMPT, "max_tokens": 16, "ignore_eos": True})
    took = time.perf_counter() - t0
    for t in threads:
        t.join()
    return took


async def neighbour_server(proc: InferenceProcess) -> float:
    ctx = proc.ssl_context()
    long = {"messages": PROMPT, "max_tokens": 128, "ignore_eos": True}
    async with (
        httpx.AsyncClient(
            base_url=proc.url, verify=ctx, timeout=600, headers={"Authorization": "Bearer inf-app0"}
        ) as a,
        httpx.AsyncClient(
            base_url=proc.url, verify=ctx, timeout=600, headers={"Authorization": "Bearer inf-app1"}
        ) as b,
    ):
        tasks = [asyncio.create_task(a.post("/v1/chat/completions", json=long)) for _ in range(6)]
        await asyncio.sleep(0.5)
        t0 = time.perf_counter()
        (
            await b.post(
                "/v1/chat/completions",
                json={"messages": PROMPT, "max_tokens": 16, "ignore_eos": True},
            )
        ).raise_for_status()
        took = time.perf_counter() - t0
        await asyncio.gather(*tasks)
        return took


def summarize_eight(rows: list[tuple[float, int]]) -> dict[str, float]:
    finish = [t for t, _ in rows]
    rates = [n / t for t, n in rows]
    return {
        "first_done_s": min(finish),
        "last_done_s": max(finish),
        "jain_index": jain(rates),
        "aggregate_tokens_per_s": sum(n for _, n in rows) / max(finish),
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--eight-runs", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("results.json"))
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    cache = ROOT / ".cache" / "inference-models"
    home = Path(tempfile.mkdtemp(prefix="spruce-bench-inference-"))
    link = LocalLink()
    for i in range(8):
        app = local_app(home, f"app{i}")
        link.add_app(app)
        link.add_key(f"inf-app{i}", grant(app, CHAT, f"addon-chat-{i}"))
    link.add_key("inf-embed", grant(local_app(home, "app0"), EMBED, "addon-embed"))
    proc = InferenceProcess(home / "server", link).start()
    try:
        chat, embed = direct_servers(cache)
        client = proc.client("inf-app0", timeout=600)
        eclient = proc.client("inf-embed", timeout=600)
        # warm both: first requests pay for allocations and caches
        direct_stream(chat, 8)
        server_stream(client, 8)
        embed.handle_embeddings({"input": TEXTS[:2]})
        eclient.post("/v1/embeddings", json={"input": TEXTS[:2]})

        one: dict[str, list[tuple[float, float, int]]] = {"direct": [], "spruce": []}
        emb: dict[str, list[float]] = {
            "direct_batch": [],
            "spruce_batch": [],
            "direct_single": [],
            "spruce_single": [],
        }
        for _ in range(args.runs):
            one["direct"].append(direct_stream(chat, args.tokens))
            one["spruce"].append(server_stream(client, args.tokens))
            t = time.perf_counter()
            embed.handle_embeddings({"input": TEXTS})
            emb["direct_batch"].append(len(TEXTS) / (time.perf_counter() - t))
            t = time.perf_counter()
            eclient.post("/v1/embeddings", json={"input": TEXTS}).raise_for_status()
            emb["spruce_batch"].append(len(TEXTS) / (time.perf_counter() - t))
            t = time.perf_counter()
            for text in TEXTS[:16]:
                embed.handle_embeddings({"input": text})
            emb["direct_single"].append(16 / (time.perf_counter() - t))
            t = time.perf_counter()
            for text in TEXTS[:16]:
                eclient.post("/v1/embeddings", json={"input": text}).raise_for_status()
            emb["spruce_single"].append(16 / (time.perf_counter() - t))

        def stream_stats(rows: list[tuple[float, float, int]]) -> dict[str, float]:
            return {
                "ttft_ms": 1000 * statistics.median(r[0] for r in rows),
                "tokens_per_s": statistics.median(r[2] / r[1] for r in rows),
                "decode_tokens_per_s": statistics.median((r[2] - 1) / (r[1] - r[0]) for r in rows),
            }

        d, s = stream_stats(one["direct"]), stream_stats(one["spruce"])
        # per alternating pair: the machine's load changes between pairs more than within
        pair = [
            (b[2] / b[1]) / (a[2] / a[1]) for a, b in zip(one["direct"], one["spruce"], strict=True)
        ]
        rounds: dict[str, list[dict[str, float]]] = {"direct": [], "spruce": []}
        for _ in range(args.eight_runs):
            rounds["direct"].append(summarize_eight(eight_direct(chat, 64)))
            rounds["spruce"].append(summarize_eight(asyncio.run(eight_server(proc, 64))))
        eight: dict[str, Any] = {
            side: {k: statistics.median(r[k] for r in rows) for k in rows[0]}
            for side, rows in rounds.items()
        }
        eight["aggregate_ratio"] = statistics.median(
            b["aggregate_tokens_per_s"] / a["aggregate_tokens_per_s"]
            for a, b in zip(rounds["direct"], rounds["spruce"], strict=True)
        )
        neighbour: dict[str, list[float]] = {"direct_s": [], "spruce_s": []}
        for _ in range(args.eight_runs):
            neighbour["direct_s"].append(neighbour_direct(chat))
            neighbour["spruce_s"].append(asyncio.run(neighbour_server(proc)))
        results: dict[str, Any] = {
            "when": time.strftime("%Y-%m-%d %H:%M:%S"),
            "load_average": os.getloadavg(),
            "runs": args.runs,
            "tokens": args.tokens,
            "one_stream": {
                "direct": d,
                "spruce": s,
                "tokens_per_s_ratio": statistics.median(pair),
                "pair_ratio_range": [min(pair), max(pair)],
                "ttft_extra_ms": s["ttft_ms"] - d["ttft_ms"],
            },
            "embeddings_per_s": {k: statistics.median(v) for k, v in emb.items()},
            "eight_streams": eight,
            "short_request_beside_6_long": {k: statistics.median(v) for k, v in neighbour.items()},
        }
        args.out.write_text(json.dumps(results, indent=2) + "\n")
        print(json.dumps(results, indent=2))
        client.close()
        eclient.close()
    finally:
        proc.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
