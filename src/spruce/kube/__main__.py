"""`python -m spruce.kube up [--nodes 2]`: run the test cluster in the foreground (Ctrl-C
tears it down). `python -m spruce.kube check`: say whether it can run here."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from spruce.kube.binaries import ClusterUnavailable, cache_dir, cached
from spruce.kube.cluster import Cluster, ClusterConfig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m spruce.kube")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start a cluster and wait for Ctrl-C")
    up.add_argument("--nodes", type=int, default=1, choices=(1, 2))
    sub.add_parser("check", help="is the binary cache warm?")
    args = parser.parse_args(argv)
    if args.command == "check":
        print(f"{cache_dir()}: {'warm' if cached() else 'cold (scripts/kube/build)'}")
        return 0 if cached() else 1
    cluster = Cluster(ClusterConfig(nodes=args.nodes))
    try:
        cluster.start()
    except ClusterUnavailable as e:
        print(f"cannot run a cluster here: {e}", file=sys.stderr)
        return 2
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    print(f"KUBECONFIG={cluster.kubeconfig}")
    print(
        f"nodes: {', '.join(n.name for n in cluster.nodes)}; up in {cluster.timings['start']:.1f} s"
    )
    sys.stdout.flush()
    done.wait()
    report = cluster.stop()
    print(f"torn down in {report.seconds:.1f} s; sysctls restored: {report.sysctls_restored}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
