"""Picks the drain implementation for a URL scheme."""

from __future__ import annotations

import ssl
from collections.abc import Callable

from spruce.logs.config import LogRouterConfig
from spruce.logs.drains.base import DrainSpec, DrainWorker
from spruce.logs.drains.http import HttpDrain
from spruce.logs.drains.syslog import SyslogDrain
from spruce.logs.drains.urls import validate_drain_url


def make_worker(
    app_id: str,
    spec: DrainSpec,
    config: LogRouterConfig,
    ssl_context: ssl.SSLContext | None,
    clock: Callable[[], float],
) -> DrainWorker:
    url = validate_drain_url(spec.url)
    cls: type[DrainWorker] = SyslogDrain if url.is_syslog else HttpDrain
    return cls(app_id, spec, config, ssl_context, clock)
