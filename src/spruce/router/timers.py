"""The router's timers, Heroku's values by default (tests shrink them)."""

from __future__ import annotations

from dataclasses import asdict, dataclass


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

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, float]) -> RouterTimers:
        return cls(**{k: float(v) for k, v in d.items()})
