"""Add-ons: provisioning real servers, attaching them to apps as config vars.

Every attach or detach changes config vars, so it makes a release ("Attach REDIS
(@ref:redis-cubed-12345)"); that release runs the release phase like any other. Provider
secrets live in the add-on's row and reach apps only as config vars.
"""

from __future__ import annotations

import re
import secrets
import uuid
from typing import Any

from sqlalchemy import select

from spruce.addons import (
    AddonError,
    AddonServices,
    Provider,
    UnknownPlanError,
    UnknownServiceError,
)
from spruce.store.db import Store
from spruce.store.models import Addon, AddonAttachment, App, User

from .errors import Conflict, InvalidParams, NotFound
from .events import EventBus
from .releases import Releases

ATTACHMENT_RE = re.compile(r"^[A-Z][A-Z0-9_]*$")
_WORDS = (
    "acute",
    "amorphous",
    "angular",
    "clear",
    "concave",
    "contoured",
    "convex",
    "cubic",
    "curved",
    "cylindrical",
    "deep",
    "defined",
    "dimensional",
    "encircled",
    "flat",
    "fluffy",
    "graceful",
    "horizontal",
    "infinite",
    "opaque",
    "parallel",
    "perpendicular",
    "polished",
    "regular",
    "rigid",
    "round",
    "shallow",
    "shaped",
    "sinuous",
    "slippery",
    "solid",
    "spherical",
    "symmetrical",
    "tetrahedral",
    "transparent",
    "triangular",
)


def service_id(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"spruce:addon-service:{name}"))


def plan_id(service: str, plan: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"spruce:addon-plan:{service}:{plan}"))


class Addons:
    def __init__(
        self, store: Store, events: EventBus, releases: Releases, providers: AddonServices
    ) -> None:
        self.store = store
        self.events = events
        self.releases = releases
        self.providers = providers

    # -- catalog ------------------------------------------------------------------
    def services(self) -> list[Provider]:
        return list(self.providers)

    def service(self, identity: str) -> Provider:
        for p in self.providers:
            if identity in (p.name, service_id(p.name), *p.aliases):
                return p
        names = ", ".join(p.name for p in self.providers)
        raise NotFound(f"Couldn't find that add-on service ({identity}). Available: {names}.")

    def resolve(self, spec: Any) -> tuple[Provider, Any]:
        if not isinstance(spec, str) or not spec.strip():
            raise InvalidParams("plan is required, e.g. heroku-redis:mini.")
        try:
            return self.providers.resolve(spec.strip())
        except (UnknownServiceError, UnknownPlanError) as e:
            raise InvalidParams(str(e)) from None

    # -- lookups --------------------------------------------------------------------
    def get(self, identity: str, app_id: str | None = None) -> Addon:
        with self.store.session() as s:
            q = select(Addon)
            try:
                uuid.UUID(identity)
                q = q.where(Addon.id == identity)
            except ValueError:
                q = q.where(Addon.name == identity)
            addon = s.scalar(q)
            if addon is None and app_id:
                att = s.scalar(
                    select(AddonAttachment).where(
                        AddonAttachment.app_id == app_id, AddonAttachment.name == identity
                    )
                )
                addon = s.get(Addon, att.addon_id) if att else None
            if addon is None:
                raise NotFound(f"Couldn't find that add-on ({identity}).")
            return addon

    def for_app(self, app_id: str) -> list[Addon]:
        """Add-ons owned by or attached to an app."""
        with self.store.session() as s:
            ids = select(AddonAttachment.addon_id).where(AddonAttachment.app_id == app_id)
            return list(
                s.scalars(
                    select(Addon)
                    .where((Addon.app_id == app_id) | Addon.id.in_(ids))
                    .order_by(Addon.created_at)
                )
            )

    def all_for(self, app_ids: list[str]) -> list[Addon]:
        with self.store.session() as s:
            return list(
                s.scalars(select(Addon).where(Addon.app_id.in_(app_ids)).order_by(Addon.created_at))
            )

    def attachments(
        self, app_id: str | None = None, addon_id: str | None = None
    ) -> list[AddonAttachment]:
        with self.store.session() as s:
            q = select(AddonAttachment).order_by(AddonAttachment.created_at)
            if app_id:
                q = q.where(AddonAttachment.app_id == app_id)
            if addon_id:
                q = q.where(AddonAttachment.addon_id == addon_id)
            return list(s.scalars(q))

    def attachment(self, identity: str, app_id: str | None = None) -> AddonAttachment:
        with self.store.session() as s:
            q = select(AddonAttachment)
            try:
                uuid.UUID(identity)
                q = q.where(AddonAttachment.id == identity)
            except ValueError:
                q = q.where(AddonAttachment.name == identity)
                if app_id:
                    q = q.where(AddonAttachment.app_id == app_id)
            att = s.scalar(q)
            if att is None:
                raise NotFound(f"Couldn't find that add-on attachment ({identity}).")
            return att

    def config_var_names(self, addon: Addon) -> list[str]:
        names = []
        for att in self.attachments(addon_id=addon.id):
            names += [f"{att.name}_{k}" for k in addon.config]
        return sorted(set(names))

    # -- provisioning -----------------------------------------------------------------
    def _new_name(self, provider: Provider) -> str:
        base = provider.name.removeprefix("heroku-")
        with self.store.session() as s:
            while True:
                name = f"{base}-{secrets.choice(_WORDS)}-{secrets.randbelow(90000) + 10000}"
                if not s.scalar(select(Addon.id).where(Addon.name == name)):
                    return name

    def _attachment_name(self, app_id: str, provider: Provider, wanted: Any) -> str:
        taken = {a.name for a in self.attachments(app_id=app_id)}
        if wanted:
            if not isinstance(wanted, str) or not ATTACHMENT_RE.match(wanted.upper()):
                raise InvalidParams(
                    "Attachment names use letters, digits and underscores and start with a letter."
                )
            wanted = wanted.upper()
            if wanted in taken:
                raise InvalidParams(f"An attachment named {wanted} already exists on this app.")
            return str(wanted)
        return provider.attachment_name(taken)

    async def create(
        self,
        actor: User,
        app: App,
        plan: Any,
        attachment_name: Any = None,
        config: Any = None,
        name: Any = None,
    ) -> Addon:
        provider, plan_obj = self.resolve(plan)
        if config is not None and not isinstance(config, dict):
            raise InvalidParams("config must be an object.")
        as_name = self._attachment_name(app.id, provider, attachment_name)
        addon_name = name if isinstance(name, str) and name else self._new_name(provider)
        if not re.match(r"^[a-zA-Z][A-Za-z0-9_-]{1,60}$", addon_name):
            raise InvalidParams("Add-on names use letters, digits, dashes and underscores.")
        with self.store.session() as s:
            if s.scalar(select(Addon.id).where(Addon.name == addon_name)):
                raise InvalidParams(f"The add-on name {addon_name} is already taken.")
            addon = Addon(
                name=addon_name,
                app_id=app.id,
                service=provider.name,
                plan=plan_obj.name,
                state="provisioning",
            )
            s.add(addon)
        try:
            values = await provider.provision(addon.id, plan_obj.name, dict(config or {}))
        except AddonError as e:
            with self.store.session() as s:
                row = s.get(Addon, addon.id)
                if row is not None:
                    s.delete(row)
            raise InvalidParams(
                f"Could not provision {provider.name}:{plan_obj.name}: {e}"
            ) from None
        with self.store.session() as s:
            row = s.get(Addon, addon.id)
            assert row is not None
            row.config = dict(values)
            row.state = "provisioned"
            row.provider_id = addon.id
            addon = row
        self._attach(actor, addon, app, as_name)
        return addon

    def _plan_names(self, app_id: str) -> list[str]:
        return sorted({f"{a.service}:{a.plan}" for a in self.for_app(app_id)})

    def _attach(self, actor: User | None, addon: Addon, app: App, as_name: str) -> AddonAttachment:
        with self.store.session() as s:
            att = AddonAttachment(addon_id=addon.id, app_id=app.id, name=as_name)
            s.add(att)
        values = {f"{as_name}_{k}": v for k, v in (addon.config or {}).items()}
        self._release_config(actor, app.id, values, f"Attach {as_name} (@ref:{addon.name})")
        return att

    def _release_config(
        self, actor: User | None, app_id: str, patch: dict[str, str | None], description: str
    ) -> None:
        _, release = self.releases.update_config(actor, app_id, patch, description=description)
        if release is None:  # nothing changed in config: still record the add-on change
            release = self.releases.create(actor, app_id, description)
        from spruce.store.models import Release

        with self.store.session() as s:
            row = s.get(Release, release.id)
            if row is not None:
                row.addon_plan_names = self._plan_names(app_id)

    def attach(self, actor: User, addon: Addon, app: App, as_name: Any = None) -> AddonAttachment:
        provider = self.service(addon.service)
        if any(
            a.app_id == app.id and a.name == (as_name or "").upper()
            for a in self.attachments(addon_id=addon.id)
        ):
            raise Conflict("This add-on is already attached to this app with that name.")
        return self._attach(actor, addon, app, self._attachment_name(app.id, provider, as_name))

    def detach(self, actor: User, attachment: AddonAttachment) -> AddonAttachment:
        addon = self.get(attachment.addon_id)
        if (
            addon.app_id == attachment.app_id
            and len([a for a in self.attachments(addon_id=addon.id) if a.app_id == addon.app_id])
            == 1
        ):
            raise InvalidParams(
                f"{attachment.name} is the owning app's only attachment of {addon.name}; destroy the add-on instead."
            )
        with self.store.session() as s:
            row = s.get(AddonAttachment, attachment.id)
            if row is not None:
                s.delete(row)
        patch: dict[str, str | None] = {
            f"{attachment.name}_{k}": None for k in (addon.config or {})
        }
        self._release_config(
            actor, attachment.app_id, patch, f"Detach {attachment.name} (@ref:{addon.name})"
        )
        return attachment

    async def destroy(
        self, actor: User, addon: Addon, confirm: Any = None, force: bool = False
    ) -> Addon:
        others = {a.app_id for a in self.attachments(addon_id=addon.id)} - {addon.app_id}
        if others and not force and confirm != addon.name:
            raise InvalidParams(
                f"{addon.name} is attached to other apps; confirm by passing its name ({addon.name}) or use force."
            )
        for att in self.attachments(addon_id=addon.id):
            with self.store.session() as s:
                row = s.get(AddonAttachment, att.id)
                if row is not None:
                    s.delete(row)
            patch: dict[str, str | None] = {f"{att.name}_{k}": None for k in (addon.config or {})}
            self._release_config(actor, att.app_id, patch, f"Detach {att.name} (@ref:{addon.name})")
        try:
            await self.service(addon.service).deprovision(addon.id)
        except AddonError:
            pass  # already gone: the row still goes
        with self.store.session() as s:
            addon_row = s.get(Addon, addon.id)
            if addon_row is not None:
                s.delete(addon_row)
        return addon

    async def destroy_for_app(self, actor: User, app: App) -> None:
        for addon in self.for_app(app.id):
            if addon.app_id == app.id:
                await self.destroy(actor, addon, force=True)
            else:
                for att in self.attachments(app_id=app.id, addon_id=addon.id):
                    self.detach(actor, att)

    def rename(self, addon: Addon, new_name: Any) -> Addon:
        if not isinstance(new_name, str) or not re.match(
            r"^[a-zA-Z][A-Za-z0-9_-]{1,60}$", new_name
        ):
            raise InvalidParams("Add-on names use letters, digits, dashes and underscores.")
        with self.store.session() as s:
            if s.scalar(select(Addon.id).where(Addon.name == new_name, Addon.id != addon.id)):
                raise InvalidParams(f"The add-on name {new_name} is already taken.")
            row = s.get(Addon, addon.id)
            assert row is not None
            row.name = new_name
            return row

    async def change_plan(self, actor: User, addon: Addon, plan: Any) -> Addon:
        """Move an add-on to another plan of its service (limits applied live)."""
        if not isinstance(plan, str) or not plan:
            raise InvalidParams("plan must be a plan name.")
        provider, plan_obj = self.resolve(plan if ":" in plan else f"{addon.service}:{plan}")
        if provider.name != addon.service:
            raise InvalidParams("A plan change must stay within the same add-on service.")
        try:
            await provider.change_plan(addon.id, plan_obj.name)  # type: ignore[attr-defined]
        except AddonError as e:
            raise InvalidParams(str(e)) from None
        with self.store.session() as s:
            row = s.get(Addon, addon.id)
            assert row is not None
            row.plan = plan_obj.name
            addon = row
        return addon

    def get_for(self, visible_app_ids: set[str], identity: str, app_id: str | None = None) -> Addon:
        """An add-on the caller may act on: owned by or attached to one of its apps. Others
        answer 404, so add-on names of other users' apps are not revealed."""
        addon = self.get(identity, app_id)
        attached = {a.app_id for a in self.attachments(addon_id=addon.id)}
        if addon.app_id not in visible_app_ids and not (attached & visible_app_ids):
            raise NotFound(f"Couldn't find that add-on ({identity}).")
        return addon

    async def reset_credentials(self, actor: User, addon: Addon) -> Addon:
        provider = self.service(addon.service)
        values = await provider.reset_credentials(addon.id)
        return self.apply_config(actor, addon, values, "Update {name} by credential rotation")

    def apply_config(
        self, actor: User | None, addon: Addon, values: dict[str, str], description: str
    ) -> Addon:
        """New provider values: stored and released to every attached app."""
        with self.store.session() as s:
            row = s.get(Addon, addon.id)
            assert row is not None
            row.config = dict(values)
            addon = row
        for att in self.attachments(addon_id=addon.id):
            patch: dict[str, str | None] = {f"{att.name}_{k}": v for k, v in values.items()}
            self._release_config(actor, att.app_id, patch, description.format(name=att.name))
        return addon

    def running_ids(self) -> dict[str, list[str]]:
        with self.store.session() as s:
            out: dict[str, list[str]] = {}
            for a in s.scalars(select(Addon).where(Addon.state == "provisioned")):
                out.setdefault(a.service, []).append(a.id)
            return out
