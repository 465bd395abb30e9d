"""Dyno sizes as the dyno backend uses them (the catalog in services has the one list)."""

from __future__ import annotations

from spruce.services.catalog import DYNO_SIZES, SIZE_ALIASES, SIZES_BY_NAME, DynoSize
from spruce.services.model import DynoError, DynoNotFound

MB = 1024 * 1024
SIZES = tuple(DYNO_SIZES)
DEFAULT_SIZE = "standard-1x"


class UnknownSize(DynoError):
    pass


class InvalidFormation(DynoError):
    pass


def get_size(name: str | None) -> DynoSize:
    """Look a size up by name, case-insensitively; None gives the default size."""
    if name is None or name == "":
        return SIZES_BY_NAME[DEFAULT_SIZE]
    if not isinstance(name, str):
        raise UnknownSize(f"dyno size must be a string, not {type(name).__name__}")
    key = name.strip().lower()
    size = SIZES_BY_NAME.get(SIZE_ALIASES.get(key, key))
    if size is None:
        known = ", ".join(s.display_name for s in SIZES)
        raise UnknownSize(f"unknown dyno size {name!r}; known sizes: {known}")
    return size


__all__ = [
    "DEFAULT_SIZE",
    "MB",
    "SIZES",
    "DynoError",
    "DynoNotFound",
    "DynoSize",
    "InvalidFormation",
    "UnknownSize",
    "get_size",
]
