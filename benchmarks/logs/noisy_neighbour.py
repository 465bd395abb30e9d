"""Does one app logging 10,000 lines/s slow another app's requests?

Usage: python benchmarks/logs/noisy_neighbour.py [--requests 2000] [--rate 10000]
Starts a throw-away platform with two apps: `quiet` (a web dyno) and `noisy` (a worker that
prints --rate lines a second). Measures the quiet app's request latency through the router
with the noisy worker scaled to 0, then to 1, and prints both and their ratio.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests"), str(ROOT / "tests" / "e2e")]

from e2e_support import WEB, Deployer  # noqa: E402
from support import start_platform, wait_for  # noqa: E402

NOISY = """import sys, time
rate = {rate}
line = "x" * 80
n = 0
start = time.monotonic()
while True:
    for _ in range(100):
        sys.stdout.write(f"noise {{n}} {{line}}\\n")
        n += 1
    sys.stdout.flush()
    ahead = n / rate - (time.monotonic() - start)
    if ahead > 0:
        time.sleep(ahead)
"""


def measure(d: Deployer, app: str, n: int) -> list[float]:
    url = d.p.endpoints["router_http_url"] + "/"
    out = []
    with httpx.Client(headers={"Host": f"{app}.localhost"}) as c:
        for _ in range(50):
            c.get(url)
        for _ in range(n):
            t = time.perf_counter()
            r = c.get(url)
            out.append((time.perf_counter() - t) * 1000)
            assert r.status_code == 200
    return out


def summary(xs: list[float]) -> str:
    xs = sorted(xs)
    return f"p50 {statistics.median(xs):.2f} ms, p99 {xs[int(len(xs) * 0.99) - 1]:.2f} ms"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--rate", type=int, default=10000)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="spruce-noisy-"))
    p = start_platform(
        work / "home", extra_env={"SPRUCE_TUNING": json.dumps({"dynos": {"stop_grace": 3}})}
    )
    try:
        d = Deployer(p, work)
        api = p.client()
        for name in ("quiet", "noisy"):
            api.post("/apps", json={"name": name})
        assert (
            d.push(
                d.repo(
                    "quiet",
                    files={"Procfile": "web: python3 web.py\n", "web.py": WEB.format(text="ok")},
                ),
                "quiet",
            ).returncode
            == 0
        )
        assert (
            d.push(
                d.repo(
                    "noisy",
                    files={
                        "Procfile": "worker: python3 -u noisy.py\n",
                        "noisy.py": NOISY.format(rate=args.rate),
                    },
                ),
                "noisy",
            ).returncode
            == 0
        )
        d.wait_serving("quiet", "ok")
        calm = measure(d, "quiet", args.requests)
        api.patch("/apps/noisy/formation", json={"updates": [{"type": "worker", "quantity": 1}]})
        wait_for(lambda: any("noise" in ln for ln in d.logs("noisy", lines=5)), 30, what="noise")
        t0 = time.monotonic()
        seq0 = int(d.logs("noisy", lines=1)[-1].split("noise ")[1].split()[0])
        noisy = measure(d, "quiet", args.requests)
        elapsed = time.monotonic() - t0
        seq1 = int(d.logs("noisy", lines=1)[-1].split("noise ")[1].split()[0])
        print(f"noisy app logged {(seq1 - seq0) / elapsed:.0f} lines/s during the measurement")
        print(f"quiet app, noisy at 0:      {summary(calm)}")
        print(f"quiet app, noisy logging:   {summary(noisy)}")
        print(f"p50 ratio {statistics.median(noisy) / statistics.median(calm):.2f}")
    finally:
        p.stop()


if __name__ == "__main__":
    main()
