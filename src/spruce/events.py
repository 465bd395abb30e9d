"""Small shared contracts between the platform's parts.

Every part that produces log lines (dynos, the dyno manager, the router, the API, builds)
writes to a `LogSink`; the log router (spruce.logs) is the real implementation.
"""

from __future__ import annotations

from typing import Protocol


class LogSink(Protocol):
    def emit(
        self, app_id: str, source: str, process: str, message: str, ts: float | None = None
    ) -> None:
        """Record one line for an app.

        source is "app" (the app's own output, API events) or "heroku" (platform lines:
        router, dyno manager); process is "web.1", "router", "api", "release", "build"...;
        ts is seconds since the epoch (now when None).
        """


class PrintLogSink:
    """A LogSink for tests and tools: keeps lines in memory."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str, str, str]] = []

    def emit(
        self, app_id: str, source: str, process: str, message: str, ts: float | None = None
    ) -> None:
        self.lines.append((app_id, source, process, message))
