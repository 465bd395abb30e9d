"""Log drains: forwarding every line of an app to syslog (TCP/TLS) or HTTPS endpoints."""

from spruce.logs.drains.base import DrainSpec, DrainStatus, DrainWorker
from spruce.logs.drains.factory import make_worker
from spruce.logs.drains.urls import DrainURL, DrainURLError, validate_drain_url

__all__ = [
    "DrainSpec",
    "DrainStatus",
    "DrainURL",
    "DrainURLError",
    "DrainWorker",
    "make_worker",
    "validate_drain_url",
]
