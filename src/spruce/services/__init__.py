"""The services layer: the one place where Spruce's business rules live.

The API, the git endpoint, the CLI's local commands and the MCP tools all call these
objects; none of them holds a rule of its own. Runtime parts that services drive (the log
router, the dyno manager, add-on providers) are handed in by the control plane.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from spruce.addons import AddonServices
from spruce.logs import LogRouter
from spruce.store.db import Store

from .accounts import Accounts
from .addons import Addons
from .apps import Apps
from .builds import Builds, BuildSettings
from .certs import Certs
from .domains import Domains
from .events import EventBus
from .features import Features
from .formation import Formations
from .logs import Logs
from .releases import Releases
from .setups import Setups


class Services:
    def __init__(
        self,
        store: Store,
        events: EventBus | None = None,
        *,
        home: Path | None = None,
        log_router: LogRouter | None = None,
        build_settings: BuildSettings | None = None,
        addon_services: AddonServices | None = None,
        app_domain: str = "localhost",
    ) -> None:
        self.store = store
        self.events = events or EventBus()
        self.accounts = Accounts(store)
        self.apps = Apps(store, self.events)
        self.releases = Releases(store, self.events)
        self.formation = Formations(store, self.events)
        self.features = Features(store, self.events)
        self.domains = Domains(store, self.events, app_domain)
        self.certs = Certs(store, self.events)
        self.logs = Logs(store, self.events, log_router or LogRouter())
        self.builds: Builds | None = (
            Builds(store, self.events, self.releases, home, build_settings) if home else None
        )
        self.dynos: Any = None  # set by the runtime (services.dynos.Dynos)
        self.addons: Addons | None = (
            Addons(store, self.events, self.releases, addon_services)
            if addon_services is not None
            else None
        )
        self.setups = Setups(self)
        self.events.subscribe("api_log", self._api_log)

    async def delete_app(self, actor: Any, identity: str) -> Any:
        """Destroy an app: its add-ons are deprovisioned (or detached) first."""
        app = self.apps.get(actor, identity, owner_only=True)
        if self.addons is not None:
            await self.addons.destroy_for_app(actor, app)
        return self.apps.delete(actor, app.id)

    def _api_log(self, kind: str, app_id: str, message: str, **_: Any) -> None:
        self.logs.api_line(app_id, message)


__all__ = ["Services", "EventBus"]
