"""Static platform data: regions, stacks, dyno sizes and app features."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Fixed ids so clients can cache them, as Heroku's are stable.
REGIONS: list[dict[str, Any]] = [
    {
        "id": "59accabd-516d-4f0e-83e6-6e3757701145",
        "name": "us",
        "description": "United States",
        "country": "United States",
        "locale": "Virginia",
        "private_capable": False,
        "provider": {"name": "spruce", "region": "us-east-1"},
    },
    {
        "id": "ed30241c-ed8c-4bb6-9714-61953675d0b4",
        "name": "eu",
        "description": "Europe",
        "country": "Ireland",
        "locale": "Dublin",
        "private_capable": False,
        "provider": {"name": "spruce", "region": "eu-west-1"},
    },
]

STACKS: list[dict[str, Any]] = [
    {
        "id": "ee582d3c-717d-4a57-ba5f-8b3a39f3a817",
        "name": "heroku-22",
        "state": "supported",
        "default": False,
    },
    {
        "id": "a4d5f1e5-7f3c-4f0b-9d59-2a5c0e0c8a24",
        "name": "heroku-24",
        "state": "supported",
        "default": True,
    },
]
DEFAULT_STACK = "heroku-24"


@dataclass(frozen=True)
class DynoSize:
    id: str
    name: str
    compute: int
    memory_gb: float
    cost_tier: str  # eco | basic | professional
    dyno_units: float
    max_per_type: int
    generation: str = "cedar"

    @property
    def memory_mb(self) -> int:
        return int(self.memory_gb * 1024)


DYNO_SIZES = [
    DynoSize("8d0a4d2e-0e2a-4b2f-9a59-0000000000e1", "eco", 1, 0.5, "eco", 0, 1),
    DynoSize("8d0a4d2e-0e2a-4b2f-9a59-0000000000b1", "basic", 1, 0.5, "basic", 1, 1),
    DynoSize("8d0a4d2e-0e2a-4b2f-9a59-000000000001", "standard-1x", 1, 0.5, "professional", 1, 100),
    DynoSize("8d0a4d2e-0e2a-4b2f-9a59-000000000002", "standard-2x", 2, 1.0, "professional", 2, 100),
    DynoSize(
        "8d0a4d2e-0e2a-4b2f-9a59-0000000000a1", "performance-m", 2, 2.5, "professional", 8, 100
    ),
    DynoSize(
        "8d0a4d2e-0e2a-4b2f-9a59-0000000000a2", "performance-l", 8, 14.0, "professional", 16, 100
    ),
    DynoSize(
        "8d0a4d2e-0e2a-4b2f-9a59-0000000000a3",
        "performance-l-ram",
        4,
        30.0,
        "professional",
        24,
        100,
    ),
    DynoSize(
        "8d0a4d2e-0e2a-4b2f-9a59-0000000000a4", "performance-xl", 8, 62.0, "professional", 50, 100
    ),
    DynoSize(
        "8d0a4d2e-0e2a-4b2f-9a59-0000000000a5",
        "performance-2xl",
        16,
        126.0,
        "professional",
        100,
        100,
    ),
]
SIZES_BY_NAME = {s.name: s for s in DYNO_SIZES}
# Heroku's CLI and API accept sizes case-insensitively ("Standard-1X").
DEFAULT_SIZE = "basic"


def find_size(name: str) -> DynoSize | None:
    return SIZES_BY_NAME.get(name.strip().lower())


@dataclass(frozen=True)
class FeatureInfo:
    id: str
    name: str
    display_name: str
    description: str
    state: str = "general"  # Heroku's CLI lists "general" features; labs are "beta"
    doc_url: str = "https://devcenter.heroku.com/articles/http-routing"


APP_FEATURES = [
    FeatureInfo(
        "3b5c6c2e-6f4b-4a7a-8c2e-000000000001",
        "http-session-affinity",
        "Session affinity",
        "Route requests from one client to the same dyno with a session affinity cookie.",
        doc_url="https://devcenter.heroku.com/articles/session-affinity",
    ),
    FeatureInfo(
        "3b5c6c2e-6f4b-4a7a-8c2e-000000000002",
        "preboot",
        "Preboot",
        "Start new dynos beside the old ones on a release and switch traffic when they are up.",
        doc_url="https://devcenter.heroku.com/articles/preboot",
    ),
    FeatureInfo(
        "3b5c6c2e-6f4b-4a7a-8c2e-000000000003",
        "http-disable-keepalive-to-dyno",
        "Disable keepalive to dynos",
        "Open a new connection to the dyno for every request (Connection: close).",
    ),
    FeatureInfo(
        "3b5c6c2e-6f4b-4a7a-8c2e-000000000004",
        "http-disable-http2",
        "Disable HTTP/2",
        "Do not offer HTTP/2 to clients of this app.",
    ),
    FeatureInfo(
        "3b5c6c2e-6f4b-4a7a-8c2e-000000000005",
        "http-end-to-end-continue",
        "End-to-end Expect: 100-continue",
        "Pass Expect: 100-continue to the dyno instead of answering it at the router.",
    ),
    FeatureInfo(
        "3b5c6c2e-6f4b-4a7a-8c2e-000000000006",
        "runtime-dyno-metadata",
        "Runtime dyno metadata",
        "Expose HEROKU_APP_ID, HEROKU_APP_NAME, HEROKU_RELEASE_VERSION and friends to dynos.",
        state="beta",
        doc_url="https://devcenter.heroku.com/articles/dyno-metadata",
    ),
    FeatureInfo(
        "3b5c6c2e-6f4b-4a7a-8c2e-000000000007",
        "log-runtime-metrics",
        "Log runtime metrics",
        "Write memory and load samples of every dyno into the app's log stream.",
        state="beta",
        doc_url="https://devcenter.heroku.com/articles/log-runtime-metrics",
    ),
]
FEATURES_BY_NAME = {f.name: f for f in APP_FEATURES}
FEATURES_BY_ID = {f.id: f for f in APP_FEATURES}
