"""Dynos: the dyno manager and its local (Cedar, process-based) backend."""

from spruce.dynos.manager import DynoManager
from spruce.dynos.model import AppRuntime, DynoInfo, DynoSettings
from spruce.dynos.sizes import (
    SIZES,
    DynoError,
    DynoNotFound,
    DynoSize,
    InvalidFormation,
    UnknownSize,
    get_size,
)
from spruce.services.model import WebEndpoint

__all__ = [
    "SIZES",
    "AppRuntime",
    "DynoError",
    "DynoInfo",
    "DynoManager",
    "DynoNotFound",
    "DynoSettings",
    "DynoSize",
    "InvalidFormation",
    "UnknownSize",
    "WebEndpoint",
    "get_size",
]
