"""Dyno sizes (Cedar generation) as data, with Heroku's names and limits."""

from __future__ import annotations

from dataclasses import dataclass

MB = 1024 * 1024


class DynoError(ValueError):
    """Bad input to the dyno manager (the API turns it into a 422)."""


class UnknownSize(DynoError):
    pass


class InvalidFormation(DynoError):
    pass


class DynoNotFound(DynoError):
    """No such app or dyno (the API turns it into a 404)."""


@dataclass(frozen=True)
class DynoSize:
    name: str
    """Canonical lower-case name, as accepted by the API (case-insensitive)."""
    display_name: str
    """As Heroku shows it (`Standard-1X`)."""
    memory_mb: int
    """Memory quota: R14 above it, R15 and a kill at twice it."""
    pids_max: int
    """Process/thread limit of one dyno."""
    compute: int
    """Heroku's relative compute units; informative only."""
    sleeps: bool = False
    """Eco dynos sleep after a period without web traffic."""


SIZES: tuple[DynoSize, ...] = (
    DynoSize("eco", "Eco", 512, 256, 1, sleeps=True),
    DynoSize("basic", "Basic", 512, 256, 1),
    DynoSize("standard-1x", "Standard-1X", 512, 256, 1),
    DynoSize("standard-2x", "Standard-2X", 1024, 512, 2),
    DynoSize("performance-m", "Performance-M", 2560, 16384, 12),
    DynoSize("performance-l", "Performance-L", 14336, 32768, 50),
    DynoSize("performance-l-ram", "Performance-L-RAM", 30720, 32768, 50),
    DynoSize("performance-xl", "Performance-XL", 63488, 32768, 100),
    DynoSize("performance-2xl", "Performance-2XL", 129024, 32768, 200),
)

_BY_NAME = {s.name: s for s in SIZES}
# Names Heroku accepted in the past and still maps.
_ALIASES = {
    "free": "eco",
    "hobby": "basic",
    "1x": "standard-1x",
    "2x": "standard-2x",
    "px": "performance-l",
    "pm": "performance-m",
}

DEFAULT_SIZE = "standard-1x"


def get_size(name: str | None) -> DynoSize:
    """Look a size up by name, case-insensitively; None gives the default size."""
    if name is None or name == "":
        return _BY_NAME[DEFAULT_SIZE]
    if not isinstance(name, str):
        raise UnknownSize(f"dyno size must be a string, not {type(name).__name__}")
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    size = _BY_NAME.get(key)
    if size is None:
        known = ", ".join(s.display_name for s in SIZES)
        raise UnknownSize(f"unknown dyno size {name!r}; known sizes: {known}")
    return size
