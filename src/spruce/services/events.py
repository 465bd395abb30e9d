"""A tiny in-process event bus: services announce changes, the runtime reacts.

Services never call the dyno manager or the router directly; they publish what changed
("release", "formation", "app", "app_deleted", "domains"...) with the app id, and the
control plane's subscribers converge dynos and rebuild the route table.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

Handler = Callable[..., Any]


class EventBus:
    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = defaultdict(list)

    def subscribe(self, kind: str, handler: Handler) -> None:
        self._handlers[kind].append(handler)

    def publish(self, kind: str, **payload: Any) -> None:
        for handler in list(self._handlers.get(kind, ())) + list(self._handlers.get("*", ())):
            try:
                handler(kind=kind, **payload)
            except Exception:  # one subscriber's fault must not fail the API call
                log.exception("event handler for %s failed", kind)
