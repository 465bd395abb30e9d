"""R14, log-runtime-metrics and the platform's dyno samples on Kubernetes: dynos' memory
and CPU from each node's kubelet (the summary API through the apiserver), memory checked
against the size's quota.

A metrics poll, not routing: the kubelet refreshes these numbers every few seconds anyway.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from spruce.dynos.backends.kubernetes.api import Kube
from spruce.dynos.backends.kubernetes.manifests import CONTAINER
from spruce.dynos.backends.kubernetes.pods import PodView
from spruce.dynos.metrics import mem_running_line, memory_line
from spruce.dynos.model import DynoSettings
from spruce.dynos.process import MemSample
from spruce.services.model import DynoSample, DynoUsage

MB = 1024 * 1024
log = logging.getLogger(__name__)


def node_summary(kube: Kube, node: str) -> dict[str, Any]:
    resp = kube.core.connect_get_node_proxy_with_path(node, "stats/summary", _preload_content=False)
    return dict(json.loads(resp.data))


@dataclass(frozen=True)
class PodStats:
    """One dyno container's figures in a node's summary."""

    memory: MemSample
    cpu_cores: float
    """Cores in use now (the kubelet's usageNanoCores): the dyno's load."""
    cpu_seconds: float
    """CPU time used since the container started."""


def samples(summary: dict[str, Any]) -> dict[str, PodStats]:
    """Pod uid -> its dyno container's memory and CPU, from one node's summary."""
    out: dict[str, PodStats] = {}
    for pod in summary.get("pods") or []:
        uid = (pod.get("podRef") or {}).get("uid")
        for c in pod.get("containers") or []:
            mem = c.get("memory") or {}
            if c.get("name") != CONTAINER or uid is None or "workingSetBytes" not in mem:
                continue
            total = mem["workingSetBytes"] / MB
            rss = mem.get("rssBytes", mem["workingSetBytes"]) / MB
            usage = mem.get("usageBytes", mem["workingSetBytes"]) / MB
            cpu = c.get("cpu") or {}
            m = MemSample(
                total_mb=total,
                rss_mb=rss,
                cache_mb=max(0.0, usage - total),
                swap_mb=0.0,
                pgpgin=int(mem.get("pageFaults", 0)),
                pgpgout=int(mem.get("majorPageFaults", 0)),
                running=1,
            )
            out[uid] = PodStats(
                m,
                cpu_cores=float(cpu.get("usageNanoCores") or 0) / 1e9,
                cpu_seconds=float(cpu.get("usageCoreNanoSeconds") or 0) / 1e9,
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
            out.append(memory_line(p.heroku_name, p.app_id, p.uid, m, quota))
        now = time.monotonic()
        if m.total_mb > quota and now - self.r14_at.get(p.uid, -1e9) >= self.settings.r14_interval:
            self.r14_at[p.uid] = now
            out += [mem_running_line(m, quota), "Error R14 (Memory quota exceeded)"]
        return out

    def forget(self, live: Iterable[str]) -> None:
        keep = set(live)
        for uid in [u for u in self.r14_at if u not in keep]:
            del self.r14_at[uid]


class Meter:
    """One round per metrics interval over the running pods and their nodes' figures: R14
    and log-runtime-metrics lines (through `heroku`), a round of formation dynos' samples for
    `on_sample` (the platform's metrics and telemetry, as the local dyno manager's), and what
    usage() reports until the next round."""

    def __init__(
        self,
        settings: DynoSettings,
        heroku: Callable[[PodView, str], None],
        on_sample: Callable[[tuple[DynoSample, ...]], None] | None = None,
    ) -> None:
        self.settings = settings
        self.rules = MemoryRules(settings)
        self._heroku = heroku
        self._on_sample = on_sample or (lambda samples: None)
        self._last: dict[str, tuple[PodView, PodStats]] = {}

    def round(
        self,
        running: list[PodView],
        by_node: dict[str, dict[str, PodStats]],
        features: Callable[[str], set[str]],
    ) -> None:
        samples: list[DynoSample] = []
        last: dict[str, tuple[PodView, PodStats]] = {}
        for p in running:
            stats = by_node.get(p.node or "", {}).get(p.uid)
            if stats is None:
                continue
            metrics = "log-runtime-metrics" in features(p.app_id)
            for line in self.rules.lines(p, stats.memory, metrics):
                self._heroku(p, line)
            last[p.uid] = (p, stats)
            if not p.one_off:
                quota = self.settings.quota_mb(p.size or "standard-1x")
                samples.append(
                    DynoSample(
                        p.app_id, p.heroku_name, time.time(), stats.memory.total_mb, quota,
                        stats.cpu_cores,
                    )
                )  # fmt: skip
        self._last = last
        self.rules.forget(p.uid for p in running)
        if samples:
            try:
                self._on_sample(tuple(samples))
            except Exception:  # the platform's bug must not stop the metering
                log.exception("on_sample callback failed")

    def usage(self, app_id: str, pods_now: dict[str, PodView]) -> list[DynoUsage]:
        """The app's dynos still running, with their figures of the last round."""
        out = []
        for uid, (_, stats) in self._last.items():
            now = pods_now.get(uid)
            if now is None or now.app_id != app_id or now.deleting or not now.running:
                continue
            out.append(
                DynoUsage(
                    name=now.heroku_name,
                    type=now.process_type,
                    memory_bytes=int(stats.memory.total_mb * MB),
                    memory_limit_bytes=int(self.settings.quota_mb(now.size or "standard-1x") * MB),
                    cpu_seconds=stats.cpu_seconds,
                    restarts=now.restart_count,
                )
            )
        return sorted(out, key=lambda u: u.name)
