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
# Fir apps: stack.name is `cnb` (the CLI prepends `launcher` to run commands when it sees it);
# it is not a stack a Cedar app can choose.
CNB_STACK: dict[str, Any] = {
    "id": "6c0e3d5a-2b1f-4f57-9c3e-5d1f0c0a7c11",
    "name": "cnb",
    "state": "supported",
    "default": False,
}


@dataclass(frozen=True)
class DynoSize:
    """One dyno size: the API's fields and the limits the dyno backend enforces."""

    id: str
    name: str
    """Canonical lower-case name, as accepted by the API (case-insensitive)."""
    display_name: str
    """As Heroku shows it (`Standard-1X`)."""
    compute: int
    memory_mb: int
    """Memory quota: R14 above it, R15 and a kill at twice it."""
    pids_max: int
    """Process/thread limit of one dyno."""
    cost_tier: str  # eco | basic | professional
    dyno_units: float
    max_per_type: int
    sleeps: bool = False
    """Eco dynos sleep after a period without web traffic."""
    generation: str = "cedar"

    @property
    def memory_gb(self) -> float:
        return self.memory_mb / 1024


_P = "professional"
DYNO_SIZES = [
    DynoSize("8d0a4d2e-0e2a-4b2f-9a59-0000000000e1", "eco", "Eco", 1, 512, 256, "eco", 0, 1, True),
    DynoSize("8d0a4d2e-0e2a-4b2f-9a59-0000000000b1", "basic", "Basic", 1, 512, 256, "basic", 1, 1),
    DynoSize("8d0a4d2e-0e2a-4b2f-9a59-000000000001", "standard-1x", "Standard-1X", 1, 512, 256, _P, 1, 100),
    DynoSize("8d0a4d2e-0e2a-4b2f-9a59-000000000002", "standard-2x", "Standard-2X", 2, 1024, 512, _P, 2, 100),
    DynoSize("8d0a4d2e-0e2a-4b2f-9a59-0000000000a1", "performance-m", "Performance-M", 2, 2560, 16384, _P, 8, 100),
    DynoSize("8d0a4d2e-0e2a-4b2f-9a59-0000000000a2", "performance-l", "Performance-L", 8, 14336, 32768, _P, 16, 100),
    DynoSize("8d0a4d2e-0e2a-4b2f-9a59-0000000000a3", "performance-l-ram", "Performance-L-RAM", 4, 30720, 32768, _P, 24, 100),
    DynoSize("8d0a4d2e-0e2a-4b2f-9a59-0000000000a4", "performance-xl", "Performance-XL", 8, 63488, 32768, _P, 50, 100),
    DynoSize("8d0a4d2e-0e2a-4b2f-9a59-0000000000a5", "performance-2xl", "Performance-2XL", 16, 129024, 32768, _P, 100, 100),
]  # fmt: skip


def _fir_size(n: int, vcpu: int, memory_gb: float) -> DynoSize:
    """A Fir size: lower-case names `dyno-<vcpu>c-<gb>gb` (Heroku shows them so too)."""
    gb = f"{memory_gb:g}"
    name = f"dyno-{vcpu}c-{gb}gb"
    memory_mb = int(memory_gb * 1024)
    pids = 256 if memory_mb <= 1024 else min(32768, 4096 * vcpu)
    return DynoSize(
        f"8d0a4d2e-0e2a-4b2f-9a59-f1{n:010d}", name, name, vcpu, memory_mb, pids, _P, vcpu, 100,
        generation="fir",
    )  # fmt: skip


# Fir sizes (CLI ps/type.ts): classic, general purpose (1:4), compute (1:2), memory (1:8).
FIR_SIZES = [
    _fir_size(i, vcpu, gb)
    for i, (vcpu, gb) in enumerate(
        [(1, 0.5), (2, 1)]
        + [(c, 4 * c) for c in (1, 2, 4, 8, 16)]
        + [(c, 2 * c) for c in (2, 4, 8, 16, 32)]
        + [(c, 8 * c) for c in (1, 2, 4, 8, 16)]
    )
]
DYNO_SIZES += FIR_SIZES
SIZES_BY_NAME = {s.name: s for s in DYNO_SIZES}
# Names Heroku accepted in the past and still maps.
SIZE_ALIASES = {
    "free": "eco",
    "hobby": "basic",
    "1x": "standard-1x",
    "2x": "standard-2x",
    "px": "performance-l",
    "pm": "performance-m",
}
# Heroku's CLI and API accept sizes case-insensitively ("Standard-1X").
DEFAULT_SIZE = "basic"
# [unconfirmed] Fir's default size: the smallest, as 512 MB is Cedar's everyday default.
FIR_DEFAULT_SIZE = "dyno-1c-0.5gb"


def default_size(generation: str) -> str:
    return FIR_DEFAULT_SIZE if generation == "fir" else DEFAULT_SIZE


def find_size(name: str) -> DynoSize | None:
    key = name.strip().lower()
    return SIZES_BY_NAME.get(SIZE_ALIASES.get(key, key))


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
    FeatureInfo(
        "3b5c6c2e-6f4b-4a7a-8c2e-000000000008",
        "runtime-heroku-exec",
        "Heroku Exec",
        "SSH sessions, file copies and port forwarding into running dynos (Cedar; dynos "
        "started after it is enabled).",
        doc_url="https://devcenter.heroku.com/articles/exec",
    ),
]
FEATURES_BY_NAME = {f.name: f for f in APP_FEATURES}
FEATURES_BY_ID = {f.id: f for f in APP_FEATURES}

# Account-level features (`heroku labs`, `/account/features`): Spruce's own, each with an
# effect. "beta" so `heroku labs` lists them (it leaves "general" ones to `features`).
ACCOUNT_FEATURES = [
    FeatureInfo(
        "5d0c1a7e-2b3f-4c8e-9a61-000000000001",
        "dyno-metadata-on-new-apps",
        "Dyno metadata on new apps",
        "Turn on runtime-dyno-metadata for every app you create from now on.",
        state="beta",
        doc_url="https://devcenter.heroku.com/articles/dyno-metadata",
    ),
    FeatureInfo(
        "5d0c1a7e-2b3f-4c8e-9a61-000000000002",
        "log-runtime-metrics-on-new-apps",
        "Runtime metrics on new apps",
        "Turn on log-runtime-metrics for every app you create from now on.",
        state="beta",
        doc_url="https://devcenter.heroku.com/articles/log-runtime-metrics",
    ),
]
# what each account feature turns on in a new app
ACCOUNT_FEATURE_APP_DEFAULTS = {
    "dyno-metadata-on-new-apps": "runtime-dyno-metadata",
    "log-runtime-metrics-on-new-apps": "log-runtime-metrics",
}
