"""Spruce's MCP server against Heroku's (@heroku/mcp-server), both against the same Spruce,
in the same run.

Usage: python benchmarks/mcp/run.py [--samples 40] [--heroku-samples 8] [--json out.json]
                                    [--no-heroku] [--no-fast-path]

It starts `spruce up` in a fresh home, deploys examples/apps/release-phase with a Postgres
add-on, then times the same tool calls (list_apps, get_app_info, ps_list, ps_scale,
get_app_logs, pg_info) through:
  - spruce-stdio: `spruce mcp:start`, what editors run (stdio relayed to <api>/mcp);
  - spruce-http:  <api>/mcp directly (Streamable HTTP);
  - heroku:       Heroku's MCP server over stdio, driving its `heroku repl` against Spruce
                  (tests/compat's harness; Heroku's CLI from npm, installed once).
Each call is timed by the MCP client (the `mcp` library's); p50 and p99 per tool, and the
CPU time per call of every process serving it (the MCP server, its children such as
Heroku's REPL, and the platform), read from /proc before and after each tool's samples.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests"), str(ROOT / "tests" / "compat")]

import httpx2  # noqa: E402
from mcp import ClientSession  # noqa: E402
from mcp.client.stdio import StdioServerParameters, stdio_client  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402
from support import RunningPlatform, start_platform, wait_for  # noqa: E402

HARNESS = ROOT / "tests" / "compat" / "mcp_harness"
TICK = os.sysconf("SC_CLK_TCK")
APP_JSON = {"addons": [{"plan": "heroku-postgresql:essential-0"}]}


def calls(app: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        ("list_apps", {}),
        ("get_app_info", {"app": app}),
        ("ps_list", {"app": app}),
        ("ps_scale", {"app": app, "dyno": "web=1"}),
        ("get_app_logs", {"app": app}),
        ("pg_info", {"app": app}),
    ]


# -- CPU of a process tree, from /proc --------------------------------------------------
def _children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(d.name))
    return out


def tree_cpu(roots: list[int]) -> float:
    """CPU seconds (user + system, reaped children included) of `roots` and descendants."""
    total, seen, todo = 0.0, set(), list(roots)
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(x) for x in fields[11:15]) / TICK
        todo.extend(_children(pid))
    return total


def server_pids(before: set[int]) -> list[int]:
    """The processes this benchmark started since `before` (an MCP server it spawned)."""
    return [p for p in _children(os.getpid()) if p not in before]


# -- the three ways in ------------------------------------------------------------------
@asynccontextmanager
async def spruce_stdio(p: RunningPlatform) -> AsyncIterator[ClientSession]:
    env = dict(p.env) | {"SPRUCE_API_URL": p.api_url, "SPRUCE_API_KEY": p.api_key}
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "spruce.cli.main", "mcp:start"], env=env
    )
    async with stdio_client(params) as (r, w), ClientSession(r, w) as s:
        await s.initialize()
        yield s


@asynccontextmanager
async def spruce_http(p: RunningPlatform) -> AsyncIterator[ClientSession]:
    headers = {"Authorization": f"Bearer {p.api_key}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=60) as http,
        streamable_http_client(p.api_url + "/mcp", http_client=http) as (r, w),
        ClientSession(r, w) as s,
    ):
        await s.initialize()
        yield s


@asynccontextmanager
async def heroku_stdio(p: RunningPlatform, home: Path) -> AsyncIterator[ClientSession]:
    from compat_support import HerokuCLI, install_heroku_cli

    heroku = HerokuCLI(p, install_heroku_cli(), home)
    server = heroku.bin_dir.parent / "@heroku" / "mcp-server" / "bin" / "heroku-mcp-server.mjs"
    env = dict(heroku.env)
    env["PATH"] = f"{HARNESS}{os.pathsep}{env['PATH']}"
    env["MCP_SERVER_REQUEST_TIMEOUT"] = "60000"
    params = StdioServerParameters(
        command="node", args=["--import", str(HARNESS / "register.mjs"), str(server)], env=env
    )
    async with stdio_client(params) as (r, w), ClientSession(r, w) as s:
        await s.initialize()
        yield s


# -- measuring --------------------------------------------------------------------------
def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def measure(
    s: ClientSession,
    cpu_pids: Callable[[], list[int]],
    app: str,
    samples: int,
    verbose: bool = False,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, args in calls(app):
        await s.call_tool(name, args)  # warm: the first call of each tool is not timed
        times, errors = [], 0
        cpu0 = tree_cpu(cpu_pids())
        for _ in range(samples):
            t = time.perf_counter()
            result = await s.call_tool(name, args)
            times.append(time.perf_counter() - t)
            errors += bool(result.is_error)
            if verbose:
                print(f"    {name} {times[-1] * 1000:.0f} ms error={result.is_error}", flush=True)
        cpu = tree_cpu(cpu_pids()) - cpu0
        out[name] = {
            "samples": samples,
            "p50_ms": pct(times, 0.5) * 1000,
            "p99_ms": pct(times, 0.99) * 1000,
            "mean_ms": statistics.mean(times) * 1000,
            "cpu_ms_per_call": cpu / samples * 1000,
            "errors": errors,
            "error_text": (
                "\n".join(c.text for c in result.content if c.type == "text")[:300]
                if result.is_error
                else ""
            ),
        }
        print(
            f"  {name:14} p50 {out[name]['p50_ms']:8.1f} ms  cpu {out[name]['cpu_ms_per_call']:8.1f} ms"
            + (f"  ({errors} errors)" if errors else ""),
            flush=True,
        )
    return out


def deploy(p: RunningPlatform, name: str) -> None:
    """The example app with a Postgres add-on, through the API (a source tarball)."""
    import httpx

    from spruce.mcp.bridge import pack_folder

    api = p.client()
    blob = api.post("/sources").json()["source_blob"]
    data = pack_folder(ROOT / "examples" / "apps" / "release-phase", json.dumps(APP_JSON))
    httpx.put(blob["put_url"], content=data).raise_for_status()
    setup = api.post(
        "/app-setups", json={"app": {"name": name}, "source_blob": {"url": blob["get_url"]}}
    ).json()
    wait_for(
        lambda: api.get(f"/app-setups/{setup['id']}").json()["status"] == "succeeded",
        300,
        interval=0.5,
        what="the app set up",
    )
    wait_for(
        lambda: any(d["state"] == "up" for d in api.get(f"/apps/{name}/dynos").json()),
        120,
        what="web up",
    )


async def run(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="spruce-mcp-bench-"))
    env = {"SPRUCE_MCP_NO_FAST_PATH": "1"} if args.no_fast_path else {}
    p = start_platform(tmp / "home", extra_env=env)
    results: dict[str, Any] = {"load_before": os.getloadavg()}
    try:
        app = f"bench-{uuid.uuid4().hex[:6]}"
        deploy(p, app)
        platform_pid = p.proc.pid

        targets: list[tuple[str, Any, int]] = [
            ("spruce-stdio", lambda: spruce_stdio(p), args.samples),
            ("spruce-http", lambda: spruce_http(p), args.samples),
        ]
        if not args.no_heroku:
            targets.append(
                ("heroku", lambda: heroku_stdio(p, tmp / "heroku-home"), args.heroku_samples)
            )
        for label, open_session, samples in targets:
            print(f"{label}:", flush=True)
            before = set(_children(os.getpid()))
            async with open_session() as s:
                mine = server_pids(before)
                results[label] = await measure(
                    s, lambda mine=mine: [platform_pid, *mine], app, samples, args.verbose
                )
        results["load_after"] = os.getloadavg()
    finally:
        p.stop()
    return results


def report(results: dict[str, Any]) -> None:
    tools = [name for name, _ in calls("x")]
    print(
        "\n| tool | Spruce stdio p50 / p99 ms | Spruce HTTP p50 / p99 ms | Heroku p50 / p99 ms "
        "| p50 ratio (Heroku / Spruce stdio) | CPU ms per call: Spruce stdio / Heroku |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for t in tools:
        s, h, w = (
            results["spruce-stdio"][t],
            results["spruce-http"][t],
            results.get("heroku", {}).get(t),
        )
        heroku = f"{w['p50_ms']:.0f} / {w['p99_ms']:.0f}" if w else "-"
        if w and w["errors"]:
            heroku += f" ({w['errors']} errors)"
        ratio = f"{w['p50_ms'] / s['p50_ms']:.0f}x" if w else "-"
        cpu = (
            f"{s['cpu_ms_per_call']:.1f} / {w['cpu_ms_per_call']:.0f}"
            if w
            else f"{s['cpu_ms_per_call']:.1f} / -"
        )
        print(
            f"| {t} | {s['p50_ms']:.1f} / {s['p99_ms']:.1f} | {h['p50_ms']:.1f} / {h['p99_ms']:.1f} "
            f"| {heroku} | {ratio} | {cpu} |"
        )
    print(f"\nload average before {results['load_before']}, after {results.get('load_after')}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=40)
    ap.add_argument("--heroku-samples", type=int, default=8)
    ap.add_argument("--no-heroku", action="store_true")
    ap.add_argument(
        "--no-fast-path",
        action="store_true",
        help="answer every call through the mcp library's SSE transport (for comparison)",
    )
    ap.add_argument("--verbose", action="store_true", help="print each call's time")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    results = asyncio.run(run(args))
    report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
