"""Push-to-serving time of the example apps: first push (cold cache) and a second push,
on Cedar (classic buildpacks, slugs) and Fir (CNBs, OCI images) in the same run.

Usage: python benchmarks/deploy/run.py [--examples static-site,...] [--generations cedar,fir]
Starts a throw-away platform, pushes each example with real git, and times from `git push`
to the first 200 through the router. Prints a Markdown table, then the Fir/Cedar ratios.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests"), str(ROOT / "tests" / "e2e")]

from e2e_support import Deployer  # noqa: E402
from support import start_platform  # noqa: E402

EXPECT = {
    "static-site": "<",
    "node-web": "Hello",
    "python-web": "Hello",
    "release-phase": "version",
}


def wait_new_release_up(p, app: str, timeout: float = 300) -> None:  # type: ignore[no-untyped-def]
    """Until every web dyno runs the newest release and is up (not the old one serving)."""
    api = p.client()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        version = api.get(f"/apps/{app}/releases").json()[-1]["version"]
        webs = [x for x in api.get(f"/apps/{app}/dynos").json() if x["type"] == "web"]
        if webs and all(x["release"]["version"] == version and x["state"] == "up" for x in webs):
            return
        time.sleep(0.05)
    raise SystemExit(f"{app}: the new release did not come up")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--examples", default=",".join(EXPECT))
    ap.add_argument("--generations", default="cedar,fir")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="spruce-bench-"))
    p = start_platform(
        work / "home", extra_env={"SPRUCE_TUNING": json.dumps({"dynos": {"stop_grace": 3}})}
    )
    rows = []
    try:
        d = Deployer(p, work)
        for example, generation in [
            (e, g) for e in args.examples.split(",") for g in args.generations.split(",")
        ]:
            app = f"bench-{generation}-{example.split('-')[0]}"
            p.client().post("/apps", json={"name": app, "generation": generation})
            repo = d.repo(app, example=example)
            times = []
            for attempt in range(2):
                if attempt:
                    d.commit(repo, "second push")
                start = time.monotonic()
                res = d.push(repo, app)
                if res.returncode != 0:
                    raise SystemExit(f"push of {example} failed:\n{res.stderr}")
                pushed = time.monotonic()
                wait_new_release_up(p, app)
                d.wait_serving(app, EXPECT[example], timeout=300)
                times.append((pushed - start, time.monotonic() - start))
            rows.append((example, generation, *times[0], *times[1]))
    finally:
        p.stop()
    print(
        "| example | generation | first push: build s | first push: serving s "
        "| second push: build s | second push: serving s |"
    )
    print("|---|---|---:|---:|---:|---:|")
    for ex, gen, b1, s1, b2, s2 in rows:
        print(f"| {ex} | {gen} | {b1:.1f} | {s1:.1f} | {b2:.1f} | {s2:.1f} |")
    serving = {(ex, gen): (s1, s2) for ex, gen, _, s1, _, s2 in rows}
    ratios = [
        (ex, serving[(ex, "fir")][0] / cedar[0], serving[(ex, "fir")][1] / cedar[1])
        for (ex, gen), cedar in serving.items()
        if gen == "cedar" and (ex, "fir") in serving
    ]
    if ratios:
        print("\n| example | Fir/Cedar first push to serving | Fir/Cedar second push to serving |")
        print("|---|---:|---:|")
        for ex, first, second in ratios:
            print(f"| {ex} | {first:.2f} | {second:.2f} |")


if __name__ == "__main__":
    main()
