"""Router benchmark: direct vs HAProxy vs nginx vs Spruce, same tiny backend (nginx `return 200`).

    .venv/bin/python benchmarks/router/run.py [--duration 5] [--only spruce]

Loads: wrk HTTP/1.1 keepalive, wrk new connection per request, h2load HTTP/2 over TLS.
Every proxy runs one worker/process/thread with keepalive to the backend. Prints a markdown
table and writes results.json next to this file.
"""

from __future__ import annotations

import argparse
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--only", default="")
    ap.add_argument("--loads", default="h1_keepalive,h1_new_conn,h2_tls")
    ap.add_argument("--one-worker", action="store_true", help="skip spruce-2-workers")
    args = ap.parse_args()
    d = Path(tempfile.mkdtemp(prefix="spruce-bench-"))
    ca = InternalCA(d / "ca")
    issued = ca.issue(["bench.localhost"], ["127.0.0.1"])
    cert, key = d / "cert.pem", d / "key.pem"
    cert.write_text(issued.cert_pem)
    key.write_text(issued.key_pem)
    (d / "haproxy.pem").write_text(issued.cert_pem + issued.key_pem)

    ports = {
        k: free_port()
        for k in (
            "backend",
            "backend_tls",
            "haproxy",
            "haproxy_tls",
            "nginx",
            "nginx_tls",
            "spruce",
            "spruce_tls",
            "spruce2",
            "spruce2_tls",
        )
    }
    procs: list[subprocess.Popen] = []
    results: dict[str, dict] = {}
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
        if not args.only or "haproxy" in args.only:
            hcfg = d / "haproxy.cfg"
            hcfg.write_text(
                "global\n nbthread 1\n maxconn 4096\n"
                "defaults\n mode http\n timeout connect 5s\n timeout client 60s\n"
                " timeout server 60s\n http-reuse always\n option http-keep-alive\n"
                f"frontend f\n bind 127.0.0.1:{ports['haproxy']}\n"
                f" bind 127.0.0.1:{ports['haproxy_tls']} ssl crt {d}/haproxy.pem alpn h2,http/1.1\n"
                " option forwardfor\n default_backend b\n"
                f"backend b\n server s1 127.0.0.1:{ports['backend']}\n"
            )
            procs.append(start(["haproxy", "-f", str(hcfg)], ports["haproxy"]))
            targets["haproxy"] = (
                f"http://127.0.0.1:{ports['haproxy']}/",
                f"https://127.0.0.1:{ports['haproxy_tls']}/",
            )
        if not args.only or "nginx" in args.only:
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
        env = dict(os.environ, PYTHONPATH=str(SRC))
        for name, workers, p, pt in (
            ("spruce", 1, "spruce", "spruce_tls"),
            ("spruce-2-workers", 2, "spruce2", "spruce2_tls"),
        ):
            if args.only and name not in args.only and "spruce" not in args.only:
                continue
            if args.one_worker and workers > 1:
                continue
            procs.append(
                start(
                    [
                        sys.executable,
                        str(HERE / "spruce_router.py"),
                        str(workers),
                        str(ports[p]),
                        str(ports[pt]),
                        str(ports["backend"]),
                        str(cert),
                        str(key),
                    ],
                    ports[p],
                    env=env,
                )
            )
            targets[name] = (f"http://127.0.0.1:{ports[p]}/", f"https://127.0.0.1:{ports[pt]}/")
        for name, (http_url, https_url) in targets.items():
            wanted = args.loads.split(",")
            r = {}
            if "h1_keepalive" in wanted:
                r["h1_keepalive"] = wrk(http_url, args.duration, close=False)
            if "h1_new_conn" in wanted:
                r["h1_new_conn"] = wrk(http_url, args.duration, close=True)
            if "h2_tls" in wanted:
                r["h2_tls"] = h2load(https_url, args.duration, d)
            results[name] = r
            print(name, json.dumps(r), flush=True)
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
    (HERE / "results.json").write_text(json.dumps(results, indent=2))
    print(table(results))


def table(results: dict[str, dict]) -> str:
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
    if "spruce" in results:
        for ref in ("haproxy", "nginx"):
            if ref in results:
                ratios = ", ".join(
                    f"{load} {results['spruce'][load]['rps'] / results[ref][load]['rps']:.2f}"
                    for load in results["spruce"]
                )
                rows.append(f"\nSpruce/{ref} req/s ratio: {ratios}")
                p99 = ", ".join(
                    f"{load} {results['spruce'][load]['p99_ms'] / results[ref][load]['p99_ms']:.2f}"
                    for load in results["spruce"]
                    if results[ref][load]["p99_ms"]
                )
                rows.append(f"Spruce/{ref} p99 ratio: {p99}")
    return "\n".join(rows)


if __name__ == "__main__":
    main()
