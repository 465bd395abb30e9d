"""What the router measured of each request, read back from its own log line.

Every request the router answers ends in exactly one router line (logline.py), which
carries the status, the dyno's service time and any H code. Reading the measures there
keeps the workers' hot paths unchanged: the control plane's log sink sees each line once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from spruce.events import LogSink
from spruce.services.model import RequestSample


def _int_field(line: str, key: str, suffix: str = "") -> int | None:
    # Everything after fwd= is the router's own (no client text), so the last one is ours.
    at = line.rfind(key)
    if at < 0:
        return None
    start = at + len(key)
    end = line.find(" ", start)
    raw = line[start : end if end >= 0 else len(line)]
    if suffix and raw.endswith(suffix):
        raw = raw[: -len(suffix)]
    return int(raw) if raw.isdigit() else None


def parse_request(app_id: str, line: str, at: float) -> RequestSample | None:
    """The measures in one router line (None for a line that is not about a request)."""
    if " method=" not in line or " status=" not in line:
        return None
    code = None
    # `sock=client at=error code=H27 desc=...`: the code is among the first three fields.
    for token in line.split(" ", 3)[:3]:
        if token.startswith("code="):
            code = token[5:] or None
            break
    return RequestSample(
        app_id,
        at,
        _int_field(line, " status="),
        _int_field(line, " service=", "ms"),
        code,
    )


class MeasuringLogSink:
    """A LogSink in front of the log router: router lines also become RequestSamples,
    handed to `on_samples` in one batch per event-loop turn."""

    def __init__(self, sink: LogSink, on_samples: Callable[[tuple[RequestSample, ...]], None]):
        self.sink = sink
        self.on_samples = on_samples
        self._pending: list[RequestSample] = []
        self._scheduled = False

    def emit(
        self, app_id: str, source: str, process: str, message: str, ts: float | None = None
    ) -> None:
        self.sink.emit(app_id, source, process, message, ts)
        if process != "router" or source != "heroku":
            return
        sample = parse_request(app_id, message, ts if ts is not None else time.time())
        if sample is None:
            return
        self._pending.append(sample)
        if self._scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        self._scheduled = True
        loop.call_soon(self.flush)

    def flush(self) -> None:
        self._scheduled = False
        samples, self._pending = tuple(self._pending), []
        if samples:
            self.on_samples(samples)
