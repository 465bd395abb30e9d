"""The manager's record of one dyno, and the per-app state around it."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from spruce.dynos.metrics import LoadAverage
from spruce.dynos.model import AppRuntime, DynoInfo, Intent
from spruce.dynos.process import DynoProcess
from spruce.dynos.sizes import get_size
from spruce.services.model import DynoState

HOST = "127.0.0.1"


@dataclass(eq=False)
class Dyno:
    app_id: str
    name: str
    type: str
    index: int
    size: str
    command: str
    release_id: str
    release_version: int
    one_off: bool = False
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    launch_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    state: DynoState = DynoState.STARTING
    port: int | None = None
    host: str = HOST
    """Where the dyno listens: loopback, or its address in its space's network."""
    proc: DynoProcess | None = None
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    attach_url: str | None = None
    want: Intent = Intent.RUN
    """What its supervisor should do next."""
    crash_count: int = 0
    restarts: int = 0
    """Times its supervisor started it again (crashes, restarts); for telemetry."""
    up_since: float | None = None
    preboot_old: bool = False
    """An old-release web dyno kept serving while the new ones boot."""
    retiring: bool = False
    """Out of the router table (preboot switched away from it)."""
    stop_event: asyncio.Event = field(default_factory=asyncio.Event)
    kick: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    exit_status: int | None = None
    """A one-off's exit status once it ended (the release phase reads it)."""
    env: dict[str, str] = field(default_factory=dict)
    host_dir: Path | None = None
    home: str = ""
    uid: int | None = None
    launch_features: frozenset[str] = frozenset()
    """The app's runtime features when this launch started (runtime-heroku-exec)."""
    load: LoadAverage = field(default_factory=LoadAverage)
    r14_at: float = 0.0

    def info(self) -> DynoInfo:
        running = self.proc is not None and self.proc.proc is not None
        return DynoInfo(
            id=self.id,
            app_id=self.app_id,
            name=self.name,
            type=self.type,
            state=self.state,
            size=get_size(self.size).display_name,
            command=self.command,
            release_id=self.release_id,
            release_version=self.release_version,
            host=self.host,
            port=self.port if running else None,
            pid=self.proc.pid if running and self.proc else None,
            created_at=self.created_at,
            updated_at=self.updated_at,
            attach_url=self.attach_url,
        )


@dataclass(eq=False)
class AppState:
    app: AppRuntime
    dynos: list[Dyno] = field(default_factory=list)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    last_request: float = field(default_factory=time.monotonic)
    sleeping: bool = False
    homes: dict[str, tuple[Path, str]] = field(default_factory=dict)
    """release_id -> (slug directory on the host, HOME inside the dyno)."""
    preparing: dict[str, asyncio.Future[tuple[Path, str]]] = field(default_factory=dict)
    """release_id -> the copy of its slug being made."""
    preboot_task: asyncio.Task[None] | None = None
    execs: set[asyncio.Task[None]] = field(default_factory=set)

    def formation_dynos(self) -> list[Dyno]:
        return [d for d in self.dynos if not d.one_off]
