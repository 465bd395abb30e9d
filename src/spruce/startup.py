"""What `spruce up` says while the platform starts: one line per part, then the total time.

`Platform.start(progress)` calls `progress(part, what)` once each part is up; `StartupReport`
prints those lines and the start time. The describe_* helpers turn what a part reports into
the words on its line (secrets never: a database URL loses its password).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:  # the CLI imports this module: keep it light
    from spruce.services.model import DynoInfo

_ADDON_WORDS = {"heroku-redis": "Key-Value Store", "heroku-postgresql": "Postgres"}


def _n(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def describe_store(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme.startswith("sqlite"):
        path = parts.path[1:] if parts.path.startswith("//") else parts.path
        return f"SQLite {path or '(in memory)'}"
    host = parts.hostname or "localhost"
    port = f":{parts.port}" if parts.port else ""
    return f"PostgreSQL {host}{port}{parts.path}"


def describe_addons(ids: Mapping[str, Sequence[str]]) -> str:
    counts = {service: len(v) for service, v in sorted(ids.items()) if v}
    if not counts:
        return "none yet"
    listed = ", ".join(f"{n} {_ADDON_WORDS.get(s, s)}" for s, n in counts.items())
    return f"{_n(sum(counts.values()), 'add-on')} served ({listed})"


def describe_workers(workers: int) -> str:
    if not workers:
        return "in-process router"
    return f"{workers} worker process{'' if workers == 1 else 'es'}"


def describe_dynos(by_app: Mapping[str, Sequence[DynoInfo]]) -> str:
    dynos = [d for ds in by_app.values() for d in ds]
    apps = sum(1 for ds in by_app.values() if ds)
    if not dynos:
        return "none running yet"
    up = sum(1 for d in dynos if d.state == "up")  # DynoState.UP
    state = "up" if up == len(dynos) else f"{up} up, the others starting"
    return f"{_n(len(dynos), 'dyno')} of {_n(apps, 'app')} brought back ({state})"


class StartupReport:
    """Prints `  <part>  <what>` as each part comes up, then `Spruce is up in N s.`"""

    def __init__(self, echo: Callable[[str], None], clock: Callable[[], float] = time.monotonic):
        self.echo = echo
        self.clock = clock
        self.started = clock()

    def begin(self, home: str) -> None:
        self.echo(f"Starting Spruce on {home}...")

    def __call__(self, part: str, what: str) -> None:
        self.echo(f"  {part:<9} {what}")

    def finish(self) -> None:
        self.echo(f"Spruce is up in {self.clock() - self.started:.1f} s.")
