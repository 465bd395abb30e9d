"""R14 and log-runtime-metrics on Kubernetes: dynos' memory from each node's kubelet
(the summary API through the apiserver), checked against the size's quota.

A metrics poll, not routing: the kubelet refreshes these numbers every few seconds anyway.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from spruce.dynos.backends.kubernetes.api import Kube
from spruce.dynos.backends.kubernetes.manifests import CONTAINER
from spruce.dynos.backends.kubernetes.pods import PodView
from spruce.dynos.metrics import mem_running_line, memory_line
from spruce.dynos.model import DynoSettings
from spruce.dynos.process import MemSample

MB = 1024 * 1024


def node_summary(kube: Kube, node: str) -> dict[str, Any]:
    resp = kube.core.connect_get_node_proxy_with_path(node, "stats/summary", _preload_content=False)
    return dict(json.loads(resp.data))


def samples(summary: dict[str, Any]) -> dict[str, MemSample]:
    """Pod uid -> its dyno container's memory, from one node's summary."""
    out: dict[str, MemSample] = {}
    for pod in summary.get("pods") or []:
        uid = (pod.get("podRef") or {}).get("uid")
        for c in pod.get("containers") or []:
            mem = c.get("memory") or {}
            if c.get("name") != CONTAINER or uid is None or "workingSetBytes" not in mem:
                continue
            total = mem["workingSetBytes"] / MB
            rss = mem.get("rssBytes", mem["workingSetBytes"]) / MB
            usage = mem.get("usageBytes", mem["workingSetBytes"]) / MB
            out[uid] = MemSample(
                total_mb=total,
                rss_mb=rss,
                cache_mb=max(0.0, usage - total),
                swap_mb=0.0,
                pgpgin=int(mem.get("pageFaults", 0)),
                pgpgout=int(mem.get("majorPageFaults", 0)),
                running=1,
            )
    return out


@dataclass
class MemoryRules:
    """Which lines a memory sample calls for (Heroku's R14 rate limit kept per dyno run)."""

    settings: DynoSettings
    r14_at: dict[str, float] = field(default_factory=dict)

    def lines(self, p: PodView, m: MemSample, metrics: bool) -> list[str]:
        quota = self.settings.quota_mb(p.size or "standard-1x")
        out = []
        if metrics:
            out.append(memory_line(p.dyno, p.app_id, p.uid, m, quota))
        now = time.monotonic()
        if m.total_mb > quota and now - self.r14_at.get(p.uid, -1e9) >= self.settings.r14_interval:
            self.r14_at[p.uid] = now
            out += [mem_running_line(m, quota), "Error R14 (Memory quota exceeded)"]
        return out

    def forget(self, live: Iterable[str]) -> None:
        keep = set(live)
        for uid in [u for u in self.r14_at if u not in keep]:
            del self.r14_at[uid]
