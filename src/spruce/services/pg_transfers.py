"""Heroku's PG Backups "transfers" over Spruce's Postgres backups: what `heroku pg:backups*`
reads and starts through the data API (/client/v11/apps/{app}/transfers).

A backup (b001...) is a transfer from pg_dump to storage; it is the provider's dump file
and its metadata, numbered per database. A restore (r001...) is a transfer into
pg_restore, recorded in the store. Download links are sealed tokens with an expiry,
served without credentials like Heroku's public URLs.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select

from spruce.store.db import Store
from spruce.store.models import PgRestore, utcnow

from .addon_data import AddonData
from .addons import Addons
from .apps import Apps
from .errors import InvalidParams, NotFound
from .model import AddonError, Backup
from .sealing import SealBroken, Sealer
from .settings import PlatformAddresses
from .views import AddonView, UserView

PUBLIC_URL_TTL = 3600  # seconds a download link works, as Heroku's (one hour)
BACKUP_NAME = re.compile(r"^b(\d+)$")
# a backup's to_url: where a restore (this platform's own) finds it again
BACKUP_URL = re.compile(r"^spruce-backup://(?P<addon>[0-9a-f-]{36})/(?P<backup>b\d+)$")
_NS = uuid.UUID("6f1f4c1e-8f0e-4f55-9a57-3c3b0d7c5e11")


@dataclass(frozen=True)
class TransferView:
    uuid: str
    num: int
    kind: str  # "backup" | "restore"
    app_id: str
    addon_id: str
    from_name: str
    to_name: str
    from_url: str
    to_url: str
    created_at: dt.datetime
    finished_at: dt.datetime | None
    succeeded: bool
    processed_bytes: int
    source_bytes: int
    message: str = ""

    @property
    def name(self) -> str:
        return f"{'b' if self.kind == 'backup' else 'r'}{self.num:03d}"


def _created(b: Backup) -> dt.datetime:
    try:
        when = dt.datetime.fromisoformat(b.created)
    except ValueError:
        return utcnow()
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


class PgTransfers:
    def __init__(
        self,
        store: Store,
        apps: Apps,
        addons: Addons,
        data: AddonData,
        sealer: Sealer,
        addresses: PlatformAddresses,
    ) -> None:
        self.store = store
        self.apps = apps
        self.addons = addons
        self.data = data
        self.sealer = sealer
        self.addresses = addresses

    def _databases(self, app_id: str) -> list[AddonView]:
        """The app's own Postgres add-ons (transfers belong to the billing app)."""
        out = []
        for a in self.addons.for_app(app_id):
            if a.app.id == app_id and self.addons.catalog.provider(a.service.name).postgres():
                out.append(a)
        return out

    def _label(self, actor: UserView, addon: AddonView) -> str:
        """What Heroku names a backup's source: the database's attachment on its own app
        (DATABASE), else the add-on's name."""
        atts = self.addons.attachments(actor, app_id=addon.app.id, addon_id=addon.id)
        return atts[0].name if atts else addon.name

    def _backup(self, addon: AddonView, b: Backup, label: str) -> TransferView:
        m = BACKUP_NAME.match(b.id)
        when = _created(b)
        return TransferView(
            uuid=str(uuid.uuid5(_NS, f"{addon.id}/{b.id}")),
            num=int(m.group(1)) if m else 0,
            kind="backup",
            app_id=addon.app.id,
            addon_id=addon.id,
            from_name=label,
            to_name="BACKUP",
            from_url=addon.name,
            to_url=f"spruce-backup://{addon.id}/{b.id}",
            created_at=when,
            finished_at=when,
            succeeded=True,
            processed_bytes=b.size,
            source_bytes=b.size,
        )

    @staticmethod
    def _restore(r: PgRestore) -> TransferView:
        return TransferView(
            uuid=r.id,
            num=r.num,
            kind="restore",
            app_id=r.app_id,
            addon_id=r.addon_id,
            from_name=r.from_name,
            to_name=r.to_name,
            from_url=r.from_name,
            to_url=r.to_name,
            created_at=r.created_at,
            finished_at=r.finished_at,
            succeeded=r.succeeded,
            processed_bytes=r.source_bytes if r.succeeded else 0,
            source_bytes=r.source_bytes,
            message=r.message,
        )

    def list(self, actor: UserView, app_identity: str) -> list[TransferView]:
        app = self.apps.get(actor, app_identity)
        out: list[TransferView] = []
        for addon in self._databases(app.id):
            label = self._label(actor, addon)
            out.extend(self._backup(addon, b, label) for b in self.data.backups(addon))
        with self.store.session() as s:
            rows = s.scalars(select(PgRestore).where(PgRestore.app_id == app.id)).all()
            out.extend(self._restore(r) for r in rows)
        return sorted(out, key=lambda t: (t.created_at, t.kind, t.num))

    def get(self, actor: UserView, app_identity: str, identity: str) -> TransferView:
        """By uuid, or by number: a backup's first (Heroku's CLI asks for b001 as 1)."""
        transfers = self.list(actor, app_identity)
        for t in transfers:
            if t.uuid == identity:
                return t
        if identity.isdigit():
            for kind in ("backup", "restore"):
                for t in transfers:
                    if t.kind == kind and t.num == int(identity):
                        return t
        raise NotFound(f"Couldn't find that transfer ({identity}).")

    async def capture(self, actor: UserView, addon: AddonView) -> TransferView:
        self.addons.owning_app(addon, actor)
        backup = await self.data.capture_backup(addon)
        return self._backup(addon, backup, self._label(actor, addon))

    async def restore(self, actor: UserView, addon: AddonView, backup_url: object) -> TransferView:
        """Restore one of this platform's backups (a backup's to_url) into `addon`."""
        self.addons.owning_app(addon, actor)
        m = BACKUP_URL.match(backup_url) if isinstance(backup_url, str) else None
        if m is None:
            raise InvalidParams(
                "Spruce restores its own backups only (b001, or APP::b001): it does not "
                "download dumps from other URLs."
            )
        source = self.addons.get(actor, m.group("addon"))
        path = self.data.backup_file(source, m.group("backup"))
        with self.store.session() as s:
            num = (
                s.scalar(select(func.max(PgRestore.num)).where(PgRestore.app_id == addon.app.id))
                or 0
            ) + 1
            row = PgRestore(
                app_id=addon.app.id,
                addon_id=addon.id,
                num=num,
                from_name=f"{source.name} {m.group('backup')}",
                to_name=addon.name,
                source_bytes=path.stat().st_size,
            )
            s.add(row)
            s.flush()
            restore_id = row.id
        ok, message = True, ""
        try:
            await self.data.restore_backup(actor, addon, f"{source.name}::{m.group('backup')}")
        except (InvalidParams, NotFound, AddonError) as e:
            ok, message = False, str(e)
        with self.store.session() as s:
            found = s.get(PgRestore, restore_id)
            assert found is not None
            found.finished_at = utcnow()
            found.succeeded = ok
            found.message = message
            s.flush()
            return self._restore(found)

    async def delete(self, actor: UserView, app_identity: str, identity: str) -> TransferView:
        t = self.get(actor, app_identity, identity)
        if t.kind != "backup":
            raise InvalidParams(f"{t.name} is a restore: only backups can be deleted.")
        addon = self.addons.get(actor, t.addon_id)
        self.addons.owning_app(addon, actor)
        await self.data.delete_backup(addon, t.name)
        return t

    def public_url(self, actor: UserView, app_identity: str, identity: str) -> tuple[str, str]:
        """A download link for a backup, valid for an hour; (url, expires_at)."""
        t = self.get(actor, app_identity, identity)
        if t.kind != "backup":
            raise InvalidParams(f"{t.name} is a restore: it has no file to download.")
        expires = int(time.time()) + PUBLIC_URL_TTL
        token = self.sealer.seal(json.dumps({"a": t.addon_id, "b": t.name, "e": expires}))
        when = dt.datetime.fromtimestamp(expires, dt.UTC).strftime("%Y-%m-%d %H:%M:%S +0000")
        return self.addresses.download_url("backups", token), when

    def open_public(self, token: str) -> tuple[Path, str]:
        """The file behind a download link (NotFound once it expired), and its name."""
        try:
            doc = json.loads(self.sealer.open(token))
            addon_id, backup_id, expires = str(doc["a"]), str(doc["b"]), int(doc["e"])
        except (SealBroken, ValueError, KeyError, TypeError):
            raise NotFound("This backup link is not valid.") from None
        if expires < time.time():
            raise NotFound("This backup link has expired: ask for a new one.")
        addon = self.addons.get_internal(addon_id)
        return self.data.backup_file(addon, backup_id), f"{addon.name}-{backup_id}.dump"
