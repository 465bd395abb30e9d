"""The API's cost per call in-process: CPU time and statements, no network, no other load.

Usage: python benchmarks/api/inprocess.py [--apps 1000] [--store sqlite|postgresql]
                                        [--requests 200] [--top 25] [--call NAME]

It seeds N apps (as run.py does) into a fresh store, builds the services over the test
suite's in-process ports (tests/service_fakes.py: no dynos, no router workers) and the real
API application, and drives each call through the ASGI interface with httpx. The store-bound
handlers and the reactions' reads (`asyncio.to_thread`) run on the calling thread here, so
one profiler sees all of a request's work, including what the event bus's subscribers (the
router's table, the deployments, telemetry) do after it. For each call it prints the CPU time per request
(`time.process_time`, which does not drift with the machine's load as latency does) and the
statements per request; with --call it prints cProfile's heaviest functions for that call.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests"), str(Path(__file__).parent)]

sys.modules.setdefault("trio", None)  # type: ignore[arg-type]  # httpx would try to import it per request
import httpx  # noqa: E402
from run import ACCEPT, seed  # noqa: E402
from service_fakes import make_services  # noqa: E402
from sqlalchemy import event  # noqa: E402
from support import PostgresServer  # noqa: E402

from spruce.api import http as api_http  # noqa: E402
from spruce.api.app import create_api  # noqa: E402
from spruce.store.db import Store  # noqa: E402

Call = Callable[[int], tuple[str, str, dict[str, Any]]]


def calls(names: list[str]) -> dict[str, Call]:
    def app(i: int) -> str:
        return names[i % len(names)]

    return {
        "GET /apps": lambda i: ("GET", "/apps", {}),
        "GET /apps/{app}": lambda i: ("GET", f"/apps/{app(i)}", {}),
        "GET /apps/{app}/releases (Range)": lambda i: (
            "GET",
            f"/apps/{app(i)}/releases",
            {"headers": {"Range": "version ..; max=10, order=desc"}},
        ),
        "GET config-vars": lambda i: ("GET", f"/apps/{app(i)}/config-vars", {}),
        "PATCH config-vars": lambda i: (
            "PATCH",
            f"/apps/{app(i)}/config-vars",
            {"json": {"BENCH": str(i)}},
        ),
        "PATCH formation": lambda i: (
            "PATCH",
            f"/apps/{app(i)}/formation",
            {"json": {"updates": [{"type": "web", "quantity": i % 2, "size": "basic"}]}},
        ),
        "POST /apps": lambda i: ("POST", "/apps", {"json": {"name": f"p-{uuid.uuid4().hex[:12]}"}}),
    }


async def _inline(fn: Callable[..., Any], *args: Any) -> Any:
    """The API's `in_thread`, run on the calling thread: one profiler sees everything."""
    return fn(*args)


async def _no_log_sessions(scope: Any, receive: Any, send: Any) -> None:
    raise RuntimeError("no log sessions in the profile")


async def drive(
    client: httpx.AsyncClient, make: Call, n: int, profiler: cProfile.Profile | None
) -> tuple[float, float, int]:
    """CPU ms per request, wall ms per request, statements per request (median)."""
    counts: list[int] = []
    cpu0, wall0 = time.process_time(), time.perf_counter()
    if profiler is not None:
        profiler.enable()
    for i in range(n):
        method, url, kw = make(i)
        r = await client.request(method, url, **kw)
        if r.status_code >= 400:
            raise RuntimeError(f"{method} {url}: {r.status_code} {r.text[:200]}")
        counts.append(int(r.headers.get("spruce-queries", "-1")))
        for _ in range(3):  # the subscribers' turns: the router's table, deployments
            await asyncio.sleep(0)
    if profiler is not None:
        profiler.disable()
    cpu = (time.process_time() - cpu0) * 1000 / n
    wall = (time.perf_counter() - wall0) * 1000 / n
    return cpu, wall, sorted(counts)[len(counts) // 2]


async def show_statements(store: Store, client: httpx.AsyncClient, make: Call) -> None:
    """The statements of one more request of the call, in order."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        # where in spruce the statement comes from: the innermost frame of ours
        frame, where = sys._getframe(1), "?"
        while frame is not None:
            path = frame.f_code.co_filename
            if "/spruce/" in path and "/store/" not in path:
                where = f"{Path(path).name}:{frame.f_lineno} {frame.f_code.co_name}"
                break
            frame = frame.f_back  # type: ignore[assignment]
        seen.append(f"{where:45s} {' '.join(statement.split())[:110]}")

    event.listen(store.engine, "before_cursor_execute", record)
    method, url, kw = make(10**6)
    await client.request(method, url, **kw)
    for _ in range(3):
        await asyncio.sleep(0)
    event.remove(store.engine, "before_cursor_execute", record)
    print(f"{len(seen)} statements:")
    for i, text in enumerate(seen, 1):
        print(f"  {i:2d}. {text}")


async def main_async(args: argparse.Namespace) -> None:
    home = Path(tempfile.mkdtemp(prefix="profile-api-"))
    pg = None
    if args.store in ("postgresql", "postgres"):
        pg = PostgresServer()
        url = pg.create_database()
    else:
        url = f"sqlite:///{home / 'spruce.db'}"
    try:
        await measure(args, home, url)
    finally:
        if pg is not None:
            pg.stop()


async def measure(args: argparse.Namespace, home: Path, url: str) -> None:
    store = Store.open(home, url)
    t = time.perf_counter()
    names = seed(store, args.apps, "admin@spruce.local")
    print(f"seeded {args.apps} apps in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    store.count_queries()
    h = make_services(store, home / "home")
    h.events.attach_loop(asyncio.get_running_loop())
    operator = h.services.accounts.find("admin@spruce.local")
    key = h.services.accounts.create_key(operator.id, "profile")
    api = create_api(h.services, "", _no_log_sessions, query_counter=store.queries)
    api_http.in_thread = _inline
    asyncio.to_thread = _inline  # type: ignore[assignment]  # the reactions' reads, too
    headers = {"Authorization": f"Bearer {key}", "Accept": ACCEPT}
    transport = httpx.ASGITransport(app=api)
    print(f"\n{args.apps} apps, {store.engine.dialect.name}")
    print("| call | CPU ms / request | wall ms / request | statements |")
    print("|---|---|---|---|")
    async with httpx.AsyncClient(transport=transport, base_url="http://api", headers=headers) as c:
        for label, make in calls(names).items():
            if (args.call or args.only) and label not in (args.call, args.only):
                continue
            n = max(10, args.requests // 10) if label == "GET /apps" else args.requests
            await drive(c, make, min(n, 5), None)  # warm caches and the pool
            profiler = cProfile.Profile() if args.call else None
            cpu, wall, queries = await drive(c, make, n, profiler)
            print(f"| {label} | {cpu:.2f} | {wall:.2f} | {queries} |", flush=True)
            if args.call:
                await show_statements(store, c, make)
            if profiler is not None:
                stats = pstats.Stats(profiler)
                stats.sort_stats("cumulative").print_stats(args.top)
                stats.sort_stats("tottime").print_stats(args.top)
    store.dispose()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--apps", type=int, default=1000)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--store", default="sqlite", help="sqlite or postgresql (a server of its own)")
    ap.add_argument("--call", help="profile this call (its label in the table)")
    ap.add_argument("--only", help="measure only this call, without the profiler")
    ap.add_argument("--top", type=int, default=25)
    asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    main()
