"""The router's timers and limits, Heroku's values by default (tests shrink them).

One place for them: the integrator passes a `RouterTimers` (Spruce's platform builds it from
the "router" section of SPRUCE_TUNING) and the supervisor hands it to every worker.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass(frozen=True)
class RouterTimers:
    response: float = 30.0  # first response byte after the request was sent (H12)
    idle: float = 55.0  # rolling idle window either side (H15 dyno, H28 client)
    connect: float = 5.0  # connect to a dyno (H19 once every retry timed out)
    boot_wait: float = 75.0  # waiting for a starting/waking dyno (H20)
    all_quarantined: float = 75.0  # every dyno quarantined, then H99
    keepalive_idle: float = 90.0  # idle pooled connection to a dyno, closed quietly
    quarantine: float = 5.0  # a dyno that failed to connect is skipped this long
    page_cache: float = 300.0  # fetched MAINTENANCE_PAGE_URL / ERROR_PAGE_URL pages
    shutdown_grace: float = 10.0  # a stopping router lets requests in flight finish (then H24)
    connections_per_dyno: int = 1000  # client connections per app per router, x web dynos (H22)

    def __post_init__(self) -> None:
        if self.shutdown_grace < 0:
            raise ValueError("shutdown_grace must be >= 0")
        if self.connections_per_dyno < 1:
            raise ValueError("connections_per_dyno must be >= 1")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RouterTimers:
        types = {f.name: (int if f.type in (int, "int") else float) for f in fields(cls)}
        values: dict[str, Any] = {k: types[k](v) for k, v in d.items()}
        return cls(**values)
