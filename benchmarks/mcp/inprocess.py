"""Spruce's MCP calls split in three: the tool itself, Spruce's request around it, the
transport. Tells how much of a call's time is Spruce's work and how much is HTTP.

Usage: python benchmarks/mcp/inprocess.py [--samples 100] [--json out.json]

It starts `spruce up` in a fresh home with the app of benchmarks/mcp/run.py (the example
app, one web dyno, a Postgres add-on), opens one MCP session over Streamable HTTP with a
plain HTTP client (no MCP library on the client side: its own cost is not Spruce's) and
calls the same tools. Every plain call answers a Server-Timing header
(spruce/mcp/fastpath.py): `tool` is the tool's own time (schema check, access rule, the
services' work), `mcp` the whole request inside Spruce's MCP endpoint (with the API key's
check); the client's time minus `mcp` is the transport (uvicorn, HTTP, loopback). CPU per
call is the platform's (and its children's: Postgres), from /proc.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import calls, deploy, pct, start_platform, tree_cpu  # noqa: E402


def session(http: httpx.Client) -> dict[str, str]:
    init = {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "inprocess-bench", "version": "1"},
        },
    }
    opened = http.post("/mcp", json=init)
    opened.raise_for_status()
    headers = {"mcp-session-id": opened.headers["mcp-session-id"]}
    http.post(
        "/mcp", json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=headers
    ).raise_for_status()
    return headers


def timing(header: str) -> dict[str, float]:
    parts = (p.strip().split(";dur=") for p in header.split(",") if ";dur=" in p)
    return {k: float(v) for k, v in parts}


def measure(http: httpx.Client, headers: dict[str, str], pid: int, app: str, n: int) -> Any:
    out: dict[str, Any] = {}
    # pg_maintenance only finds the database (the app, the access rule, the attachment):
    # pg_info's time minus its own is the Postgres session's
    extra = [("pg_maintenance", {"app": app})]
    for i, (name, args) in enumerate([*calls(app), *extra]):
        body = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": name, "arguments": args},
        }
        http.post("/mcp", json=body, headers=headers)  # warm
        total, tool, inside = [], [], []
        cpu0 = tree_cpu([pid])
        for j in range(n):
            body["id"] = 1000 * i + j + 2
            t = time.perf_counter()
            r = http.post("/mcp", json=body, headers=headers)
            total.append((time.perf_counter() - t) * 1000)
            if r.headers.get("content-type") != "application/json":
                raise SystemExit(f"{name}: not answered on the fast path")
            if r.json()["result"].get("isError"):
                raise SystemExit(f"{name}: {r.json()['result']['content'][0]['text'][:300]}")
            st = timing(r.headers.get("server-timing", ""))
            tool.append(st["tool"])
            inside.append(st["mcp"])
        cpu = (tree_cpu([pid]) - cpu0) / n * 1000
        out[name] = {
            "samples": n,
            "client_p50_ms": pct(total, 0.5),
            "mcp_p50_ms": pct(inside, 0.5),
            "tool_p50_ms": pct(tool, 0.5),
            "transport_p50_ms": pct([a - b for a, b in zip(total, inside, strict=True)], 0.5),
            "client_p99_ms": pct(total, 0.99),
            "platform_cpu_ms_per_call": cpu,
        }
        o = out[name]
        print(
            f"  {name:14} client {o['client_p50_ms']:6.2f}  mcp {o['mcp_p50_ms']:6.2f}  "
            f"tool {o['tool_p50_ms']:6.2f}  transport {o['transport_p50_ms']:5.2f} ms (p50)"
            f"  cpu {cpu:5.2f} ms",
            flush=True,
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=100)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="spruce-mcp-inproc-"))
    p = start_platform(tmp / "home")
    results: dict[str, Any] = {"load_before": os.getloadavg()}
    try:
        app = f"bench-{uuid.uuid4().hex[:6]}"
        deploy(p, app)
        auth = {
            "Authorization": f"Bearer {p.api_key}",
            "Accept": "application/json, text/event-stream",
        }
        with httpx.Client(base_url=p.api_url, headers=auth, timeout=60) as http:
            results["tools"] = measure(http, session(http), p.proc.pid, app, args.samples)
        results["load_after"] = os.getloadavg()
    finally:
        p.stop()
    print(
        "\n| tool | client p50 ms | in Spruce's /mcp p50 ms | the tool p50 ms "
        "| transport p50 ms | platform CPU ms per call |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for name, o in results["tools"].items():
        print(
            f"| {name} | {o['client_p50_ms']:.2f} | {o['mcp_p50_ms']:.2f} | "
            f"{o['tool_p50_ms']:.2f} | {o['transport_p50_ms']:.2f} | "
            f"{o['platform_cpu_ms_per_call']:.2f} |"
        )
    print(f"\nload average before {results['load_before']}, after {results['load_after']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
