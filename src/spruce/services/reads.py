"""The services an API read worker needs (spruce up --api-workers): store-only reads.

A worker process answers GETs of apps, config vars, releases and formation straight from
the store; everything else goes to the main process, which holds the event bus, the dyno
manager, the router's feed and the logs. These are the same service classes the main
process uses, so a read answers the same whichever process serves it.
"""

from __future__ import annotations

from pathlib import Path

from spruce.store.db import Store

from .accounts import RATE_LIMIT, RATE_WINDOW, Accounts
from .apps import Apps
from .events import EventBus
from .formation import Formations
from .releases import Releases
from .settings import PlatformAddresses
from .shared import SharedLimits


class ReadServices:
    def __init__(
        self,
        store: Store,
        addresses: PlatformAddresses,
        shared_limits: Path,
        rate_limit: int = RATE_LIMIT,
    ) -> None:
        # Reads publish nothing: this bus has no subscriber and no loop.
        events = EventBus()
        self.store = store
        self.addresses = addresses
        self.accounts = Accounts(store, SharedLimits(shared_limits, rate_limit, RATE_WINDOW))
        self.apps = Apps(store, events, addresses)
        self.releases = Releases(store, events, addresses)
        self.formation = Formations(store, events)

    @classmethod
    def open(
        cls,
        database_url: str,
        addresses: PlatformAddresses,
        shared_limits: Path,
        rate_limit: int = RATE_LIMIT,
        count_queries: bool = False,
    ) -> ReadServices:
        """Over the main process's store (it migrated it); `count_queries`: the store
        counts statements (SPRUCE_DEBUG_QUERIES)."""
        store = Store(database_url)
        if count_queries:
            store.count_queries()
        return cls(store, addresses, shared_limits, rate_limit)
