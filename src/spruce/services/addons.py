"""Add-ons: provisioning real servers, attaching them to apps as config vars.

Every attach or detach changes config vars, so it makes a release ("Attach REDIS
(@ref:redis-cubed-12345)"); that release runs the release phase like any other. Provider
secrets live in the add-on's row and reach apps only as config vars.

Who may see an add-on, one rule: it is owned by, or attached to, an app the caller may see.
Any other add-on answers 404, so names of other users' add-ons are never revealed.
"""

from __future__ import annotations

import builtins
import re
import secrets
import uuid

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from spruce.store.db import Store
from spruce.store.models import Addon, AddonAttachment, App

from .addon_catalog import AddonCatalog, default_attachment_name, plan_id, service_id
from .apps import Apps, Visible
from .errors import Conflict, InvalidParams, NotFound
from .events import AddonActivity, AddonServerMoved, EventBus
from .model import AddonError
from .ports import AddonProvider, LogPort
from .releases import Releases
from .views import AddonView, AttachmentView, Ref, UserView

ATTACHMENT_RE = re.compile(r"^[A-Z][A-Z0-9_]*$")
ADDON_NAME_RE = re.compile(r"^[a-zA-Z][A-Za-z0-9_-]{1,60}$")
_WORDS = (
    "acute amorphous angular clear concave contoured convex cubic curved cylindrical deep "
    "defined dimensional encircled flat fluffy graceful horizontal infinite opaque parallel "
    "perpendicular polished regular rigid round shallow shaped sinuous slippery solid "
    "spherical symmetrical tetrahedral transparent triangular"
).split()


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
        return True
    except ValueError:
        return False


def _of_service(att: AttachmentView, service: object) -> bool:
    """Heroku's resolvers take an optional add-on service name (`heroku-postgresql`)."""
    if not isinstance(service, str) or not service:
        return True
    return att.addon_plan.name.split(":", 1)[0] == service


class Addons:
    def __init__(
        self,
        store: Store,
        events: EventBus,
        apps: Apps,
        releases: Releases,
        catalog: AddonCatalog,
        logs: LogPort,
    ) -> None:
        self.store = store
        self.events = events
        self.apps = apps
        self.releases = releases
        self.catalog = catalog
        self.logs = logs
        events.subscribe(AddonServerMoved, self._server_moved)
        events.subscribe(AddonActivity, self._activity)

    # -- views ---------------------------------------------------------------------------
    def _addon_views(self, s: Session, rows: builtins.list[Addon]) -> builtins.list[AddonView]:
        if not rows:
            return []
        ids = [a.id for a in rows]
        atts: dict[str, builtins.list[str]] = {}
        for addon_id, name in s.execute(
            select(AddonAttachment.addon_id, AddonAttachment.name).where(
                AddonAttachment.addon_id.in_(ids)
            )
        ):
            atts.setdefault(addon_id, []).append(name)
        names = dict(
            s.execute(select(App.id, App.name).where(App.id.in_({a.app_id for a in rows}))).all()
        )
        return [
            AddonView(
                id=a.id,
                name=a.name,
                app=Ref(a.app_id, names.get(a.app_id, "")),
                service=Ref(service_id(a.service), a.service),
                plan=Ref(plan_id(a.service, a.plan), f"{a.service}:{a.plan}"),
                state=a.state,
                config_var_names=tuple(
                    sorted({f"{n}_{k}" for n in atts.get(a.id, ()) for k in (a.config or {})})
                ),
                provider_id=a.provider_id or a.id,
                created_at=a.created_at,
                updated_at=a.updated_at,
                web_url=self.apps.addresses.addon_url(a.id),
            )
            for a in rows
        ]

    def _attachment_views(
        self, s: Session, rows: builtins.list[AddonAttachment]
    ) -> builtins.list[AttachmentView]:
        if not rows:
            return []
        addons = {
            a.id: a
            for a in s.scalars(select(Addon).where(Addon.id.in_({r.addon_id for r in rows})))
        }
        app_ids = {r.app_id for r in rows} | {a.app_id for a in addons.values()}
        names = dict(s.execute(select(App.id, App.name).where(App.id.in_(app_ids))).all())
        out = []
        for r in rows:
            a = addons[r.addon_id]
            out.append(
                AttachmentView(
                    id=r.id,
                    name=r.name,
                    namespace=r.namespace,
                    app=Ref(r.app_id, names.get(r.app_id, "")),
                    addon=Ref(a.id, a.name),
                    addon_app=Ref(a.app_id, names.get(a.app_id, "")),
                    addon_plan=Ref(plan_id(a.service, a.plan), f"{a.service}:{a.plan}"),
                    config_var_names=tuple(sorted(f"{r.name}_{k}" for k in (a.config or {}))),
                    created_at=r.created_at,
                    updated_at=r.updated_at,
                    web_url=self.apps.addresses.addon_url(a.id),
                )
            )
        return out

    def _one(self, s: Session, addon: Addon) -> AddonView:
        return self._addon_views(s, [addon])[0]

    def _one_att(self, s: Session, att: AddonAttachment) -> AttachmentView:
        return self._attachment_views(s, [att])[0]

    # -- access --------------------------------------------------------------------------
    def _visible(self, s: Session, actor: UserView) -> Visible:
        return self.apps.visible_ids(s, actor)

    def _visible_addons(self, s: Session, actor: UserView) -> Select[Addon]:
        visible = self._visible(s, actor)
        attached = select(AddonAttachment.addon_id).where(AddonAttachment.app_id.in_(visible))
        return select(Addon).where(or_(Addon.app_id.in_(visible), Addon.id.in_(attached)))

    def _find_addon(
        self, s: Session, actor: UserView, identity: str, app_id: str | None = None
    ) -> Addon:
        """An add-on by id, name, or (with an app) attachment name or config var."""
        q = self._visible_addons(s, actor)
        addon = s.scalar(
            q.where(Addon.id == identity if _is_uuid(identity) else Addon.name == identity)
        )
        if addon is None and app_id:
            att = self._find_attachment_row(s, app_id, identity)
            if att is not None:
                addon = s.scalar(q.where(Addon.id == att.addon_id))
        if addon is None:
            raise NotFound(f"Couldn't find that add-on ({identity}).")
        return addon

    @staticmethod
    def _find_attachment_row(s: Session, app_id: str, identity: str) -> AddonAttachment | None:
        """`DATABASE`, `DATABASE_URL` (a config var of it) or an attachment id on an app."""
        q = select(AddonAttachment).where(AddonAttachment.app_id == app_id)
        if _is_uuid(identity):
            return s.scalar(q.where(AddonAttachment.id == identity))
        att = s.scalar(q.where(AddonAttachment.name == identity.upper()))
        if att is None and "_" in identity:
            for cand in s.scalars(q):
                addon = s.get(Addon, cand.addon_id)
                keys = (addon.config or {}) if addon else {}
                if identity.upper() in {f"{cand.name}_{k}" for k in keys}:
                    return cand
        return att

    def get(self, actor: UserView, identity: str, app_id: str | None = None) -> AddonView:
        with self.store.session() as s:
            return self._one(s, self._find_addon(s, actor, identity, app_id))

    def get_internal(self, addon_id: str) -> AddonView:
        with self.store.session() as s:
            row = s.get(Addon, addon_id)
            if row is None:
                raise NotFound(f"Couldn't find that add-on ({addon_id}).")
            return self._one(s, row)

    def owning_app(self, addon: AddonView, actor: UserView) -> None:
        """Destroying or changing an add-on needs `manage` on the app that owns it."""
        self.apps.get(actor, addon.app.id, need="manage")

    def for_app(self, app_id: str) -> builtins.list[AddonView]:
        """Add-ons owned by or attached to an app."""
        with self.store.session() as s:
            ids = select(AddonAttachment.addon_id).where(AddonAttachment.app_id == app_id)
            rows = s.scalars(
                select(Addon)
                .where((Addon.app_id == app_id) | Addon.id.in_(ids))
                .order_by(Addon.created_at)
            )
            return self._addon_views(s, builtins.list(rows))

    def attached_app_ids(self, addon_id: str) -> builtins.list[str]:
        """The apps an add-on is attached to (the owner's first), for the platform itself."""
        with self.store.session() as s:
            rows = s.execute(
                select(AddonAttachment.app_id)
                .where(AddonAttachment.addon_id == addon_id)
                .order_by(AddonAttachment.created_at)
            )
            return builtins.list(dict.fromkeys(r[0] for r in rows))

    def visible(self, actor: UserView) -> builtins.list[AddonView]:
        with self.store.session() as s:
            rows = s.scalars(self._visible_addons(s, actor).order_by(Addon.created_at))
            return self._addon_views(s, builtins.list(rows))

    def attachments(
        self,
        actor: UserView,
        app_id: str | None = None,
        addon_id: str | None = None,
    ) -> builtins.list[AttachmentView]:
        with self.store.session() as s:
            q = select(AddonAttachment).order_by(AddonAttachment.created_at)
            q = q.where(AddonAttachment.app_id.in_(self._visible(s, actor)))
            if app_id:
                q = q.where(AddonAttachment.app_id == app_id)
            if addon_id:
                q = q.where(AddonAttachment.addon_id == addon_id)
            return self._attachment_views(s, builtins.list(s.scalars(q)))

    def attachment(
        self, actor: UserView, identity: str, app_id: str | None = None
    ) -> AttachmentView:
        with self.store.session() as s:
            att = None
            if app_id:
                att = self._find_attachment_row(s, app_id, identity)
            elif _is_uuid(identity):
                att = s.get(AddonAttachment, identity)
            else:
                att = s.scalar(
                    select(AddonAttachment).where(
                        AddonAttachment.name == identity,
                        AddonAttachment.app_id.in_(self._visible(s, actor)),
                    )
                )
            if att is None:
                raise NotFound(f"Couldn't find that add-on attachment ({identity}).")
            view = self._one_att(s, att)
        self.apps.get(actor, view.app.id)
        return view

    # -- resolving (Heroku's CLI: /actions/addons/resolve, /actions/addon-attachments/resolve)
    def resolve_attachments(
        self,
        actor: UserView,
        identity: object,
        app_id: str | None = None,
        addon_service: object = None,
    ) -> builtins.list[AttachmentView]:
        """Every attachment `identity` names: an attachment name or config var (`DATABASE`,
        `DATABASE_URL`), `app::NAME`, an attachment id, or an add-on's name or id; only
        attachments of `addon_service`'s add-ons when it is given."""
        if not isinstance(identity, str) or not identity:
            raise InvalidParams("addon_attachment is required.")
        if "::" in identity:
            app_name, _, identity = identity.partition("::")
            app_id = self.apps.get(actor, app_name).id
        with self.store.session() as s:
            visible = self._visible(s, actor)
            found: builtins.list[AddonAttachment] = []
            if app_id:
                att = self._find_attachment_row(s, app_id, identity)
                found = [att] if att is not None else []
            elif _is_uuid(identity):
                att = s.get(AddonAttachment, identity)
                found = [att] if att is not None else []
            else:
                found = builtins.list(
                    s.scalars(
                        select(AddonAttachment).where(AddonAttachment.name == identity.upper())
                    )
                )
            if not found:
                try:
                    addon = self._find_addon(s, actor, identity)
                except NotFound:
                    addon = None
                if addon is not None:
                    q = select(AddonAttachment).where(AddonAttachment.addon_id == addon.id)
                    if app_id:
                        q = q.where(AddonAttachment.app_id == app_id)
                    found = builtins.list(s.scalars(q.order_by(AddonAttachment.created_at)))
            allowed = set(s.scalars(visible))
            found = [a for a in found if a.app_id in allowed]
            views = [v for v in self._attachment_views(s, found) if _of_service(v, addon_service)]
            if not views:
                raise NotFound(f"Couldn't find that add-on attachment ({identity}).")
            return views

    def resolve_addon(
        self,
        actor: UserView,
        identity: object,
        app_id: str | None = None,
        addon_service: object = None,
    ) -> AddonView:
        """One add-on by its name or id, or by an attachment of it (`app::NAME`, `DATABASE`,
        `DATABASE_URL`), of `addon_service` when it is given."""
        if not isinstance(identity, str) or not identity:
            raise InvalidParams("addon is required.")
        if "::" in identity:
            app_name, _, identity = identity.partition("::")
            app_id = self.apps.get(actor, app_name).id
        with self.store.session() as s:
            view = self._one(s, self._find_addon(s, actor, identity, app_id))
        if isinstance(addon_service, str) and addon_service and view.service.name != addon_service:
            raise NotFound(f"Couldn't find that add-on ({identity}).")
        return view

    # -- provisioning --------------------------------------------------------------------
    def _new_name(self, s: Session, provider: AddonProvider) -> str:
        base = provider.name.removeprefix("heroku-")
        while True:
            name = f"{base}-{secrets.choice(_WORDS)}-{secrets.randbelow(90000) + 10000}"
            if not s.scalar(select(Addon.id).where(Addon.name == name)):
                return name

    @staticmethod
    def _attachment_name(
        s: Session, app_id: str, provider: AddonProvider, wanted: object, confirm: bool = False
    ) -> str:
        taken = set(s.scalars(select(AddonAttachment.name).where(AddonAttachment.app_id == app_id)))
        if wanted:
            if not isinstance(wanted, str) or not ATTACHMENT_RE.match(wanted.upper()):
                raise InvalidParams(
                    "Attachment names use letters, digits and underscores and start with a letter."
                )
            if wanted.upper() in taken and not confirm:
                raise InvalidParams(
                    f"An attachment named {wanted.upper()} already exists on this app."
                )
            return wanted.upper()
        return default_attachment_name(provider, taken)

    async def create(
        self,
        actor: UserView,
        app_id: str,
        plan: object,
        attachment_name: object = None,
        config: object = None,
        name: object = None,
    ) -> AddonView:
        provider, plan_obj = self.catalog.resolve(plan)
        if config is not None and not isinstance(config, dict):
            raise InvalidParams("config must be an object.")
        if name is not None and (not isinstance(name, str) or not ADDON_NAME_RE.match(name)):
            raise InvalidParams("Add-on names use letters, digits, dashes and underscores.")
        with self.store.session() as s:
            as_name = self._attachment_name(s, app_id, provider, attachment_name)
            addon_name = name if isinstance(name, str) and name else self._new_name(s, provider)
            if s.scalar(select(Addon.id).where(Addon.name == addon_name)):
                raise InvalidParams(f"The add-on name {addon_name} is already taken.")
            row = Addon(
                name=addon_name,
                app_id=app_id,
                service=provider.name,
                plan=plan_obj.name,
                state="provisioning",
            )
            s.add(row)
            s.flush()
            addon_id = row.id
        options = {str(k): str(v) for k, v in (config or {}).items()}
        with self.store.session() as s:
            owner = s.get(App, app_id)
            # An app in a space keeps its add-ons' data in its region (data residency).
            region = owner.region if owner is not None and owner.space_id else None
        try:
            values = await provider.provision(addon_id, plan_obj.name, options, region=region)
        except AddonError as e:
            with self.store.session() as s:
                gone = s.get(Addon, addon_id)
                if gone is not None:
                    s.delete(gone)
            raise InvalidParams(
                f"Could not provision {provider.name}:{plan_obj.name}: {e}"
            ) from None
        with self.store.session() as s:
            row2 = s.get(Addon, addon_id)
            if row2 is None:  # the app went away meanwhile
                raise NotFound("Couldn't find that app.")
            row2.config = dict(values)
            row2.state = "provisioned"
            row2.provider_id = addon_id
        self._attach(actor, addon_id, app_id, as_name)
        return self.get_internal(addon_id)

    def _plan_names(self, s: Session, app_id: str) -> builtins.list[str]:
        ids = select(AddonAttachment.addon_id).where(AddonAttachment.app_id == app_id)
        rows = s.scalars(select(Addon).where((Addon.app_id == app_id) | Addon.id.in_(ids)))
        return sorted({f"{a.service}:{a.plan}" for a in rows})

    def _attach(
        self, actor: UserView | None, addon_id: str, app_id: str, as_name: str
    ) -> AttachmentView:
        with self.store.session() as s:
            addon = s.get(Addon, addon_id)
            if addon is None:
                raise NotFound(f"Couldn't find that add-on ({addon_id}).")
            old = s.scalar(
                select(AddonAttachment).where(
                    AddonAttachment.app_id == app_id, AddonAttachment.name == as_name
                )
            )
            values: dict[str, str | None] = {}
            displaced = None
            if old is not None:  # confirmed replacement (redis:promote, pg:promote)
                if old.addon_id == addon_id:
                    return self._one_att(s, old)  # already there: nothing to change
                displaced = s.get(Addon, old.addon_id)
                s.delete(old)
                s.flush()
            if displaced is not None and not s.scalar(
                select(AddonAttachment.id).where(AddonAttachment.addon_id == displaced.id)
            ):
                # its last attachment went: it keeps one under the next free name, as
                # Heroku's promote does, so it stays reachable and billed to its app
                provider = self.catalog.provider(displaced.service)
                taken = set(
                    s.scalars(select(AddonAttachment.name).where(AddonAttachment.app_id == app_id))
                ) | {as_name}
                kept = default_attachment_name(provider, taken)
                s.add(AddonAttachment(addon_id=displaced.id, app_id=app_id, name=kept))
                values |= {f"{kept}_{k}": v for k, v in (displaced.config or {}).items()}
            att = AddonAttachment(addon_id=addon_id, app_id=app_id, name=as_name)
            s.add(att)
            s.flush()
            view = self._one_att(s, att)
            values |= {f"{as_name}_{k}": v for k, v in (addon.config or {}).items()}
            addon_name = addon.name
        self._release_config(actor, app_id, values, f"Attach {as_name} (@ref:{addon_name})")
        return view

    def _release_config(
        self, actor: UserView | None, app_id: str, patch: dict[str, str | None], description: str
    ) -> None:
        with self.store.session() as s:
            names = self._plan_names(s, app_id)
        _, release = self.releases.update_config(actor, app_id, patch, description=description)
        if release is None:  # nothing changed in config: still record the add-on change
            self.releases.create(actor, app_id, description, addon_plan_names=names)
        else:
            self.releases.set_addon_plan_names(release.id, names)

    def attach(
        self,
        actor: UserView,
        addon: AddonView,
        app_id: str,
        as_name: object = None,
        confirm: object = None,
    ) -> AttachmentView:
        app = self.apps.get(actor, app_id, need="manage")
        provider = self.catalog.provider(addon.service.name)
        with self.store.session() as s:
            replace = isinstance(confirm, str) and confirm == app.name
            if (
                isinstance(as_name, str)
                and not replace
                and s.scalar(
                    select(AddonAttachment.id).where(
                        AddonAttachment.app_id == app.id,
                        AddonAttachment.addon_id == addon.id,
                        AddonAttachment.name == as_name.upper(),
                    )
                )
            ):
                raise Conflict("This add-on is already attached to this app with that name.")
            name = self._attachment_name(s, app.id, provider, as_name, confirm=replace)
        return self._attach(actor, addon.id, app.id, name)

    def detach(self, actor: UserView, attachment: AttachmentView) -> AttachmentView:
        self.apps.get(actor, attachment.app.id, need="manage")
        with self.store.session() as s:
            addon = s.get(Addon, attachment.addon.id)
            if addon is None:
                raise NotFound("Couldn't find that add-on.")
            owners = s.scalars(
                select(AddonAttachment.id).where(
                    AddonAttachment.addon_id == addon.id, AddonAttachment.app_id == addon.app_id
                )
            )
            if addon.app_id == attachment.app.id and len(builtins.list(owners)) == 1:
                raise InvalidParams(
                    f"{attachment.name} is the owning app's only attachment of {addon.name}; "
                    "destroy the add-on instead."
                )
            row = s.get(AddonAttachment, attachment.id)
            if row is not None:
                s.delete(row)
            patch: dict[str, str | None] = {f"{attachment.name}_{k}": None for k in addon.config}
            addon_name = addon.name
        self._release_config(
            actor, attachment.app.id, patch, f"Detach {attachment.name} (@ref:{addon_name})"
        )
        return attachment

    async def detach_and_rotate(
        self, actor: UserView, attachment: AttachmentView
    ) -> AttachmentView:
        """Detach; for a provider with per-resource keys, the attachments left get a new
        key (a release each), so the detached app's copy stops working."""
        self.detach(actor, attachment)
        addon = self.get_internal(attachment.addon.id)
        provider = self.catalog.provider(addon.service.name)
        if provider.rotate_on_detach:
            try:
                values = await provider.reset_credentials(addon.id)
            except AddonError as e:
                raise InvalidParams(str(e)) from None
            self.apply_config(
                actor,
                addon.id,
                values,
                f"Update {{name}}: new key after detach from {attachment.app.name}",
            )
        return attachment

    async def destroy(
        self, actor: UserView, addon: AddonView, confirm: object = None, force: bool = False
    ) -> AddonView:
        with self.store.session() as s:
            atts = builtins.list(
                s.scalars(select(AddonAttachment).where(AddonAttachment.addon_id == addon.id))
            )
            row = s.get(Addon, addon.id)
            keys = builtins.list((row.config or {}) if row else {})
        others = {a.app_id for a in atts} - {addon.app.id}
        if others and not force and confirm != addon.name:
            raise InvalidParams(
                f"{addon.name} is attached to other apps; confirm by passing its name "
                f"({addon.name}) or use force."
            )
        for att in atts:
            with self.store.session() as s:
                gone = s.get(AddonAttachment, att.id)
                if gone is not None:
                    s.delete(gone)
            patch: dict[str, str | None] = {f"{att.name}_{k}": None for k in keys}
            self._release_config(actor, att.app_id, patch, f"Detach {att.name} (@ref:{addon.name})")
        try:
            await self.catalog.provider(addon.service.name).deprovision(addon.id)
        except AddonError:
            pass  # already gone: the row still goes
        with self.store.session() as s:
            addon_row = s.get(Addon, addon.id)
            if addon_row is not None:
                s.delete(addon_row)
        return addon

    async def destroy_for_app(self, actor: UserView, app_id: str) -> None:
        """An app going away: its add-ons are deprovisioned, others' are detached."""
        for addon in self.for_app(app_id):
            if addon.app.id == app_id:
                await self.destroy(actor, addon, force=True)
                continue
            with self.store.session() as s:
                rows = builtins.list(
                    s.scalars(
                        select(AddonAttachment).where(
                            AddonAttachment.app_id == app_id, AddonAttachment.addon_id == addon.id
                        )
                    )
                )
                views = self._attachment_views(s, rows)
            for att in views:
                await self.detach_and_rotate(actor, att)

    def rename(self, addon: AddonView, new_name: object) -> AddonView:
        if not isinstance(new_name, str) or not ADDON_NAME_RE.match(new_name):
            raise InvalidParams("Add-on names use letters, digits, dashes and underscores.")
        with self.store.session() as s:
            if s.scalar(select(Addon.id).where(Addon.name == new_name, Addon.id != addon.id)):
                raise InvalidParams(f"The add-on name {new_name} is already taken.")
            row = s.get(Addon, addon.id)
            if row is None:
                raise NotFound(f"Couldn't find that add-on ({addon.name}).")
            row.name = new_name
            s.flush()
            return self._one(s, row)

    async def change_plan(self, actor: UserView, addon: AddonView, plan: object) -> AddonView:
        """Move an add-on to another plan of its service (limits applied live)."""
        if isinstance(plan, dict):
            plan = plan.get("name") or plan.get("id")
        if not isinstance(plan, str) or not plan:
            raise InvalidParams("plan must be a plan name.")
        spec = plan if ":" in plan else f"{addon.service.name}:{plan}"
        provider, plan_obj = self.catalog.resolve(spec)
        if provider.name != addon.service.name:
            raise InvalidParams("A plan change must stay within the same add-on service.")
        try:
            await provider.change_plan(addon.id, plan_obj.name)
        except AddonError as e:
            raise InvalidParams(str(e)) from None
        with self.store.session() as s:
            row = s.get(Addon, addon.id)
            if row is None:
                raise NotFound(f"Couldn't find that add-on ({addon.name}).")
            row.plan = plan_obj.name
            s.flush()
            return self._one(s, row)

    # -- provider values -------------------------------------------------------------------
    def config_values(self, addon_id: str) -> dict[str, str]:
        """The provider's values for the add-on (`URL`, ...), as attached apps get them."""
        with self.store.session() as s:
            row = s.get(Addon, addon_id)
            if row is None:
                raise NotFound(f"Couldn't find that add-on ({addon_id}).")
            return dict(row.config or {})

    def apply_config(
        self, actor: UserView | None, addon_id: str, values: dict[str, str], description: str
    ) -> AddonView:
        """New provider values: stored and released to every attached app."""
        with self.store.session() as s:
            row = s.get(Addon, addon_id)
            if row is None:
                raise NotFound(f"Couldn't find that add-on ({addon_id}).")
            # merged: a provider may report only what changed (inference keeps no key)
            row.config = {**(row.config or {}), **values}
            atts = builtins.list(
                s.execute(
                    select(AddonAttachment.app_id, AddonAttachment.name).where(
                        AddonAttachment.addon_id == addon_id
                    )
                )
            )
        for app_id, name in atts:
            patch: dict[str, str | None] = {f"{name}_{k}": v for k, v in values.items()}
            self._release_config(actor, app_id, patch, description.format(name=name))
        return self.get_internal(addon_id)

    def _server_moved(self, event: AddonServerMoved) -> None:
        """A provider moved a server (its old port was taken): release the new URLs."""
        self.apply_config(None, event.addon_id, event.config, "Update {name} (server moved)")

    def _activity(self, event: AddonActivity) -> None:
        with self.store.session() as s:
            row = s.get(Addon, event.addon_id)
            app_id = row.app_id if row else None
        if app_id is not None:
            self.logs.emit(app_id, "heroku", "addons", event.message)

    def running_ids(self) -> dict[str, builtins.list[str]]:
        with self.store.session() as s:
            out: dict[str, builtins.list[str]] = {}
            for a in s.scalars(select(Addon).where(Addon.state == "provisioned")):
                out.setdefault(a.service, []).append(a.id)
            return out

    async def start_servers(self) -> builtins.list[str]:
        """Bring up every provider's servers; the failures, one sentence each."""
        ids = self.running_ids()
        failures = []
        for provider in self.catalog:
            try:
                await provider.start(ids.get(provider.name, []))
            except AddonError as e:
                failures.append(f"{provider.name}: {e}")
        return failures

    async def stop_servers(self) -> None:
        for provider in self.catalog:
            await provider.stop()
