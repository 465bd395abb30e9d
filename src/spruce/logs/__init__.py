"""The log router (Spruce's Logplex): ring buffers, log sessions, drains.

The control plane creates one `LogRouter`, passes it as the `LogSink` to every producer,
mounts `router.asgi_app` on the API server and calls `start()` / `stop()`.
"""

from spruce.logs.colors import LineColorizer, format_line
from spruce.logs.config import LogRouterConfig
from spruce.logs.drains import (
    DrainSpec,
    DrainStatus,
    DrainURL,
    DrainURLError,
    validate_drain_url,
)
from spruce.logs.lines import MAX_LINE_BYTES, LogLine, display_line, format_timestamp
from spruce.logs.router import LogRouter, new_drain_token
from spruce.logs.sessions import LogSession, LogSessionError

__all__ = [
    "MAX_LINE_BYTES",
    "DrainSpec",
    "DrainStatus",
    "DrainURL",
    "DrainURLError",
    "LineColorizer",
    "LogLine",
    "LogRouter",
    "LogRouterConfig",
    "LogSession",
    "LogSessionError",
    "display_line",
    "format_line",
    "format_timestamp",
    "new_drain_token",
    "validate_drain_url",
]
