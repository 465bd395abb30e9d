"""Tunables of the log router, with Heroku's values as defaults (tests shorten the timers)."""

from __future__ import annotations

from dataclasses import dataclass

from spruce.logs.lines import MAX_LINE_BYTES


@dataclass(frozen=True)
class LogRouterConfig:
    buffer_lines: int = 1500
    """Lines kept per app for `logs` (Heroku keeps the last 1500)."""
    max_line_bytes: int = MAX_LINE_BYTES
    """Longer messages are split into several lines of at most this many UTF-8 bytes."""
    max_session_lines: int = 1500
    """Largest `lines` a log session may ask for."""
    session_ttl: float = 300.0
    """A log session URL that nobody reads for this long is gone."""
    tail_keepalive: float = 15.0
    """Seconds between SSE comments / nothing on a quiet tail (keeps proxies from closing it)."""
    tail_max_seconds: float = 3600.0
    """A tail stream is closed after this long; the CLI reconnects and resumes without gaps."""
    sse_retry_ms: int = 1000
    """Reconnect delay announced to EventSource clients of tail sessions."""
    drain_buffer_lines: int = 1024
    """Lines waiting per drain; beyond it lines are dropped, counted and reported as L10."""
    drain_batch_lines: int = 500
    """Most lines per HTTPS drain POST (and per syslog write)."""
    drain_backoff_min: float = 1.0
    drain_backoff_max: float = 30.0
    drain_connect_timeout: float = 10.0
    drain_write_timeout: float = 30.0
    """A drain that accepts no bytes for this long is treated as broken and reconnected."""
    drain_http_attempts: int = 3
    """POST attempts of one HTTPS batch before its lines are dropped (and counted)."""
    l10_interval: float = 10.0
    """How often overflowing drains are reported into the app's log stream."""

    def __post_init__(self) -> None:
        for name in ("buffer_lines", "max_line_bytes", "drain_buffer_lines", "drain_batch_lines"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.max_line_bytes < 16:
            raise ValueError("max_line_bytes must be at least 16")
