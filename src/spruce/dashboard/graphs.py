"""Metrics graphs as inline SVG, drawn on the server from measured points (no script)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

from spruce.services.metrics import MetricsView

WIDTH, HEIGHT = 420, 170
LEFT, RIGHT, TOP, BOTTOM = 58, 8, 10, 22
COLOURS = ("#2563eb", "#d97706", "#dc2626", "#059669", "#7c3aed", "#db2777", "#0891b2")


@dataclass(frozen=True)
class Series:
    name: str
    values: tuple[float | None, ...]


def _nice_max(top: float) -> float:
    if top <= 0:
        return 1.0
    step = 1.0
    while step * 10 <= top:
        step *= 10
    while step > top:
        step /= 10
    for m in (1, 2, 5, 10):
        if m * step >= top:
            return m * step
    return 10 * step  # pragma: no cover


def _label(v: float, unit: str) -> str:
    text = f"{v:.0f}" if v >= 10 or v == int(v) else f"{v:.2f}"
    return f"{text} {unit}".strip()


def _clock(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%H:%M")


def chart(
    key: str,
    title: str,
    unit: str,
    starts: tuple[int, ...],
    series: list[Series],
    counts: bool = False,
) -> Markup:
    """A line chart: one polyline per series (gaps where nothing was measured). The legend
    gives each series' latest value, or with `counts` its total over the window."""
    measured = [v for s in series for v in s.values if v is not None]
    top = _nice_max(max(measured, default=0.0))
    n = len(starts)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(i: int) -> float:
        return LEFT + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def y(v: float) -> float:
        return TOP + plot_h * (1 - v / top)

    parts = [
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="{key}-title" '
        f'class="chart">',
        f'<title id="{key}-title">{escape(title)}</title>',
        f'<line class="axis" x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - RIGHT}" '
        f'y2="{TOP + plot_h}"/>',
        f'<line class="grid" x1="{LEFT}" y1="{TOP}" x2="{WIDTH - RIGHT}" y2="{TOP}"/>',
        f'<text class="tick" x="{LEFT - 4}" y="{TOP + 4}" text-anchor="end">'
        f"{escape(_label(top, unit))}</text>",
        f'<text class="tick" x="{LEFT - 4}" y="{TOP + plot_h}" text-anchor="end">0</text>',
    ]
    if n:
        parts.append(
            f'<text class="tick" x="{LEFT}" y="{HEIGHT - 6}">{_clock(starts[0])}</text>'
            f'<text class="tick" x="{WIDTH - RIGHT}" y="{HEIGHT - 6}" text-anchor="end">'
            f"{_clock(starts[-1])} UTC</text>"
        )
    legend = []
    for idx, s in enumerate(series):
        colour = COLOURS[idx % len(COLOURS)]
        runs: list[list[str]] = [[]]
        for i, v in enumerate(s.values):
            if v is None:
                if runs[-1]:
                    runs.append([])
                continue
            runs[-1].append(f"{x(i):.1f},{y(v):.1f}")
        for run in runs:
            if len(run) == 1:
                cx, cy = run[0].split(",")
                parts.append(f'<circle cx="{cx}" cy="{cy}" r="2.5" fill="{colour}"/>')
            elif run:
                parts.append(
                    f'<polyline data-series="{escape(s.name)}" fill="none" stroke="{colour}" '
                    f'stroke-width="2" points="{" ".join(run)}"/>'
                )
        if counts:
            shown = f"{sum(v or 0 for v in s.values):.0f} in all"
        else:
            latest = next((v for v in reversed(s.values) if v is not None), None)
            shown = "–" if latest is None else _label(latest, unit)
        legend.append(
            f'<li><span class="swatch" data-colour="{idx % len(COLOURS)}"></span>'
            f"{escape(s.name)}: <b>{escape(shown)}</b></li>"
        )
    parts.append("</svg>")
    points = len(measured)
    return Markup(
        f'<figure class="graph" id="graph-{key}" data-measured="{points}">'
        f"<figcaption>{escape(title)}</figcaption>{''.join(parts)}"
        f'<ul class="legend">{"".join(legend) or "<li>nothing measured yet</li>"}</ul>'
        "</figure>"
    )


def app_charts(view: MetricsView) -> list[Markup]:
    """Heroku's dashboard set: response time, throughput, router errors, memory, load."""
    pts = view.points
    starts = tuple(p.start for p in pts)
    per = "min" if view.bucket_seconds == 60 else f"{view.bucket_seconds}s"
    classes = sorted({c for p in pts for c in p.statuses}) or ["2xx"]
    codes = sorted({c for p in pts for c in p.codes})
    dynos = view.dyno_names
    quota = max((d.memory_quota_mb for p in pts for d in p.dynos.values()), default=0.0)
    memory = [
        Series(name, tuple(p.dynos[name].memory_mb if name in p.dynos else None for p in pts))
        for name in dynos
    ]
    peak = max((d.memory_max_mb for p in pts for d in p.dynos.values()), default=0.0)
    if quota and peak > quota / 2:  # the quota line only where it says something
        memory.append(Series("quota", tuple(quota for _ in pts)))
    return [
        chart(
            "response-time",
            "Response time",
            "ms",
            starts,
            [
                Series("p50", tuple(p.p50_ms for p in pts)),
                Series("p95", tuple(p.p95_ms for p in pts)),
                Series("p99", tuple(p.p99_ms for p in pts)),
            ],
        ),
        chart(
            "throughput",
            f"Throughput (requests per {per})",
            "",
            starts,
            [Series(c, tuple(float(p.statuses.get(c, 0)) for p in pts)) for c in classes],
            counts=True,
        ),
        chart(
            "errors",
            f"Router errors (per {per})",
            "",
            starts,
            [Series(c, tuple(float(p.codes.get(c, 0)) for p in pts)) for c in codes],
            counts=True,
        ),
        chart("memory", "Dyno memory", "MB", starts, memory),
        chart(
            "load",
            "Dyno load (1 min average of runnable processes)",
            "",
            starts,
            [
                Series(n, tuple(p.dynos[n].load_avg if n in p.dynos else None for p in pts))
                for n in dynos
            ],
        ),
    ]
