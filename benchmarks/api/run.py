"""Control-plane latency and cost as the number of apps grows, on SQLite and PostgreSQL.

Usage: python benchmarks/api/run.py [--apps 100,1000,10000] [--stores sqlite,postgresql]
                                    [--samples 200] [--api-workers 2] [--json results.json]

For each store and app count it seeds a fresh home with N apps (each with 3 releases, 5 config
vars, 2 custom domains and a formation) straight into the store, starts `spruce up` on it
with SPRUCE_DEBUG_QUERIES=1 (the API then reports each request's query count in a
`Spruce-Queries` header), and measures the calls clients make most: p50 and p99 latency,
queries per request, the time a config change takes to reach the router's table, app
creation at that size, the API under 50 concurrent clients (wrk, benchmarks/api/clients.lua,
with its own CPU reported beside the platform's), and the platform's RSS.
It prints one table per store and how each figure grows from the smallest to the largest N.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]

import httpx  # noqa: E402
from support import PostgresServer, start_platform  # noqa: E402

from spruce.store.db import Store  # noqa: E402
from spruce.store.models import (  # noqa: E402
    App,
    ConfigVar,
    Domain,
    Formation,
    Release,
    Slug,
    User,
)

ACCEPT = "application/vnd.heroku+json; version=3"
STORE_NAMES = {"postgres": "postgresql", "pg": "postgresql", "sqlite3": "sqlite"}


def seed(store: Store, n: int, owner_email: str) -> list[str]:
    """N apps for the operator, written in bulk (seconds, not the API's minutes)."""
    with store.session() as s:
        owner = User(email=owner_email, name="Operator", is_operator=True)
        s.add(owner)
        s.flush()
        owner_id = owner.id
    names = []
    batch = 500
    for start in range(0, n, batch):
        with store.session() as s:
            for i in range(start, min(n, start + batch)):
                name = f"bench-{i:05d}"
                names.append(name)
                app = App(name=name, owner_id=owner_id, settings={})
                s.add(app)
                s.flush()
                slug = Slug(app_id=app.id, process_types={"web": "python3 -m http.server $PORT"})
                s.add(slug)
                s.flush()
                config = {f"VAR_{k}": f"value-{k}-{i}" for k in range(5)}
                for v in range(1, 4):
                    s.add(
                        Release(
                            app_id=app.id,
                            version=v,
                            description="Initial release" if v == 1 else f"Deploy v{v}",
                            slug_id=slug.id if v > 1 else None,
                            user_id=owner_id,
                            config=config if v > 1 else {},
                        )
                    )
                for k, val in config.items():
                    s.add(ConfigVar(app_id=app.id, key=k, value=val))
                for d in range(2):
                    s.add(
                        Domain(
                            app_id=app.id,
                            hostname=f"www{d}.{name}.example.com",
                            cname=f"{name}.localhost",
                        )
                    )
                s.add(Formation(app_id=app.id, type="web", quantity=0, size="basic", command=""))
    return names


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


REQUESTS = [0]  # requests made by timed(), for CPU time per request


def timed(client: httpx.Client, method: str, url: str, **kw: Any) -> tuple[float, int, int]:
    REQUESTS[0] += 1
    t = time.perf_counter()
    r = client.request(method, url, **kw)
    dt = (time.perf_counter() - t) * 1000
    if r.status_code >= 400:
        raise RuntimeError(f"{method} {url}: {r.status_code} {r.text[:200]}")
    return dt, int(r.headers.get("spruce-queries", "-1")), len(r.content)


def measure(client: httpx.Client, samples: int, names: list[str]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    calls: dict[str, Any] = {
        "GET /apps": lambda i: ("GET", "/apps", {}),
        "GET /apps/{app}": lambda i: ("GET", f"/apps/{names[i % len(names)]}", {}),
        "GET /apps/{app}/dynos": lambda i: ("GET", f"/apps/{names[i % len(names)]}/dynos", {}),
        "GET /apps/{app}/releases (Range)": lambda i: (
            "GET",
            f"/apps/{names[i % len(names)]}/releases",
            {"headers": {"Range": "version ..; max=10, order=desc"}},
        ),
        "GET config-vars": lambda i: ("GET", f"/apps/{names[i % len(names)]}/config-vars", {}),
        "PATCH config-vars": lambda i: (
            "PATCH",
            f"/apps/{names[i % len(names)]}/config-vars",
            {"json": {"BENCH": str(i)}},
        ),
        "PATCH formation": lambda i: (
            "PATCH",
            f"/apps/{names[i % len(names)]}/formation",
            {"json": {"updates": [{"type": "web", "quantity": 0, "size": "basic"}]}},
        ),
    }
    for label, make in calls.items():
        n = max(10, samples // 10) if label == "GET /apps" else samples
        times, queries = [], []
        for i in range(n):
            method, url, kw = make(i)
            dt, q, _ = timed(client, method, url, **kw)
            times.append(dt)
            queries.append(q)
        out[label] = {
            "p50": statistics.median(times),
            "p99": pct(times, 99),
            "queries": statistics.median(queries),
        }
    created = []
    for _ in range(max(10, samples // 4)):
        dt, q, _ = timed(client, "POST", "/apps", json={"name": f"new-{uuid.uuid4().hex[:10]}"})
        created.append((dt, q))
    out["POST /apps"] = {
        "p50": statistics.median(c[0] for c in created),
        "p99": pct([c[0] for c in created], 99),
        "queries": statistics.median(c[1] for c in created),
    }
    return out


def table_latency(client: httpx.Client, router_http: str, app: str, rounds: int = 10) -> float:
    """Maintenance on -> the router answers 503 for the app: the control plane's change
    reaching the workers' table. Median over rounds (ms)."""
    results = []
    with httpx.Client(base_url=router_http, headers={"Host": f"{app}.localhost"}) as router:
        for i in range(rounds):
            on = i % 2 == 0
            t = time.perf_counter()
            client.patch(f"/apps/{app}", json={"maintenance": on})
            while ("undergoing maintenance" in router.get("/").text) != on:
                if time.perf_counter() - t > 10:
                    raise RuntimeError("the router's table never changed")
                time.sleep(0.002)
            results.append((time.perf_counter() - t) * 1000)
    return statistics.median(results)


CLIENTS, PER_CLIENT, CLIENT_PROCESSES = 50, 40, 5
CONCURRENT_REQUESTS = CLIENTS * PER_CLIENT


async def _client_group(
    api_url: str, key: str, names: list[str], first: int, clients: int, per_client: int, go: Any
) -> list[float]:
    """`clients` API clients, each with its own kept connection, one request at a time."""
    headers = {"Authorization": f"Bearer {key}", "Accept": ACCEPT}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    times: list[float] = []
    async with httpx.AsyncClient(
        base_url=api_url, headers=headers, timeout=60, limits=limits
    ) as client:

        async def one(c: int) -> None:
            (await client.get("/account")).raise_for_status()  # connected before the start
            await asyncio.to_thread(go.wait)
            for i in range(per_client):
                t = time.perf_counter()
                r = await client.get(f"/apps/{names[(c * per_client + i) % len(names)]}")
                r.raise_for_status()
                times.append((time.perf_counter() - t) * 1000)

        await asyncio.gather(*(one(c) for c in range(first, first + clients)))
    return times


def _client_process(
    api_url: str, key: str, names: list[str], first: int, clients: int, per_client: int,
    go: Any, out: Any,
) -> None:  # fmt: skip
    out.put(asyncio.run(_client_group(api_url, key, names, first, clients, per_client, go)))


WRK_SECONDS, WRK_THREADS = 10, 2
CLIENTS_LUA = Path(__file__).resolve().parent / "clients.lua"


def wrk_load(
    api_url: str, key: str, names: list[str], pids: list[int], clients: int = CLIENTS
) -> dict[str, float]:
    """`clients` connections, each one request at a time (as many clients are), from wrk:
    C with an event loop per thread, it spends a fraction of the CPU a Python client does,
    and its own CPU is reported beside the platform's. p50 and p99 are wrk's, from every
    request's latency."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("\n".join(names))
    env = dict(os.environ, SPRUCE_BENCH_KEY=key, SPRUCE_BENCH_APPS=f.name)
    wrk = shutil.which("wrk")
    assert wrk is not None
    cmd = [
        wrk,
        f"-t{WRK_THREADS}",
        f"-c{clients}",
        f"-d{WRK_SECONDS}s",
        "-s",
        str(CLIENTS_LUA),
        api_url,
    ]
    cpu0 = sum(cpu_seconds(p) for p in pids)
    # wrk's CPU: what the children reaped during its run used, which is wrk alone (the
    # router probe's process is reaped after this returns)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=WRK_SECONDS + 60)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    os.unlink(f.name)
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    if figures["status_errors"] or figures["socket_errors"]:
        raise RuntimeError(f"wrk saw errors: {figures}")
    n = figures["requests"]
    wrk_cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return {
        "p50": figures["p50_us"] / 1000,
        "p90": figures["p90_us"] / 1000,
        "p99": figures["p99_us"] / 1000,
        "rps": n / (figures["duration_us"] / 1e6),
        "requests": n,
        "cpu_ms": (sum(cpu_seconds(p) for p in pids) - cpu0) * 1000 / n,
        "client_cpu_ms": wrk_cpu * 1000 / n,
        "seconds": figures["duration_us"] / 1e6,
    }


def concurrent_load(
    api_url: str,
    key: str,
    names: list[str],
    clients: int = CLIENTS,
    per_client: int = PER_CLIENT,
    processes: int = CLIENT_PROCESSES,
) -> dict[str, float]:
    """`clients` concurrent API clients, spread over client processes: one asyncio client
    with fifty connections spends more CPU on its own pool than the platform does on the
    requests (5 ms a request against 1.4 ms, measured), and would measure itself."""
    go = multiprocessing.Event()
    out: multiprocessing.Queue[list[float]] = multiprocessing.Queue()
    share = clients // processes
    procs = [
        multiprocessing.Process(
            target=_client_process,
            args=(api_url, key, names, g * share, share, per_client, go, out),
        )
        for g in range(processes)
    ]
    for proc in procs:
        proc.start()
    time.sleep(2)  # every client connected and waiting
    t0 = time.perf_counter()
    go.set()
    times = [t for _ in procs for t in out.get(timeout=600)]
    wall = time.perf_counter() - t0
    for proc in procs:
        proc.join(30)
    return {"p50": statistics.median(times), "p99": pct(times, 99), "rps": len(times) / wall}


def router_probe(router_url: str, app: str, stop: Any, out: Any, least: int) -> None:
    """Requests through the router, one at a time, until `stop` is set (and at least `least`
    of them). A process of its own, so the API clients' event loop does not delay it. The app
    has no web dynos: the router answers itself (H14), so this is the router's own path, and
    whether the control plane's load slows it down."""
    times: list[float] = []
    with httpx.Client(base_url=router_url, headers={"Host": f"{app}.localhost"}) as c:
        while not stop.is_set() or len(times) < least:
            t = time.perf_counter()
            c.get("/")
            times.append((time.perf_counter() - t) * 1000)
    out.put(times)


def router_with_and_without_load(
    router_url: str, api_url: str, key: str, names: list[str], pids: list[int]
) -> dict[str, Any]:
    def summary(ts: list[float]) -> dict[str, float]:
        return {"p50": statistics.median(ts), "p99": pct(ts, 99), "n": len(ts)}

    def probe(during: Any) -> tuple[list[float], Any]:
        stop = multiprocessing.Event()
        out: multiprocessing.Queue[list[float]] = multiprocessing.Queue()
        proc = multiprocessing.Process(
            target=router_probe, args=(router_url, names[-1], stop, out, 500)
        )
        proc.start()
        result = during()
        stop.set()
        times: list[float] = out.get(timeout=120)
        proc.join(30)
        return times, result

    def load() -> dict[str, float]:
        # The platform's CPU per request under the clients: whether it is the bottleneck
        # (on shared cores the clients and other work take their share too).
        if shutil.which("wrk"):
            return wrk_load(api_url, key, names, pids)
        print("wrk not found: Python clients instead (they use more CPU)", file=sys.stderr)
        cpu0 = sum(cpu_seconds(p) for p in pids)
        figures = concurrent_load(api_url, key, names)
        figures["cpu_ms"] = (sum(cpu_seconds(p) for p in pids) - cpu0) * 1000 / CONCURRENT_REQUESTS
        return figures

    idle, _ = probe(lambda: None)
    loaded, under = probe(load)
    return {"idle": summary(idle), "api_load": summary(loaded), "load": under}


def api_processes(pid: int) -> list[int]:
    """The platform's process and its API read workers (spruce up --api-workers)."""
    found = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                if b"spruce.api.read_worker" in Path(f"/proc/{child}/cmdline").read_bytes():
                    found.append(int(child))
            except FileNotFoundError:
                continue
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU of the platform process (not its children) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run_one(
    store_kind: str, n: int, samples: int, pg: PostgresServer | None, api_workers: int
) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix=f"bench-api-{store_kind}-{n}-"))
    # Heroku's 4,500 requests an hour would stop wrk within seconds: the limiter still
    # counts every request (its cost is in the figures), with a budget that lasts the run.
    env = {
        "SPRUCE_DEBUG_QUERIES": "1",
        "SPRUCE_TUNING": json.dumps({"accounts": {"rate_limit": 10**9}}),
    }
    url = None
    if store_kind == "postgresql":
        assert pg is not None
        url = pg.create_database()
        env["SPRUCE_DATABASE_URL"] = url
    store = Store.open(home, url or f"sqlite:///{home / 'spruce.db'}")
    t = time.perf_counter()
    names = seed(store, n, "admin@spruce.local")
    seeded = time.perf_counter() - t
    store.dispose()
    t = time.perf_counter()
    p = start_platform(
        home, extra_env=env, extra_args=["--api-workers", str(api_workers)], timeout=600
    )
    started = time.perf_counter() - t
    try:
        if api_workers:  # started once they answer (the kernel queues connections till then)
            deadline = time.monotonic() + 60
            while len(api_processes(p.proc.pid)) < 1 + api_workers:
                assert time.monotonic() < deadline, "API workers did not start"
                time.sleep(0.1)
            time.sleep(1.0)
        pids = api_processes(p.proc.pid)
        with p.client() as client:
            cpu0, req0 = sum(cpu_seconds(q) for q in pids), REQUESTS[0]
            result: dict[str, Any] = {"calls": measure(client, samples, names)}
            # CPU time does not drift with the machine's other load as latency does.
            calls = REQUESTS[0] - req0
            result["cpu_ms_per_call"] = (sum(cpu_seconds(q) for q in pids) - cpu0) * 1000 / calls
            result["table_ms"] = table_latency(client, p.endpoints["router_http_url"], names[0])
        both = router_with_and_without_load(
            p.endpoints["router_http_url"], p.api_url, p.api_key, names, pids
        )
        result["load"] = both.pop("load")
        result["router"] = both
        result["loadavg"] = os.getloadavg()[0]
        result["rss_mb"] = rss_mb(p.proc.pid)
        result["workers_rss_mb"] = sum(rss_mb(q) for q in pids[1:])
        result["api_workers"] = api_workers
        result["seed_s"], result["start_s"] = seeded, started
        return result
    finally:
        p.stop()


def report(results: dict[str, dict[int, dict[str, Any]]]) -> str:
    lines = []
    for store_kind, by_n in results.items():
        ns = sorted(by_n)
        workers = by_n[ns[0]]["api_workers"]
        lines.append(f"\n### {store_kind}, --api-workers {workers}\n")
        lines.append("| call | " + " | ".join(f"N={n}: p50 / p99 ms (queries)" for n in ns) + " |")
        lines.append("|---|" + "---|" * len(ns))
        for call in by_n[ns[0]]["calls"]:
            cells = []
            for n in ns:
                c = by_n[n]["calls"][call]
                cells.append(f"{c['p50']:.1f} / {c['p99']:.1f} ({c['queries']:.0f})")
            lines.append(f"| {call} | " + " | ".join(cells) + " |")
        row = " | ".join(f"{by_n[n]['table_ms']:.1f}" for n in ns)
        lines.append(f"| config change -> router table (ms) | {row} |")
        row = " | ".join(
            f"{by_n[n]['load']['p50']:.1f} / {by_n[n]['load']['p99']:.1f} "
            f"({by_n[n]['load']['rps']:.0f} req/s, platform {by_n[n]['load']['cpu_ms']:.2f} "
            f"CPU ms each, load generator {by_n[n]['load'].get('client_cpu_ms', 0):.2f})"
            for n in ns
        )
        lines.append(f"| 50 clients, GET /apps/{{app}} | {row} |")
        row = " | ".join(
            f"{by_n[n]['router']['idle']['p99']:.1f} / {by_n[n]['router']['api_load']['p99']:.1f}"
            for n in ns
        )
        lines.append(f"| router p99 ms, API idle / under the 50 clients | {row} |")
        row = " | ".join(f"{by_n[n]['cpu_ms_per_call']:.2f}" for n in ns)
        lines.append(f"| platform CPU ms per call (mean of the calls above) | {row} |")
        row = " | ".join(f"{by_n[n]['loadavg']:.1f}" for n in ns)
        lines.append(f"| machine load average during the run | {row} |")
        lines.append(
            "| platform RSS (MB), main + API workers | "
            + " | ".join(f"{by_n[n]['rss_mb']:.0f} + {by_n[n]['workers_rss_mb']:.0f}" for n in ns)
            + " |"
        )
        lines.append("| start (s) | " + " | ".join(f"{by_n[n]['start_s']:.1f}" for n in ns) + " |")
        if len(ns) > 1:
            lo, hi = ns[0], ns[-1]
            lines.append(f"\nGrowth from N={lo} to N={hi} (p50 ratio):")
            for call in by_n[lo]["calls"]:
                a, b = by_n[lo]["calls"][call]["p50"], by_n[hi]["calls"][call]["p50"]
                lines.append(f"- {call}: {b / a:.2f}x")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--apps", default="100,1000,10000")
    ap.add_argument("--stores", default="sqlite,postgresql")
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--json", type=Path)
    ap.add_argument(
        "--api-workers",
        type=int,
        default=2,
        help="spruce up --api-workers (0: the main process alone)",
    )
    args = ap.parse_args()
    ns = [int(x) for x in args.apps.split(",")]
    stores = [STORE_NAMES.get(x.strip(), x.strip()) for x in args.stores.split(",")]
    unknown = set(stores) - {"sqlite", "postgresql"}
    if unknown:
        ap.error(f"unknown store {', '.join(sorted(unknown))}: sqlite or postgresql")
    pg = PostgresServer() if "postgresql" in stores else None
    results: dict[str, dict[int, dict[str, Any]]] = {}
    try:
        for store_kind in stores:
            for n in ns:
                print(f"-- {store_kind}, {n} apps", file=sys.stderr, flush=True)
                results.setdefault(store_kind, {})[n] = run_one(
                    store_kind, n, args.samples, pg, args.api_workers
                )
    finally:
        if pg is not None:
            pg.stop()
    print(report(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
