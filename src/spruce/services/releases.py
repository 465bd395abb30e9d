"""Config vars and releases: every change of code or config is a new, numbered release.

A release snapshots the config and points at a slug. The current release is the newest
that succeeded; the dyno backend runs it. Releases whose slug declares a `release` process
start as pending until the release phase (services/release_phase.py) passes.
"""

from __future__ import annotations

import builtins
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.orm import Session

from spruce.store.db import Store
from spruce.store.models import App, ConfigVar, OciImage, Release, Slug, User, utcnow

from .errors import InvalidParams, NotFound
from .events import ApiActivity, EventBus, ReleaseCreated, ReleaseFinished
from .formation import sync_formation
from .model import ReleaseStatus
from .oci_images import display_commands
from .settings import PlatformAddresses
from .views import ListRange, Ref, ReleaseView, SlugView, UserView

KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
PROCESS_TYPE_RE = re.compile(r"^[a-zA-Z0-9_-]{1,63}$")
MAX_CONFIG_BYTES = 64 * 1024  # Heroku: 64 kB of config per app
_KEEP = object()  # "the current release's slug"


def normalise_config_patch(patch: object) -> dict[str, str | None]:
    if not isinstance(patch, dict):
        raise InvalidParams("Config vars must be a JSON object of names to string values.")
    out: dict[str, str | None] = {}
    for key, value in patch.items():
        if not isinstance(key, str) or not KEY_RE.match(key):
            raise InvalidParams(
                f"Invalid config var name {key!r}: use letters, digits and underscores, "
                "not starting with a digit."
            )
        if value is None:
            out[key] = None
        elif isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif isinstance(value, int | float | str):
            out[key] = str(value)
        else:
            raise InvalidParams(f"Config var {key} must be a string or null.")
    return out


_CONFIG = (
    select(ConfigVar.key, ConfigVar.value)
    .where(ConfigVar.app_id == bindparam("app_id"))
    .order_by(ConfigVar.key)
)


_TOP = select(func.max(Release.version)).where(Release.app_id == bindparam("app_id"))
_LATEST = (
    select(Release, App.name, _TOP.scalar_subquery(), Slug.process_types, OciImage.process_types)
    .join(App, App.id == Release.app_id)
    .outerjoin(Slug, Slug.id == Release.slug_id)
    .outerjoin(OciImage, OciImage.id == Release.oci_image_id)
    .where(Release.app_id == bindparam("app_id"), Release.status == ReleaseStatus.SUCCEEDED)
    .order_by(Release.version.desc())
    .limit(1)
)
"""`Releases._latest`, built once (building it costs more than running it)."""
_NAMED = select(App.name, _TOP.scalar_subquery()).where(App.id == bindparam("app_id"))
_RELEASED = (
    update(App)
    .where(App.id == bindparam("app_id"))
    .values(released_at=bindparam("released"))
    .execution_options(synchronize_session=False)
)


@dataclass(frozen=True)
class _Latest:
    current: Release | None
    """The newest release that succeeded (what runs)."""
    app_name: str
    version: int
    """The newest version of any status (0 before the first)."""
    code_types: dict[str, str] | None
    """The process types of the current release's slug or image."""


def slug_view(slug: Slug) -> SlugView:
    return SlugView(
        id=slug.id,
        app_id=slug.app_id,
        process_types=dict(slug.process_types or {}),
        commit=slug.commit,
        commit_description=slug.commit_description,
        buildpack_provided_description=slug.buildpack_provided_description,
        size=slug.size,
        checksum=slug.checksum,
        stack=slug.stack,
        created_at=slug.created_at,
        updated_at=slug.updated_at,
    )


class Releases:
    def __init__(self, store: Store, events: EventBus, addresses: PlatformAddresses) -> None:
        self.store = store
        self.events = events
        self.addresses = addresses

    # -- views ---------------------------------------------------------------------------
    def _view(self, r: Release, app: Ref, email: str | None, current_id: str | None) -> ReleaseView:
        # a pending release has a stream at once: its phase may not have opened it yet
        has_output = r.output_path or r.status == ReleaseStatus.PENDING
        stream = self.addresses.stream_url("release-output", r.id) if has_output else None
        return ReleaseView(
            id=r.id,
            app=app,
            version=r.version,
            description=r.description,
            status=r.status,
            slug_id=r.slug_id,
            user_id=r.user_id,
            user_email=email,
            addon_plan_names=tuple(r.addon_plan_names or ()),
            current=r.id == current_id,
            output_stream_url=stream,
            created_at=r.created_at,
            updated_at=r.updated_at,
            oci_image_id=r.oci_image_id,
            eligible_for_rollback=r.status == ReleaseStatus.SUCCEEDED,
        )

    def _view_of(self, s: Session, r: Release) -> ReleaseView:
        app = s.get(App, r.app_id)
        user = s.get(User, r.user_id) if r.user_id else None
        cur = self._current(s, r.app_id)
        ref = Ref(r.app_id, app.name if app else "")
        return self._view(r, ref, user.email if user else None, cur.id if cur else None)

    # -- config vars -----------------------------------------------------------------------
    def config(self, app_id: str) -> dict[str, str]:
        with self.store.reading() as c:
            rows = c.execute(_CONFIG, {"app_id": app_id})
            return {key: value for key, value in rows}

    def update_config(
        self, actor: UserView | None, app_id: str, patch: object, description: str | None = None
    ) -> tuple[dict[str, str], ReleaseView | None]:
        """Apply `patch` (null unsets); makes a release when anything changed."""
        changes = normalise_config_patch(patch)
        with self.store.session() as s:
            current = {
                r.key: r for r in s.scalars(select(ConfigVar).where(ConfigVar.app_id == app_id))
            }
            values = {k: r.value for k, r in current.items()}
            set_keys, removed = [], []
            for key, value in changes.items():
                row = current.get(key)
                if value is None:
                    if row is not None:
                        s.delete(row)
                        del values[key]
                        removed.append(key)
                elif row is None:
                    s.add(ConfigVar(app_id=app_id, key=key, value=value))
                    values[key] = value
                    set_keys.append(key)
                elif row.value != value:
                    row.value = value
                    values[key] = value
                    set_keys.append(key)
            result = dict(sorted(values.items()))
            if sum(len(k) + len(v) for k, v in result.items()) > MAX_CONFIG_BYTES:
                raise InvalidParams("Config vars are limited to 64 kB in total per app.")
            release = None
            if set_keys or removed:
                if description is None:
                    parts = []
                    if set_keys:
                        parts.append(f"Set {', '.join(set_keys)} config vars")
                    if removed:
                        parts.append(f"Remove {', '.join(removed)} config vars")
                    description = " and ".join(parts)
                release = self._new_release(s, app_id, description, actor, config=result)
        if release is not None:
            self._announce(release, actor)
        return result, release

    # -- releases ------------------------------------------------------------------------
    @staticmethod
    def _current(s: Session, app_id: str) -> Release | None:
        return s.scalar(
            select(Release)
            .where(Release.app_id == app_id, Release.status == ReleaseStatus.SUCCEEDED)
            .order_by(Release.version.desc())
            .limit(1)
        )

    @staticmethod
    def _latest(s: Session, app_id: str) -> _Latest:
        """The current release with its code's process types, the app's name and its
        newest version number, in one statement."""
        row = s.execute(_LATEST, {"app_id": app_id}).first()
        if row is None:  # nothing succeeded yet (or no such app)
            named = s.execute(_NAMED, {"app_id": app_id}).first()
            name, version = (named[0], named[1]) if named is not None else ("", None)
            return _Latest(None, name, int(version or 0), None)
        current, name, version, slug_types, image_types = row
        code: dict[str, str] | None = None
        if current.slug_id and slug_types is not None:
            code = dict(slug_types)
        elif current.oci_image_id and image_types is not None:
            code = display_commands(dict(image_types))
        return _Latest(current, name, int(version or 0), code)

    def _new_release(
        self,
        s: Session,
        app_id: str,
        description: str,
        actor: UserView | None,
        config: dict[str, str] | None = None,
        slug_id: str | None | object = _KEEP,
        addon_plan_names: builtins.list[str] | None = None,
        oci_image_id: str | None | object = _KEEP,
    ) -> ReleaseView:
        """Insert the next release and return its view, without reading back what this
        already knows (a config change is six statements, the app's lookup included)."""
        latest = self._latest(s, app_id)
        current = latest.current
        keep_code = slug_id is _KEEP and oci_image_id is _KEEP
        if slug_id is _KEEP:
            slug_id = current.slug_id if current else None
        if oci_image_id is _KEEP:
            oci_image_id = current.oci_image_id if current else None
        assert slug_id is None or isinstance(slug_id, str)
        assert oci_image_id is None or isinstance(oci_image_id, str)
        if config is None:
            config = {
                r.key: r.value
                for r in s.scalars(select(ConfigVar).where(ConfigVar.app_id == app_id))
            }
        code_types: dict[str, str] | None = None
        in_step = False
        if keep_code:
            code_types = latest.code_types
            # The formation followed the current release's code when it was made, unless a
            # newer (pending or failed) release with other code came after it.
            in_step = current is not None and current.version == latest.version
        else:
            slug = s.get(Slug, slug_id) if slug_id else None
            image = s.get(OciImage, oci_image_id) if oci_image_id else None
            if slug is not None:
                code_types = dict(slug.process_types or {})
            elif image is not None:
                code_types = display_commands(dict(image.process_types or {}))
        if code_types is not None and not in_step:
            sync_formation(s, app_id, code_types)
        pending = "release" in (code_types or {})
        release = Release(
            app_id=app_id,
            version=latest.version + 1,
            description=description,
            status=ReleaseStatus.PENDING if pending else ReleaseStatus.SUCCEEDED,
            slug_id=slug_id,
            oci_image_id=oci_image_id,
            user_id=actor.id if actor else None,
            config=dict(config),
            addon_plan_names=addon_plan_names
            if addon_plan_names is not None
            else (current.addon_plan_names if current else []),
        )
        s.add(release)
        s.flush()
        if not pending:
            s.execute(_RELEASED, {"app_id": app_id, "released": utcnow()})
        # A pending release is not current until its release phase passes.
        return self._view(
            release,
            Ref(app_id, latest.app_name),
            actor.email if actor else None,
            None if pending else release.id,
        )

    def _announce(
        self, release: ReleaseView, actor: UserView | None, phase_by_caller: bool = False
    ) -> None:
        who = actor.email if actor else "Spruce"
        self.events.publish(ApiActivity(release.app.id, f"{release.description} by user {who}"))
        self.events.publish(
            ApiActivity(release.app.id, f"Release v{release.version} created by user {who}")
        )
        self.events.publish(
            ReleaseCreated(
                release.app.id,
                release_id=release.id,
                pending=release.status == ReleaseStatus.PENDING,
                phase_by_caller=phase_by_caller,
            )
        )

    def create(
        self,
        actor: UserView | None,
        app_id: str,
        description: str,
        slug_id: str | None | object = _KEEP,
        addon_plan_names: builtins.list[str] | None = None,
        phase_by_caller: bool = False,
        oci_image_id: str | None | object = _KEEP,
    ) -> ReleaseView:
        """A new release; with phase_by_caller, the caller runs a pending release's phase
        itself (a build streams it into the push) instead of the release phase service."""
        with self.store.session() as s:
            release = self._new_release(
                s,
                app_id,
                description,
                actor,
                slug_id=slug_id,
                addon_plan_names=addon_plan_names,
                oci_image_id=oci_image_id,
            )
        self._announce(release, actor, phase_by_caller)
        return release

    def deploy_slug(
        self, actor: UserView, app_id: str, slug_id: str, description: object = None
    ) -> ReleaseView:
        """POST /apps/{app}/releases with a slug: only the app's own slugs deploy."""
        self._require_generation(app_id, "cedar", "Fir apps release OCI images, not slugs.")
        slug = self.slug_of(app_id, slug_id)
        if description is not None and not isinstance(description, str):
            raise InvalidParams("description must be a string.")
        desc = description or f"Deploy {(slug.commit or slug.id)[:7]}"
        return self.create(actor, app_id, desc, slug_id=slug.id)

    def deploy_image(
        self, actor: UserView, app_id: str, image_id: str, description: object = None
    ) -> ReleaseView:
        """POST /apps/{app}/releases with an oci_image: only the app's own images deploy."""
        self._require_generation(app_id, "fir", "Cedar apps release slugs, not OCI images.")
        if description is not None and not isinstance(description, str):
            raise InvalidParams("description must be a string.")
        with self.store.session() as s:
            image = s.get(OciImage, image_id)
            if image is None or image.app_id != app_id:
                raise NotFound("Couldn't find that OCI image.")
            short = (image.commit or image.digest.removeprefix("sha256:"))[:7]
        desc = description or f"Deploy {short}"
        return self.create(actor, app_id, desc, slug_id=None, oci_image_id=image_id)

    def _require_generation(self, app_id: str, generation: str, message: str) -> None:
        with self.store.session() as s:
            app = s.get(App, app_id)
            if app is None:
                raise NotFound("Couldn't find that app.")
            if app.generation != generation:
                raise InvalidParams(message)

    def list(self, app_id: str) -> builtins.list[ReleaseView]:
        with self.store.session() as s:
            app = s.get(App, app_id)
            if app is None:
                raise NotFound("Couldn't find that app.")
            ref = Ref(app.id, app.name)
            rows = s.execute(
                select(Release, User.email)
                .outerjoin(User, User.id == Release.user_id)
                .where(Release.app_id == app_id)
                .order_by(Release.version)
            )
            pairs = builtins.list(rows)
        current = next(
            (r.id for r, _ in reversed(pairs) if r.status == ReleaseStatus.SUCCEEDED), None
        )
        return [self._view(r, ref, email, current) for r, email in pairs]

    def page_for(self, app: Ref, rng: ListRange) -> tuple[builtins.list[ReleaseView], bool]:
        """One page of an app's releases by version (or id), and whether more follow: cut
        in the database, one statement however long the history (the current release's
        version comes along as a subquery)."""
        if rng.field not in ("version", "id"):
            raise InvalidParams(f"Releases cannot be ordered by {rng.field}.")
        by_version = rng.field == "version"
        start: Any = rng.start
        if start is not None and by_version:
            try:
                start = int(start)
            except ValueError:
                raise InvalidParams(f"Invalid Range start {rng.start!r}: a version.") from None
        current = (
            select(func.max(Release.version))
            .where(Release.app_id == app.id, Release.status == ReleaseStatus.SUCCEEDED)
            .scalar_subquery()
        )
        q = (
            select(Release, User.email, current)
            .outerjoin(User, User.id == Release.user_id)
            .where(Release.app_id == app.id)
        )
        with self.store.session() as s:
            key: Any = Release.version if by_version else Release.id
            if not by_version and s.get_bind().dialect.name == "postgresql":
                key = key.collate("C")  # bytewise, as SQLite and the Range's Next-Range
            if start is not None:
                if rng.descending:
                    q = q.where(key < start if rng.exclusive else key <= start)
                else:
                    q = q.where(key > start if rng.exclusive else key >= start)
            q = q.order_by(key.desc() if rng.descending else key.asc()).limit(rng.limit + 1)
            rows = builtins.list(s.execute(q))
        views = [
            self._view(r, app, email, r.id if r.version == current_version else None)
            for r, email, current_version in rows[: rng.limit]
        ]
        return views, len(rows) > rng.limit

    def _find(self, s: Session, app_id: str, identity: str | int) -> Release:
        q = select(Release).where(Release.app_id == app_id)
        ident = str(identity).strip()
        if ident.lower().startswith("v") and ident[1:].isdigit():
            ident = ident[1:]
        if ident.isdigit():
            q = q.where(Release.version == int(ident))
        else:
            try:
                uuid.UUID(ident)
            except ValueError:
                raise NotFound("Couldn't find that release.") from None
            q = q.where(Release.id == ident)
        release = s.scalar(q)
        if release is None:
            raise NotFound("Couldn't find that release.")
        return release

    def get(self, app_id: str, identity: str | int) -> ReleaseView:
        with self.store.session() as s:
            return self._view_of(s, self._find(s, app_id, identity))

    def find(self, release_id: str) -> ReleaseView | None:
        with self.store.session() as s:
            row = s.get(Release, release_id)
            return self._view_of(s, row) if row is not None else None

    def release_config(self, app_id: str, identity: str) -> dict[str, str]:
        with self.store.session() as s:
            return dict(self._find(s, app_id, identity).config or {})

    def current(self, app_id: str) -> ReleaseView | None:
        with self.store.session() as s:
            row = self._current(s, app_id)
            return self._view_of(s, row) if row is not None else None

    def current_config(self, app_id: str) -> tuple[ReleaseView | None, dict[str, str]]:
        """The current release and the config it runs with (dynos, the router)."""
        with self.store.session() as s:
            row = self._current(s, app_id)
            if row is None:
                return None, {}
            return self._view_of(s, row), dict(row.config or {})

    def rollback(self, actor: UserView, app_id: str, identity: str) -> ReleaseView:
        """A new release with the code and config of an earlier one."""
        with self.store.session() as s:
            target = self._find(s, app_id, identity)
            if target.status == ReleaseStatus.FAILED:
                raise InvalidParams(f"Cannot roll back to v{target.version}: that release failed.")
            slug = s.get(Slug, target.slug_id) if target.slug_id else None
            if (
                slug is not None
                and slug.size is not None
                and not (slug.path and os.path.exists(slug.path))
            ):
                raise InvalidParams(
                    f"Cannot roll back to v{target.version}: its slug was pruned (slug "
                    "retention). Deploy that code again instead."
                )
            s.execute(delete(ConfigVar).where(ConfigVar.app_id == app_id))
            for k, v in (target.config or {}).items():
                s.add(ConfigVar(app_id=app_id, key=k, value=v))
            release = self._new_release(
                s,
                app_id,
                f"Rollback to v{target.version}",
                actor,
                config=dict(target.config or {}),
                slug_id=target.slug_id,
                oci_image_id=target.oci_image_id,
            )
        self._announce(release, actor)
        return release

    def set_addon_plan_names(self, release_id: str, names: builtins.list[str]) -> None:
        with self.store.session() as s:
            row = s.get(Release, release_id)
            if row is not None:
                row.addon_plan_names = names

    def set_output_path(self, release_id: str, path: str) -> None:
        with self.store.session() as s:
            release = s.get(Release, release_id)
            if release is not None:
                release.output_path = path

    def output(self, release_id: str) -> tuple[Path | None, bool]:
        """The release phase's output file, and whether the phase is still running."""
        with self.store.session() as s:
            r = s.get(Release, release_id)
            if r is None:
                return None, False
            pending = r.status == ReleaseStatus.PENDING
            return (Path(r.output_path) if r.output_path else None), pending

    def finish(self, release_id: str, succeeded: bool) -> ReleaseView | None:
        """Close a pending release after its release phase (None: the app is gone)."""
        with self.store.session() as s:
            release = s.get(Release, release_id)
            if release is None:
                return None
            release.status = ReleaseStatus.SUCCEEDED if succeeded else ReleaseStatus.FAILED
            if succeeded:
                app = s.get(App, release.app_id)
                if app is not None:
                    app.released_at = utcnow()
            s.flush()
            view = self._view_of(s, release)
        self.events.publish(ReleaseFinished(view.app.id, release_id=view.id, succeeded=succeeded))
        return view

    # -- slugs ---------------------------------------------------------------------------
    def slug(self, slug_id: str | None) -> SlugView | None:
        if not slug_id:
            return None
        with self.store.session() as s:
            row = s.get(Slug, slug_id)
            return slug_view(row) if row is not None else None

    def slug_of(self, app_id: str, slug_id: str) -> SlugView:
        slug = self.slug(slug_id)
        if slug is None or slug.app_id != app_id:
            raise NotFound("Couldn't find that slug.")
        return slug

    def slug_file(self, slug_id: str) -> tuple[Path | None, bool]:
        """The slug's tarball, and whether it ever had one (pruned slugs keep their size)."""
        with self.store.session() as s:
            row = s.get(Slug, slug_id)
            if row is None:
                return None, False
            path = Path(row.path) if row.path and os.path.exists(row.path) else None
            return path, row.size is not None

    def create_slug(
        self,
        app_id: str,
        process_types: Any,
        commit: Any = None,
        commit_description: Any = None,
        buildpack_provided_description: Any = None,
        stack: Any = None,
        path: str | None = None,
        size: int | None = None,
        checksum: Any = None,
    ) -> SlugView:
        if not isinstance(process_types, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in process_types.items()
        ):
            raise InvalidParams(
                "process_types must be an object of process type names to commands."
            )
        for ptype in process_types:
            if not PROCESS_TYPE_RE.match(ptype):
                raise InvalidParams(f"Invalid process type name {ptype!r}.")
        for name, value in (
            ("commit", commit),
            ("commit_description", commit_description),
            ("buildpack_provided_description", buildpack_provided_description),
            ("stack", stack),
            ("checksum", checksum),
        ):
            if value is not None and not isinstance(value, str):
                raise InvalidParams(f"{name} must be a string.")
        with self.store.session() as s:
            app = s.get(App, app_id)
            if app is None:
                raise NotFound("Couldn't find that app.")
            slug = Slug(
                app_id=app_id,
                process_types=dict(process_types),
                commit=commit,
                commit_description=commit_description,
                buildpack_provided_description=buildpack_provided_description,
                stack=stack or app.stack,
                path=path,
                size=size,
                checksum=checksum,
            )
            s.add(slug)
            if buildpack_provided_description:
                app.buildpack_provided_description = buildpack_provided_description
            if size is not None:
                app.slug_size = size
            s.flush()
            return slug_view(slug)

    def prune_slugs(self, app_id: str, keep_newest: int) -> None:
        """Delete slug files that no recent release uses (rollback beyond them is refused)."""
        with self.store.session() as s:
            recent = s.scalars(
                select(Release.slug_id)
                .where(Release.app_id == app_id)
                .order_by(Release.version.desc())
                .limit(keep_newest)
            )
            keep = {x for x in recent if x}
            for slug in s.scalars(select(Slug).where(Slug.app_id == app_id)):
                # Runs under the app's build lock, so no build is writing a slug meanwhile.
                if slug.id not in keep and slug.path and os.path.exists(slug.path):
                    os.unlink(slug.path)
                    slug.path = None
