"""What services announce: typed, frozen events, subscribed to by type (as in hypercorn).

Services never call the dyno backend or the router to react to a change; they publish what
changed, and the parts that follow the store (deployments, the route table, the log router)
subscribe to the event types they care about. Handlers run synchronously, in publish order;
one handler's fault is logged and never fails the call that published.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
from collections import defaultdict
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .model import DynoSample, RequestSample

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    """Base of every event."""


@dataclass(frozen=True)
class AppEvent(Event):
    """An event about one app."""

    app_id: str


@dataclass(frozen=True)
class AppCreated(AppEvent):
    pass


@dataclass(frozen=True)
class AppChanged(AppEvent):
    """Name, maintenance, stack, settings or features changed."""

    renamed: bool = False
    old_name: str = ""
    """The name before a rename."""
    new_name: str = ""


@dataclass(frozen=True)
class AppDeleting(AppEvent):
    """The app is about to go: stop its dynos, builds and release phases first."""


@dataclass(frozen=True)
class AppDeleted(AppEvent):
    app_name: str = ""


@dataclass(frozen=True)
class ReleaseCreated(AppEvent):
    release_id: str = ""
    pending: bool = False
    """A pending release waits for its release phase."""
    phase_by_caller: bool = False
    """The creator runs the release phase itself (a build streams it into the push)."""


@dataclass(frozen=True)
class ReleaseFinished(AppEvent):
    """A release went live (succeeded) or never will (failed)."""

    release_id: str = ""
    succeeded: bool = True


@dataclass(frozen=True)
class FormationChanged(AppEvent):
    pass


@dataclass(frozen=True)
class DomainsChanged(AppEvent):
    pass


@dataclass(frozen=True)
class CertificatesChanged(AppEvent):
    pass


@dataclass(frozen=True)
class AcmChanged(AppEvent):
    """ACM was turned on or off, or refreshed: its scheduler looks at the app now."""


@dataclass(frozen=True)
class AcmChallengesChanged(AppEvent):
    """The HTTP-01 tokens of the app's ACM orders changed: the router's table follows."""


@dataclass(frozen=True)
class BuildFinished(AppEvent):
    build_id: str = ""
    succeeded: bool = False


@dataclass(frozen=True)
class DynosChanged(AppEvent):
    """The dyno backend changed an app's dynos (started, up, crashed, stopped)."""


REQUEST_CHANNEL: ContextVar[str | None] = ContextVar("spruce_request_channel", default=None)
"""The adapter a request came through when it is not the API (e.g. "MCP"): the app's
`app[api]` lines name it ("... by user X via MCP")."""


@dataclass(frozen=True)
class TelemetryDrainsChanged(AppEvent):
    """The app's telemetry drains changed (the router reports spans only for apps with one)."""


@dataclass(frozen=True)
class RequestsMeasured(Event):
    """The router answered requests (what it measured of each)."""

    samples: tuple[RequestSample, ...]


@dataclass(frozen=True)
class DynosMeasured(Event):
    """The dyno backend sampled its dynos' memory and load."""

    samples: tuple[DynoSample, ...]


@dataclass(frozen=True)
class ApiActivity(AppEvent):
    """A line for the app's log, as Heroku writes `app[api]` lines."""

    message: str = ""
    via: str | None = field(default_factory=REQUEST_CHANNEL.get)


@dataclass(frozen=True)
class AddonServerMoved(Event):
    """A provider restarted an add-on's server elsewhere (its old port was taken)."""

    addon_id: str
    config: dict[str, str]


@dataclass(frozen=True)
class AddonActivity(Event):
    """A platform line about an add-on's server, for the owning app's log."""

    addon_id: str
    message: str


E = TypeVar("E", bound=Event)
Handler = Callable[[Any], None]


class EventBus:
    """Handlers run on the event loop's thread, in publish order. Services called from
    worker threads (the API's store-bound handlers) publish from there: their events are
    handed to the loop once it is attached, so subscribers never race the loop."""

    def __init__(self) -> None:
        self._handlers: dict[type[Event], list[Handler]] = defaultdict(list)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None

    def attach_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Called once, on the loop's thread, when the platform starts."""
        self._loop, self._loop_thread = loop, threading.get_ident()

    def subscribe(self, kind: type[E], handler: Callable[[E], None]) -> None:
        self._handlers[kind].append(handler)

    def publish(self, event: Event) -> None:
        loop = self._loop
        if loop is not None and threading.get_ident() != self._loop_thread:
            # A context of its own: the reactions are not the publishing request's work
            # (its query count, for one, stays its own).
            loop.call_soon_threadsafe(self._dispatch, event, context=contextvars.Context())
            return
        self._dispatch(event)

    def _dispatch(self, event: Event) -> None:
        for handler in list(self._handlers.get(type(event), ())):
            try:
                handler(event)
            except Exception:  # one subscriber's fault must not fail the API call
                log.exception("a handler of %s failed", type(event).__name__)


__all__ = [
    "AcmChallengesChanged",
    "AcmChanged",
    "AddonActivity",
    "AddonServerMoved",
    "REQUEST_CHANNEL",
    "ApiActivity",
    "AppEvent",
    "AppChanged",
    "AppCreated",
    "AppDeleted",
    "AppDeleting",
    "BuildFinished",
    "CertificatesChanged",
    "DomainsChanged",
    "DynosChanged",
    "DynosMeasured",
    "Event",
    "EventBus",
    "FormationChanged",
    "ReleaseCreated",
    "RequestsMeasured",
    "ReleaseFinished",
]
