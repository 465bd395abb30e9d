"""What does a telemetry drain cost routed requests, and a dead or slow collector?

Usage: python benchmarks/telemetry/dead_collector.py [--requests 2000]
Starts a throw-away platform with one Fir web app and measures its request latency through
the router (one keepalive client, sequential requests) with: no drain; a drain (all signals)
to a live OTLP/HTTP receiver; the drain pointed at a port where nothing listens; and at a
receiver that answers after 5 s. Prints p50/p99 and the drops the drain counted.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests"), str(ROOT / "tests" / "e2e")]

from e2e_support import TUNING, WEB, Deployer  # noqa: E402
from otlp_receiver import HttpReceiver  # noqa: E402
from support import start_platform, wait_for  # noqa: E402

from spruce.netutil import free_port  # noqa: E402


def measure(d: Deployer, app: str, n: int) -> list[float]:
    url = d.p.endpoints["router_http_url"] + "/"
    out = []
    with httpx.Client(headers={"Host": f"{app}.localhost"}, timeout=30) as c:
        for _ in range(100):
            c.get(url)
        for _ in range(n):
            t = time.perf_counter()
            r = c.get(url)
            out.append((time.perf_counter() - t) * 1000)
            assert r.status_code == 200
    return out


def summary(xs: list[float]) -> str:
    xs = sorted(xs)
    return f"p50 {statistics.median(xs):6.2f} ms  p99 {xs[int(len(xs) * 0.99) - 1]:6.2f} ms"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=2000)
    args = ap.parse_args()
    tuning = dict(TUNING, telemetry={"batch_interval": 0.2, "export_timeout": 2.0})
    with tempfile.TemporaryDirectory() as tmp:
        p = start_platform(Path(tmp) / "home", extra_env={"SPRUCE_TUNING": json.dumps(tuning)})
        live, slow = HttpReceiver(), HttpReceiver(delay=5.0)
        try:
            d = Deployer(p, Path(tmp))
            api = p.client()
            app = f"bench-{uuid.uuid4().hex[:6]}"
            app_id = api.post("/apps", json={"name": app, "generation": "fir"}).json()["id"]
            files = {"Procfile": "web: python3 web.py\n", "web.py": WEB.format(text="ok"),
                     "requirements.txt": ""}  # fmt: skip
            assert d.push(d.repo(app, files=files), app).returncode == 0
            d.wait_serving(app, "ok", timeout=120)
            results = {"no drain": measure(d, app, args.requests)}
            drain = api.post("/telemetry-drains", json={
                "owner": {"id": app_id, "type": "app"},
                "signals": ["traces", "metrics", "logs"],
                "exporter": {"type": "otlphttp", "endpoint": live.url},
            }).json()  # fmt: skip
            time.sleep(1.0)  # the router's table has the feature
            results["live collector"] = measure(d, app, args.requests)
            for label, url in (
                ("dead collector", f"http://127.0.0.1:{free_port('127.0.0.1')}"),
                ("slow collector (5 s)", slow.url),
            ):
                api.patch(f"/telemetry-drains/{drain['id']}",
                          json={"exporter": {"endpoint": url}})  # fmt: skip
                time.sleep(0.5)
                results[label] = measure(d, app, args.requests)
            spans = len(live.received.spans())
            wait_for(lambda: slow.hits > 0, 10, what="the slow collector reached")
        finally:
            live.close()
            slow.close()
            p.stop()
    for label, xs in results.items():
        print(f"{label:22} {summary(xs)}")
    print(f"spans at the live collector: {spans}")


if __name__ == "__main__":
    main()
