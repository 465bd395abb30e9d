"""The services layer: the one place where Spruce's business rules live.

The API, the git endpoint, the CLI's local commands and the MCP tools all call these
objects; none of them holds a rule of its own.
"""

from __future__ import annotations

from spruce.store.db import Store

from .accounts import Accounts
from .apps import Apps
from .events import EventBus
from .features import Features
from .formation import Formations
from .releases import Releases


class Services:
    def __init__(self, store: Store, events: EventBus | None = None) -> None:
        self.store = store
        self.events = events or EventBus()
        self.accounts = Accounts(store)
        self.apps = Apps(store, self.events)
        self.releases = Releases(store, self.events)
        self.formation = Formations(store, self.events)
        self.features = Features(store, self.events)


__all__ = ["Services", "EventBus"]
