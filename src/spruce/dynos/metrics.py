"""Heroku's log-runtime-metrics lines and the memory lines of R14/R15."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from spruce.dynos.process import MemSample


def memory_line(process: str, app_id: str, dyno_id: str, m: MemSample, quota_mb: float) -> str:
    return (
        f"source={process} dyno=heroku.{app_id}.{dyno_id} "
        f"sample#memory_total={m.total_mb:.2f}MB sample#memory_rss={m.rss_mb:.2f}MB "
        f"sample#memory_cache={m.cache_mb:.2f}MB sample#memory_swap={m.swap_mb:.2f}MB "
        f"sample#memory_pgpgin={m.pgpgin}pages sample#memory_pgpgout={m.pgpgout}pages "
        f"sample#memory_quota={quota_mb:.2f}MB"
    )


def load_line(process: str, app_id: str, dyno_id: str, load: LoadAverage) -> str:
    return (
        f"source={process} dyno=heroku.{app_id}.{dyno_id} "
        f"sample#load_avg_1m={load.avg[0]:.2f} sample#load_avg_5m={load.avg[1]:.2f} "
        f"sample#load_avg_15m={load.avg[2]:.2f}"
    )


def mem_running_line(m: MemSample, quota_mb: float) -> str:
    """`Process running mem=600M(117.2%)`, written before R14/R15."""
    return f"Process running mem={m.total_mb:.0f}M({100.0 * m.total_mb / quota_mb:.1f}%)"


@dataclass
class LoadAverage:
    """The kernel's exponentially damped load average, over one dyno's runnable processes."""

    avg: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])

    def update(self, runnable: int, interval: float) -> None:
        for i, window in enumerate((60.0, 300.0, 900.0)):
            decay = math.exp(-interval / window)
            self.avg[i] = self.avg[i] * decay + runnable * (1.0 - decay)
