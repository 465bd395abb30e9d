"""Config vars and releases: every change of code or config is a new, numbered release.

A release snapshots the config and points at a slug. The current release is the newest
that succeeded; the dyno manager runs it. Releases whose slug declares a `release` process
start as "pending" until the release phase passes (see the runtime's release phase).
"""

from __future__ import annotations

import os
import re
import uuid
from typing import Any

from sqlalchemy import delete, func, select

from spruce.store.db import Store
from spruce.store.models import App, ConfigVar, Release, Slug, User, utcnow

from .errors import InvalidParams, NotFound
from .events import EventBus
from .formation import sync_formation

KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_CONFIG_BYTES = 64 * 1024  # Heroku: 64 kB of config per app


def _listing(keys: list[str]) -> str:
    return ", ".join(keys)


class Releases:
    def __init__(self, store: Store, events: EventBus) -> None:
        self.store = store
        self.events = events

    # -- config vars ---------------------------------------------------------
    def config(self, app_id: str) -> dict[str, str]:
        with self.store.session() as s:
            rows = s.scalars(
                select(ConfigVar).where(ConfigVar.app_id == app_id).order_by(ConfigVar.key)
            )
            return {r.key: r.value for r in rows}

    @staticmethod
    def _normalise_patch(patch: Any) -> dict[str, str | None]:
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

    def update_config(
        self, actor: User | None, app_id: str, patch: Any, description: str | None = None
    ) -> tuple[dict[str, str], Release | None]:
        """Apply `patch` (null unsets); makes a release when anything changed."""
        changes = self._normalise_patch(patch)
        with self.store.session() as s:
            current = {
                r.key: r for r in s.scalars(select(ConfigVar).where(ConfigVar.app_id == app_id))
            }
            set_keys, removed = [], []
            for key, value in changes.items():
                row = current.get(key)
                if value is None:
                    if row is not None:
                        s.delete(row)
                        del current[key]
                        removed.append(key)
                elif row is None:
                    s.add(ConfigVar(app_id=app_id, key=key, value=value))
                    current[key] = ConfigVar(app_id=app_id, key=key, value=value)
                    set_keys.append(key)
                elif row.value != value:
                    row.value = value
                    set_keys.append(key)
            result = {k: v.value for k, v in sorted(current.items())}
            if sum(len(k) + len(v) for k, v in result.items()) > MAX_CONFIG_BYTES:
                raise InvalidParams("Config vars are limited to 64 kB in total per app.")
            release = None
            if set_keys or removed:
                if description is None:
                    parts = []
                    if set_keys:
                        parts.append(f"Set {_listing(set_keys)} config vars")
                    if removed:
                        parts.append(f"Remove {_listing(removed)} config vars")
                    description = " and ".join(parts)
                release = self._new_release(s, app_id, description, actor, config=result)
        if release is not None:
            self._announce(release, actor)
        return result, release

    # -- releases ------------------------------------------------------------
    def _next_version(self, s, app_id: str) -> int:  # type: ignore[no-untyped-def]
        return (
            int(s.scalar(select(func.max(Release.version)).where(Release.app_id == app_id)) or 0)
            + 1
        )

    def _current(self, s, app_id: str) -> Release | None:  # type: ignore[no-untyped-def]
        return s.scalar(
            select(Release)
            .where(Release.app_id == app_id, Release.status == "succeeded")
            .order_by(Release.version.desc())
            .limit(1)
        )

    def _new_release(
        self,
        s,  # type: ignore[no-untyped-def]
        app_id: str,
        description: str,
        actor: User | None,
        config: dict[str, str] | None = None,
        slug_id: str | None = ...,  # type: ignore[assignment]
        addon_plan_names: list[str] | None = None,
    ) -> Release:
        current = self._current(s, app_id)
        if slug_id is ...:
            slug_id = current.slug_id if current else None
        if config is None:
            config = {
                r.key: r.value
                for r in s.scalars(select(ConfigVar).where(ConfigVar.app_id == app_id))
            }
        slug = s.get(Slug, slug_id) if slug_id else None
        if slug is not None:
            sync_formation(s, app_id, dict(slug.process_types or {}))
        pending = bool(slug and "release" in (slug.process_types or {}))
        release = Release(
            app_id=app_id,
            version=self._next_version(s, app_id),
            description=description,
            status="pending" if pending else "succeeded",
            slug_id=slug_id,
            user_id=actor.id if actor else None,
            config=dict(config),
            addon_plan_names=addon_plan_names
            if addon_plan_names is not None
            else (current.addon_plan_names if current else []),
        )
        s.add(release)
        s.flush()
        if not pending:
            app = s.get(App, app_id)
            if app is not None:
                app.released_at = utcnow()
        return release

    def _announce(
        self, release: Release, actor: User | None, caller_runs_phase: bool = False
    ) -> None:
        who = actor.email if actor else "Spruce"
        self.events.publish(
            "api_log", app_id=release.app_id, message=f"{release.description} by user {who}"
        )
        self.events.publish(
            "api_log",
            app_id=release.app_id,
            message=f"Release v{release.version} created by user {who}",
        )
        # A pending release waits for its release phase: the runtime runs it, unless the
        # caller (a build, which streams its output into the push) does.
        self.events.publish(
            "release",
            app_id=release.app_id,
            release_id=release.id,
            status=release.status,
            caller_runs_phase=caller_runs_phase,
        )

    def create(
        self,
        actor: User | None,
        app_id: str,
        description: str,
        slug_id: str | None = ...,  # type: ignore[assignment]
        config: dict[str, str] | None = None,
        addon_plan_names: list[str] | None = None,
        caller_runs_phase: bool = False,
    ) -> Release:
        with self.store.session() as s:
            release = self._new_release(
                s,
                app_id,
                description,
                actor,
                config=config,
                slug_id=slug_id,
                addon_plan_names=addon_plan_names,
            )
        self._announce(release, actor, caller_runs_phase)
        return release

    def list(self, app_id: str) -> list[Release]:
        with self.store.session() as s:
            return list(
                s.scalars(select(Release).where(Release.app_id == app_id).order_by(Release.version))
            )

    def get(self, app_id: str, identity: str | int) -> Release:
        with self.store.session() as s:
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

    def current(self, app_id: str) -> Release | None:
        with self.store.session() as s:
            return self._current(s, app_id)

    def is_current(self, release: Release) -> bool:
        cur = self.current(release.app_id)
        return cur is not None and cur.id == release.id

    def rollback(self, actor: User, app_id: str, identity: str) -> Release:
        """A new release with the code and config of an earlier one."""
        target = self.get(app_id, identity)
        if target.status == "failed":
            raise InvalidParams(f"Cannot roll back to v{target.version}: that release failed.")
        slug = self.slug(target.slug_id)
        if (
            slug is not None
            and slug.size is not None
            and not (slug.path and os.path.exists(slug.path))
        ):
            raise InvalidParams(
                f"Cannot roll back to v{target.version}: its slug was pruned (slug retention). "
                "Deploy that code again instead."
            )
        with self.store.session() as s:
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
            )
        self._announce(release, actor)
        return release

    def set_output_path(self, release_id: str, path: str) -> None:
        with self.store.session() as s:
            release = s.get(Release, release_id)
            if release is not None:
                release.output_path = path

    def finish(self, release_id: str, succeeded: bool, output_path: str | None = None) -> Release:
        """Close a pending release after its release phase."""
        with self.store.session() as s:
            release = s.get(Release, release_id)
            if release is None:
                raise NotFound("Couldn't find that release.")
            release.status = "succeeded" if succeeded else "failed"
            if output_path:
                release.output_path = output_path
            if succeeded:
                app = s.get(App, release.app_id)
                if app is not None:
                    app.released_at = utcnow()
        self.events.publish(
            "release", app_id=release.app_id, release_id=release.id, status=release.status
        )
        return release

    def slug(self, slug_id: str | None) -> Slug | None:
        if not slug_id:
            return None
        with self.store.session() as s:
            return s.get(Slug, slug_id)

    def create_slug(
        self,
        app_id: str,
        process_types: Any,
        commit: str | None = None,
        commit_description: str | None = None,
        buildpack_provided_description: str | None = None,
        stack: str | None = None,
        path: str | None = None,
        size: int | None = None,
        checksum: str | None = None,
    ) -> Slug:
        if not isinstance(process_types, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in process_types.items()
        ):
            raise InvalidParams(
                "process_types must be an object of process type names to commands."
            )
        for ptype in process_types:
            if not re.match(r"^[a-zA-Z0-9_-]{1,63}$", ptype):
                raise InvalidParams(f"Invalid process type name {ptype!r}.")
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
            return slug
