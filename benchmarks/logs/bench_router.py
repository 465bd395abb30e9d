"""Log router benchmark: one noisy app at N lines/s while a quiet app is measured.

Everything the control plane would run is in this process on one event loop (uvloop if
available): the LogRouter, uvicorn serving the log-session ASGI app, drain tasks and the
noisy producer. Tail readers are separate processes (httpx, SSE), so their parsing does not
steal this loop's time. Reported:

- emit latency (time inside `emit`) for the noisy and the quiet app,
- session delivery latency for the quiet app (emit -> line read by the tail reader),
- lines received by a tail reader of the noisy app and drain counters.

Usage: python benchmarks/logs/bench_router.py [--rate 10000] [--seconds 5] [--drain syslog]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))

import uvicorn  # noqa: E402

from spruce.logs import DrainSpec, LogRouter, LogRouterConfig, new_drain_token  # noqa: E402
from spruce.netutil import free_port  # noqa: E402

READER = r"""
import json, sys, time, httpx
url, seconds, mode = sys.argv[1], float(sys.argv[2]), sys.argv[3]
lat, count = [], 0
deadline = time.time() + seconds
with httpx.Client(timeout=None) as c:
    with c.stream("GET", url, headers={"Accept": "text/event-stream"}) as r:
        print("ready", flush=True)
        for line in r.iter_lines():
            if line.startswith("data: "):
                count += 1
                if mode == "latency" and " sent=" in line:
                    lat.append(time.time() - float(line.rsplit(" sent=", 1)[1]))
            if time.time() > deadline:
                break
print(json.dumps({"count": count, "lat": lat}), flush=True)
"""


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


def summary(name: str, seconds: list[float]) -> str:
    ms = [s * 1000 for s in seconds]
    return (
        f"{name}: n={len(ms)} p50={pct(ms, 0.5):.3f} ms p99={pct(ms, 0.99):.3f} ms "
        f"max={max(ms) if ms else float('nan'):.3f} ms mean={statistics.fmean(ms) if ms else 0:.3f} ms"
    )


async def sink_server(port: int) -> tuple[asyncio.Server, list[int]]:
    received = [0]

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(1 << 16):
            received[0] += data.count(b"<134>1 ")

    return await asyncio.start_server(client, "127.0.0.1", port), received


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=int, default=10_000)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--line-bytes", type=int, default=200)
    ap.add_argument("--drain", choices=["none", "syslog", "stalled"], default="syslog")
    args = ap.parse_args()

    router = LogRouter(LogRouterConfig(l10_interval=1.0))
    drain_rx: list[int] = [0]
    stalled: socket.socket | None = None
    if args.drain == "syslog":
        port = free_port()
        server, drain_rx = await sink_server(port)
        router.set_drains(
            "noisy", [DrainSpec("d1", f"syslog://127.0.0.1:{port}", new_drain_token())]
        )
    elif args.drain == "stalled":
        port = free_port()
        stalled = socket.socket()
        stalled.bind(("127.0.0.1", port))
        stalled.listen()
        router.set_drains(
            "noisy", [DrainSpec("d1", f"syslog://127.0.0.1:{port}", new_drain_token())]
        )
    await router.start()

    http_port = free_port()
    server_cfg = uvicorn.Config(
        router.asgi_app, host="127.0.0.1", port=http_port, log_level="warning", lifespan="off"
    )
    http = uvicorn.Server(server_cfg)
    http_task = asyncio.create_task(http.serve())
    while not http.started:
        await asyncio.sleep(0.01)
    base = f"http://127.0.0.1:{http_port}"

    async def reader(app: str, mode: str) -> asyncio.subprocess.Process:
        token = router.create_session(app, lines=0, tail=True)
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            READER,
            base + router.session_path(token),
            str(args.seconds + 1),
            mode,
            stdout=subprocess.PIPE,
        )
        assert proc.stdout is not None
        assert (await proc.stdout.readline()).strip() == b"ready"
        return proc

    quiet_reader = await reader("quiet", "latency")
    noisy_reader = await reader("noisy", "count")

    payload = "x" * args.line_bytes
    noisy_lat: list[float] = []
    quiet_lat: list[float] = []
    emitted = 0
    tick = 0.01
    per_tick = max(1, int(args.rate * tick))
    start = time.perf_counter()
    next_quiet = start
    end = start + args.seconds
    while (now := time.perf_counter()) < end:
        for _ in range(per_tick):
            t0 = time.perf_counter()
            router.emit("noisy", "app", "web.1", payload)
            noisy_lat.append(time.perf_counter() - t0)
        emitted += per_tick
        if now >= next_quiet:
            next_quiet += 0.05
            t0 = time.perf_counter()
            router.emit("quiet", "app", "web.1", f"ping sent={time.time():.6f}")
            quiet_lat.append(time.perf_counter() - t0)
        target = start + emitted / args.rate
        await asyncio.sleep(max(0.0, target - time.perf_counter()))
    elapsed = time.perf_counter() - start

    quiet_out, _ = await quiet_reader.communicate()
    noisy_out, _ = await noisy_reader.communicate()
    quiet = json.loads(quiet_out.decode().strip().splitlines()[-1])
    noisy = json.loads(noisy_out.decode().strip().splitlines()[-1])
    status = router.drain_status("d1") if args.drain != "none" else None

    print(
        f"python {sys.version.split()[0]}, cpus={os.cpu_count()}, loop={type(asyncio.get_running_loop()).__module__}"
    )
    print(
        f"noisy app: {emitted} lines in {elapsed:.2f} s = {emitted / elapsed:,.0f} lines/s, {args.line_bytes} B each, drain={args.drain}"
    )
    print(summary("emit latency, noisy app", noisy_lat))
    print(summary("emit latency, quiet app", quiet_lat))
    print(summary("session delivery, quiet app (emit -> tail reader)", quiet["lat"]))
    print(f"noisy tail reader received {noisy['count']} of {emitted} lines")
    if status is not None:
        print(
            f"drain: state={status.state} sent={status.sent} dropped={status.dropped} listener_got={drain_rx[0]}"
        )

    http.should_exit = True
    await http_task
    await router.stop()
    if stalled is not None:
        stalled.close()


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main())
