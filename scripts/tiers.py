"""Run the whole suite as independent tiers in parallel, and say plainly which failed.

Usage: .venv/bin/python scripts/tiers.py [--jobs N] [--only tier,tier]

Each tier is its own pytest process (its own --basetemp, its own log under .tiers/); the
slowest start first, and at most N run at once (default 4: most of the suite waits on real
servers and processes rather than on the CPU). The exit status is 0 only when every tier
passed. A tier whose log shows no test collected fails too: a suite that silently runs
nothing is not a pass.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = str(ROOT / ".venv" / "bin" / "python")


@dataclass
class Tier:
    name: str
    argv: list[str]
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    seconds: float = 0.0
    status: int | None = None
    log: Path = field(default_factory=Path)


def pytest(*paths: str, ignore: tuple[str, ...] = ()) -> list[str]:
    args = [PY, "-m", "pytest", "-q", "-p", "no:cacheprovider", *paths]
    for p in ignore:
        args += ["--ignore", p]
    return args


BUILDPACK_PUSHES = tuple(
    str(p.relative_to(ROOT))
    for pattern in ("test_buildpack_*.py", "test_language_pushes.py")
    for p in sorted((ROOT / "tests" / "e2e").glob(pattern))
)

COMPAT_CLI = tuple(
    str(p.relative_to(ROOT))
    for p in sorted((ROOT / "tests" / "compat").glob("test_heroku_cli*.py"))
)
# Heroku's CLI costs a second or two a command on these cores: its files run as two tiers.
COMPAT_TOPICS = tuple(
    f
    for f in COMPAT_CLI
    if f.endswith(("_pipelines.py", "_spaces.py", "_telemetry.py", "_topics.py"))
)

# Longest first: they set the total time.
TIERS = [
    Tier("kube", pytest("tests/kube")),
    Tier("e2e", pytest("tests/e2e", ignore=BUILDPACK_PUSHES)),
    # a push per buildpack rule and language: its own process, beside the other e2e tests
    Tier("buildpacks", pytest(*BUILDPACK_PUSHES)),
    # Heroku's CLI against Spruce, and the agents' clients (Heroku's MCP server, the AI
    # plugin, VS Code): two processes, as together they were the suite's longest tier.
    Tier("compat", pytest(*(f for f in COMPAT_CLI if f not in COMPAT_TOPICS))),
    Tier("topics", pytest(*COMPAT_TOPICS)),
    Tier("agents", pytest("tests/compat", ignore=COMPAT_CLI)),
    Tier("browser", pytest("tests/browser")),
    Tier("core", pytest("tests/integration/core")),
    Tier(
        "parts",
        pytest(
            "tests/integration",
            ignore=("tests/integration/core", "tests/integration/router"),
        ),
    ),
    Tier("router", pytest("tests/integration/router")),
    Tier("unit", pytest("tests/unit")),
    Tier("checks", [str(ROOT / "scripts" / "typecheck")]),
]


def start(tier: Tier, logs: Path) -> None:
    tier.log = logs / f"{tier.name}.log"
    argv = list(tier.argv)
    if argv[1:3] == ["-m", "pytest"]:
        argv += ["--basetemp", str(logs / f"tmp-{tier.name}")]
    out = open(tier.log, "wb")  # noqa: SIM115 - closed when the process ends
    tier.started = time.monotonic()
    tier.proc = subprocess.Popen(argv, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    print(f"[tiers] {tier.name}: started", flush=True)


def finished(tier: Tier) -> bool:
    assert tier.proc is not None
    code = tier.proc.poll()
    if code is None:
        return False
    tier.status, tier.seconds = code, time.monotonic() - tier.started
    text = tier.log.read_text(errors="replace")
    if code == 0 and tier.argv[1:3] == ["-m", "pytest"] and " passed" not in text:
        tier.status = 1  # nothing ran
    verdict = "passed" if tier.status == 0 else f"FAILED (exit {code})"
    tail = text.strip().splitlines()[-1:] or [""]
    print(f"[tiers] {tier.name}: {verdict} in {tier.seconds:.0f} s — {tail[0]}", flush=True)
    return True


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=int(os.environ.get("SPRUCE_TEST_JOBS", "4")))
    ap.add_argument("--only", help="comma-separated tier names")
    args = ap.parse_args()
    wanted = set(args.only.split(",")) if args.only else None
    queue = [t for t in TIERS if wanted is None or t.name in wanted]
    logs = ROOT / ".tiers"
    logs.mkdir(exist_ok=True)
    t0 = time.monotonic()
    running: list[Tier] = []
    done: list[Tier] = []
    while queue or running:
        while queue and len(running) < args.jobs:
            tier = queue.pop(0)
            start(tier, logs)
            running.append(tier)
        time.sleep(1)
        for tier in [t for t in running if finished(t)]:
            running.remove(tier)
            done.append(tier)
    failed = [t for t in done if t.status != 0]
    for tier in failed:
        print(f"\n===== {tier.name} ({tier.log}) =====", flush=True)
        print(tier.log.read_text(errors="replace")[-20000:], flush=True)
    total = time.monotonic() - t0
    summary = ", ".join(f"{t.name} {t.seconds:.0f}s" for t in done)
    print(
        f"\n[tiers] {len(done) - len(failed)}/{len(done)} tiers passed in {total:.0f} s ({summary})"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
