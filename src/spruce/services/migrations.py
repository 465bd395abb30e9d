"""Cedar to Fir: `apps:migrate APP --space FIR_SPACE`.

A new Fir app in the space (`<app>-fir` unless named) gets the Cedar app's config vars (those
its add-ons set come with the attachments), its enabled features, its add-on attachments
under the same names and its formation's quantities; the Cedar app's source is built with
CNBs; once the Fir web dynos are up, the Cedar app's custom domains move to the Fir app in
one change, the Fir app's route reaching the routers before the Cedar app's, so no request
finds a hostname without an app. The Cedar app keeps running at its own hostname until the
user removes it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from spruce.store.db import Store
from spruce.store.models import Domain

from .addons import Addons
from .apps import Apps
from .builds import Builds
from .domains import Domains
from .errors import InvalidParams, ServiceError
from .events import ApiActivity, DomainsChanged, EventBus
from .features import Features
from .formation import Formations
from .model import BuildStatus, Generation
from .ports import DynoBackend, Output
from .releases import Releases
from .spaces import Spaces
from .views import AppView, UserView


@dataclass(frozen=True)
class Migration:
    cedar: AppView
    fir: AppView
    copied_config: tuple[str, ...]
    attachments: tuple[str, ...]
    features: tuple[str, ...]
    domains: tuple[str, ...] = ()
    """Custom domains moved to the Fir app (once complete)."""


class Migrations:
    def __init__(
        self,
        store: Store,
        events: EventBus,
        apps: Apps,
        spaces: Spaces,
        releases: Releases,
        features: Features,
        addons: Addons,
        formation: Formations,
        domains: Domains,
        builds: Builds,
        dynos: DynoBackend,
    ) -> None:
        self.store = store
        self.events = events
        self.apps = apps
        self.spaces = spaces
        self.releases = releases
        self.features = features
        self.addons = addons
        self.formation = formation
        self.domains = domains
        self.builds = builds
        self.dynos = dynos

    def prepare(self, actor: UserView, app: str, space: object, name: object = None) -> Migration:
        """The Fir app, with the Cedar app's config, features and attachments (no build)."""
        cedar = self.apps.get(actor, app, owner_only=True)
        if cedar.generation != Generation.CEDAR:
            raise InvalidParams(f"{cedar.name} is already a Fir app.")
        if not isinstance(space, str) or not space:
            raise InvalidParams("space is required: the Fir space the app moves to.")
        placement = self.spaces.placement(actor, None, space, None)
        if placement.generation != Generation.FIR:
            raise InvalidParams(f"The space {space} is not a Fir space.")
        new_name = name if isinstance(name, str) and name else f"{cedar.name}-fir"
        fir = self.apps.create(actor, new_name, placement=placement)
        attachments = self.addons.attachments(actor, cedar.id)
        from_addons = {v for a in attachments for v in a.config_var_names}
        config = {k: v for k, v in self.releases.config(cedar.id).items() if k not in from_addons}
        if config:
            self.releases.update_config(
                actor, fir.id, config, description=f"Copy config vars from {cedar.name}"
            )
        attached = []
        for att in attachments:
            addon = self.addons.get(actor, att.addon.id)
            self.addons.attach(actor, addon, fir.id, as_name=att.name)
            attached.append(att.name)
        features = []
        for feature in sorted(self.features.enabled(cedar.id)):
            try:
                self.features.update(actor, fir.id, feature, True)
                features.append(feature)
            except ServiceError:
                continue  # a Cedar-only feature: Fir does not take it
        self.events.publish(ApiActivity(fir.id, f"Migrate from {cedar.name} by {actor.email}"))
        return Migration(cedar, fir, tuple(sorted(config)), tuple(attached), tuple(features))

    async def complete(
        self,
        actor: UserView,
        migration: Migration,
        source_dir: Path,
        output: Output,
        timeout: float = 300.0,
    ) -> Migration:
        """Build the Cedar app's source for Fir, start the formation, then switch domains."""
        cedar, fir = migration.cedar, migration.fir
        build = self.builds.create_pending(
            actor, fir.id, {"url": f"migrate:{cedar.id}", "version": f"from {cedar.name}"}
        )
        result = await self.builds.run(actor, build, source_dir, output)
        if result.status != BuildStatus.SUCCEEDED:
            raise InvalidParams(f"The Fir build of {cedar.name} failed; nothing was switched.")
        wanted = [
            {"type": f.type, "quantity": f.quantity}
            for f in self.formation.list(cedar.id)
            if f.quantity
        ]
        if wanted:
            self.formation.update(actor, fir.id, wanted)
        if any(f["type"] == "web" for f in wanted):
            output("-----> Waiting for the Fir web dynos...")
            deadline = time.monotonic() + timeout
            while not self.dynos.web_endpoints(fir.id):
                if time.monotonic() > deadline:
                    raise InvalidParams("The Fir web dynos did not come up; nothing was switched.")
                await asyncio.sleep(0.2)
        moved = await self.switch_domains(actor, cedar, fir)
        output(f"-----> Switched {len(moved)} domain(s) from {cedar.name} to {fir.name}")
        return dataclasses.replace(migration, domains=tuple(moved))

    async def switch_domains(self, actor: UserView, cedar: AppView, fir: AppView) -> list[str]:
        """Move the Cedar app's custom domains to the Fir app in one transaction; the Fir
        app's route goes to the routers a loop turn before the Cedar app's, so each hostname
        always has an app."""
        with self.store.session() as s:
            rows = list(s.scalars(select(Domain).where(Domain.app_id == cedar.id)))
            for row in rows:
                row.app_id = fir.id
                row.cname = self.domains.addresses.default_hostname(fir.name)
            moved = [r.hostname for r in rows]
        if not moved:
            return []
        self.events.publish(DomainsChanged(fir.id))
        await asyncio.sleep(0)  # the router table's flush runs before the next change
        await asyncio.sleep(0)
        self.events.publish(DomainsChanged(cedar.id))
        for host in moved:
            self.events.publish(ApiActivity(fir.id, f"Add {host} domain by user {actor.email}"))
            self.events.publish(
                ApiActivity(cedar.id, f"Remove {host} domain by user {actor.email}")
            )
        return moved
