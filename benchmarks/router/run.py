"""Router benchmark: direct vs HAProxy vs nginx vs Spruce, same tiny backend (nginx `return 200`).

    .venv/bin/python benchmarks/router/run.py [--duration 5] [--only spruce]
        [--baseline OLD_CHECKOUT/src] [--measure]

Loads: wrk HTTP/1.1 keepalive, wrk new connection per request, h2load HTTP/2 over TLS.
Every proxy runs one worker/process/thread with keepalive to the backend. Prints a markdown
table and writes results.json next to this file.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE.parents[1] / "src"
sys.path.insert(0, str(SRC))

import measure  # noqa: E402

from spruce.certs.ca import InternalCA  # noqa: E402
from spruce.netutil import free_port  # noqa: E402

CONNS = 32


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"port {port} never opened")


def nginx_conf(d: Path, name: str, body: str) -> Path:
    conf = d / f"{name}.conf"
    conf.write_text(
        f"worker_processes 1;\ndaemon off;\npid {d}/{name}.pid;\nerror_log {d}/{name}.err warn;\n"
        "events { worker_connections 4096; }\n"
        f"http {{\n access_log off;\n client_body_temp_path {d}/{name}-body;\n"
        f" proxy_temp_path {d}/{name}-proxy;\n keepalive_requests 1000000;\n{body}\n}}\n"
    )
    return conf


def start(cmd: list[str], port: int, **kw) -> subprocess.Popen:
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kw)
    wait_port(port)
    return p


def wrk(url: str, duration: int, close: bool) -> dict:
    cmd = ["wrk", "-t1", f"-c{CONNS}", f"-d{duration}s", "--latency", "-H", "Host: bench.localhost"]
    if close:
        cmd += ["-H", "Connection: close"]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def pct(p: str) -> float:
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out)
        v = float(m.group(1))
        return v / 1000 if m.group(2) == "us" else v * 1000 if m.group(2) == "s" else v

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": rps,
        "p50_ms": pct("50"),
        "p99_ms": pct("99"),
        "non2xx": int(errors.group(1)) if errors else 0,
    }


def h2load(url: str, duration: int, d: Path) -> dict:
    log = d / "h2load.log"
    if log.exists():
        log.unlink()
    cmd = [
        "h2load",
        "-D",
        str(duration),
        "-c",
        "8",
        "-m",
        "16",
        "-t",
        "1",
        "--log-file",
        str(log),
        url,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out).group(1))
    durations = []
    ok = 0
    for line in log.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 3:
            durations.append(int(parts[2]) / 1000.0)
            ok += parts[1] == "200"
    durations.sort()
    q = statistics.quantiles(durations, n=100) if len(durations) > 2 else [0.0] * 99
    return {"rps": rps, "p50_ms": q[49], "p99_ms": q[98], "non2xx": len(durations) - ok}


def haproxy_cfg(d: Path, ports: dict[str, int], name: str, threads: int) -> Path:
    cfg = d / f"{name}.cfg"
    cfg.write_text(
        f"global\n nbthread {threads}\n maxconn 4096\n"
        "defaults\n mode http\n timeout connect 5s\n timeout client 60s\n"
        " timeout server 60s\n http-reuse always\n option http-keep-alive\n"
        f"frontend f\n bind 127.0.0.1:{ports[name]}\n"
        f" bind 127.0.0.1:{ports[name + '_tls']} ssl crt {d}/haproxy.pem alpn h2,http/1.1\n"
        " option forwardfor\n default_backend b\n"
        f"backend b\n server s1 127.0.0.1:{ports['backend']}\n"
    )
    return cfg


def spruce_cmd(workers: int, ports: dict[str, int], name: str, cert: Path, key: Path) -> list[str]:
    return [
        sys.executable,
        str(HERE / "spruce_router.py"),
        str(workers),
        str(ports[name]),
        str(ports[name + "_tls"]),
        str(ports["backend"]),
        str(cert),
        str(key),
    ]


def spruce_env(src: Path, pure: bool) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(src))
    if pure:
        env["SPRUCE_ROUTER_PURE"] = "1"  # every router module from its .py (native.py)
    else:
        env.pop("SPRUCE_ROUTER_PURE", None)
    return env


def start_spruce(
    cmd: list[str], port: int, env: dict[str, str]
) -> tuple[subprocess.Popen, list[int]]:
    p = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    assert p.stdout is not None
    line = p.stdout.readline()
    if not line.startswith("ready"):
        raise RuntimeError(f"spruce did not start: {line!r}")
    wait_port(port)
    return p, [int(x) for x in line.split()[1:]]


# requests per fixed-count load: CPU and syscalls (native speed), callgrind (~50x slower)
MEASURE_N = {"h1_keepalive": 40000, "h1_new_conn": 10000, "h2_tls": 40000}
CALLGRIND_N = {"h1_keepalive": 3000, "h1_new_conn": 1000, "h2_tls": 3000}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="req/s rounds; each round runs every target once per load, targets side by side "
        "in time, and the figures are the medians over rounds (drift on shared cores hits "
        "every target alike)",
    )
    ap.add_argument("--only", default="")
    ap.add_argument("--loads", default="h1_keepalive,h1_new_conn,h2_tls")
    ap.add_argument("--one-worker", action="store_true", help="skip the 2-worker/thread targets")
    ap.add_argument(
        "--baseline",
        type=Path,
        help="the src/ of an older checkout: adds target spruce-baseline, measured beside spruce",
    )
    ap.add_argument(
        "--measure",
        action="store_true",
        help="also CPU and syscalls per request (haproxy, spruce, spruce-baseline) and "
        "callgrind instructions per request (spruce, spruce-baseline)",
    )
    ap.add_argument(
        "--pure",
        action="store_true",
        help="adds target spruce-pure: this router with SPRUCE_ROUTER_PURE=1 (no mypyc modules)",
    )
    ap.add_argument(
        "--no-rps", action="store_true", help="skip the req/s runs (measures only, with --measure)"
    )
    ap.add_argument(
        "--callgrind-only",
        action="store_true",
        help="with --measure: instructions per request only (the quick loop while working)",
    )
    args = ap.parse_args()
    wanted = args.loads.split(",")
    d = Path(tempfile.mkdtemp(prefix="spruce-bench-"))
    ca = InternalCA(d / "ca")
    issued = ca.issue(["bench.localhost"], ["127.0.0.1"])
    cert, key = d / "cert.pem", d / "key.pem"
    cert.write_text(issued.cert_pem)
    key.write_text(issued.key_pem)
    (d / "haproxy.pem").write_text(issued.cert_pem + issued.key_pem)

    names = ("backend", "haproxy", "haproxy2", "nginx", "spruce", "spruce2", "spruceb", "sprucep")
    names += ("cg",)
    ports = {f"{n}{tls}": free_port() for n in names for tls in ("", "_tls")}
    procs: list[subprocess.Popen] = []
    pids: dict[str, list[int]] = {}
    results: dict[str, dict] = {}
    measures: dict[str, dict] = {}

    def want(name: str) -> bool:
        return not args.only or any(o in name for o in args.only.split(","))

    try:
        procs.append(
            start(
                [
                    "nginx",
                    "-c",
                    str(
                        nginx_conf(
                            d,
                            "backend",
                            (
                                f" server {{ listen 127.0.0.1:{ports['backend']};"
                                f" listen 127.0.0.1:{ports['backend_tls']} ssl http2;"
                                f" ssl_certificate {cert}; ssl_certificate_key {key};"
                                ' location / { return 200 "hello\\n"; } }'
                            ),
                        )
                    ),
                ],
                ports["backend"],
            )
        )
        targets: dict[str, tuple[str, str]] = {
            "direct": (
                f"http://127.0.0.1:{ports['backend']}/",
                f"https://127.0.0.1:{ports['backend_tls']}/",
            ),
        }
        for name, port, threads in (
            ("haproxy", "haproxy", 1),
            ("haproxy-2-threads", "haproxy2", 2),
        ):
            if not want(name) or (args.one_worker and threads > 1):
                continue
            p = start(["haproxy", "-f", str(haproxy_cfg(d, ports, port, threads))], ports[port])
            procs.append(p)
            pids[name] = [p.pid]
            targets[name] = (
                f"http://127.0.0.1:{ports[port]}/",
                f"https://127.0.0.1:{ports[port + '_tls']}/",
            )
        if want("nginx"):
            procs.append(
                start(
                    [
                        "nginx",
                        "-c",
                        str(
                            nginx_conf(
                                d,
                                "proxy",
                                (
                                    f" upstream b {{ server 127.0.0.1:{ports['backend']}; keepalive 64; }}\n"
                                    f" server {{ listen 127.0.0.1:{ports['nginx']};"
                                    f" listen 127.0.0.1:{ports['nginx_tls']} ssl http2;"
                                    f" ssl_certificate {cert}; ssl_certificate_key {key};"
                                    " location / { proxy_pass http://b; proxy_http_version 1.1;"
                                    ' proxy_set_header Connection ""; proxy_set_header X-Forwarded-For'
                                    " $proxy_add_x_forwarded_for; } }"
                                ),
                            )
                        ),
                    ],
                    ports["nginx"],
                )
            )
            targets["nginx"] = (
                f"http://127.0.0.1:{ports['nginx']}/",
                f"https://127.0.0.1:{ports['nginx_tls']}/",
            )
        spruces = [("spruce", 1, "spruce", spruce_env(SRC, False))]
        if args.baseline:
            env = spruce_env(args.baseline.resolve(), False)
            spruces.append(("spruce-baseline", 1, "spruceb", env))
        if args.pure:
            spruces.append(("spruce-pure", 1, "sprucep", spruce_env(SRC, True)))
        if not args.one_worker:
            spruces.append(("spruce-2-workers", 2, "spruce2", spruce_env(SRC, False)))
        for name, workers, port, env in spruces:
            if not want(name):
                continue
            cmd = spruce_cmd(workers, ports, port, cert, key)
            p, worker_pids = start_spruce(cmd, ports[port], env)
            procs.append(p)
            pids[name] = worker_pids
            targets[name] = (
                f"http://127.0.0.1:{ports[port]}/",
                f"https://127.0.0.1:{ports[port + '_tls']}/",
            )
        if not args.no_rps:
            results = interleaved(targets, wanted, args.duration, args.rounds, d)
        if args.measure:
            for name in ("haproxy", "spruce", "spruce-baseline", "spruce-pure"):
                if name not in targets or args.callgrind_only:
                    continue
                http_url, https_url = targets[name]
                m = measures.setdefault(name, {})
                for load in wanted:
                    n = MEASURE_N[load]
                    run = functools.partial(measure.fixed_load, load, http_url, https_url, n)
                    m[load] = {
                        "cpu": measure.cpu_per_request(pids[name], run, n),
                        "syscalls": measure.syscalls_per_request(pids[name], run, n),
                    }
                print(name, "measures", json.dumps(m), flush=True)
            for name, src, pure in (
                ("spruce", SRC, False),
                ("spruce-baseline", args.baseline, False),
                ("spruce-pure", SRC, True),
            ):
                if name not in targets or src is None:
                    continue
                out = d / f"callgrind-{name}"
                out.mkdir()
                cg = measure.Callgrind(
                    spruce_cmd(1, ports, "cg", cert, key),
                    out,
                    spruce_env(Path(src).resolve(), pure),
                )
                try:
                    worker = cg.ready()[0]
                    wait_port(ports["cg"], 120)
                    http_url = f"http://127.0.0.1:{ports['cg']}/"
                    https_url = f"https://127.0.0.1:{ports['cg_tls']}/"
                    for load in wanted:
                        measure.fixed_load(load, http_url, https_url, 200)  # warm
                        n = CALLGRIND_N[load]
                        run = functools.partial(measure.fixed_load, load, http_url, https_url, n)
                        ir = cg.instructions(worker, run, n)
                        measures.setdefault(name, {}).setdefault(load, {})["instructions"] = ir
                        print(name, load, "instructions/request", ir, flush=True)
                finally:
                    cg.stop()
    finally:
        for p in procs:
            p.send_signal(
                signal.SIGINT if "spruce" in " ".join(map(str, p.args)) else signal.SIGTERM
            )
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
    (HERE / "results.json").write_text(
        json.dumps({"results": results, "measures": measures}, indent=2)
    )
    print(table(results, measures))


def run_load(load: str, http_url: str, https_url: str, duration: int, d: Path) -> dict:
    if load == "h1_keepalive":
        return wrk(http_url, duration, close=False)
    if load == "h1_new_conn":
        return wrk(http_url, duration, close=True)
    return h2load(https_url, duration, d)


def interleaved(
    targets: dict[str, tuple[str, str]], wanted: list[str], duration: int, rounds: int, d: Path
) -> dict[str, dict]:
    """Each round runs every load on every target in turn (the order rotating per round);
    a target's figure is the median of its rounds, its rounds kept beside it."""
    runs: dict[str, dict[str, list[dict]]] = {n: {lo: [] for lo in wanted} for n in targets}
    names = list(targets)
    for r in range(rounds):
        for load in wanted:
            order = names[r % len(names) :] + names[: r % len(names)]
            for name in order:
                http_url, https_url = targets[name]
                v = run_load(load, http_url, https_url, duration, d)
                runs[name][load].append(v)
                print(f"round {r + 1}", name, load, json.dumps(v), flush=True)
    results: dict[str, dict] = {}
    for name, by_load in runs.items():
        results[name] = {}
        for load, vs in by_load.items():
            med = {k: statistics.median(v[k] for v in vs) for k in vs[0] if k != "non2xx"}
            med["non2xx"] = sum(v.get("non2xx", 0) for v in vs)
            med["rounds_rps"] = [v["rps"] for v in vs]
            results[name][load] = med
    return results


def _ratios(results: dict[str, dict], a: str, b: str) -> list[str]:
    if a not in results or b not in results:
        return []
    loads = [load for load in results[a] if load in results[b]]
    rps = ", ".join(f"{lo} {results[a][lo]['rps'] / results[b][lo]['rps']:.2f}" for lo in loads)
    p99 = ", ".join(
        f"{lo} {results[a][lo]['p99_ms'] / results[b][lo]['p99_ms']:.2f}"
        for lo in loads
        if results[b][lo]["p99_ms"]
    )
    return [f"\n{a}/{b} req/s ratio: {rps}", f"{a}/{b} p99 ratio: {p99}"]


def table(results: dict[str, dict], measures: dict[str, dict] | None = None) -> str:
    rows = [
        "| target | load | req/s | p50 ms | p99 ms | non-2xx |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        for load, v in r.items():
            rows.append(
                f"| {name} | {load} | {v['rps']:.0f} | {v['p50_ms']:.2f} | "
                f"{v['p99_ms']:.2f} | {v['non2xx']} |"
            )
    for a, b in (
        ("spruce", "haproxy"),
        ("spruce", "nginx"),
        ("spruce", "spruce-baseline"),
        ("spruce-pure", "spruce-baseline"),
        ("spruce-baseline", "haproxy"),
        ("spruce-2-workers", "haproxy-2-threads"),
    ):
        rows += _ratios(results, a, b)
    if measures:
        rows += [
            "",
            "| target | load | user us/req | sys us/req | syscalls/req | instructions/req |",
            "|---|---|---:|---:|---:|---:|",
        ]
        for name, m in measures.items():
            for load, v in m.items():
                cpu = v.get("cpu", {})
                sc = v.get("syscalls", {})
                rows.append(
                    f"| {name} | {load} | {cpu.get('user_us', '')} | {cpu.get('sys_us', '')} | "
                    f"{sc.get('total', '')} | {v.get('instructions', '')} |"
                )
        for name, m in measures.items():
            for load, v in m.items():
                if "syscalls" in v:
                    top = ", ".join(f"{k} {c}" for k, c in list(v["syscalls"]["calls"].items())[:8])
                    rows.append(f"\n{name} {load} syscalls/req: {top}")
    return "\n".join(rows)


if __name__ == "__main__":
    main()
