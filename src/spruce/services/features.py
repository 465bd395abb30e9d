"""App features: the router and runtime flags a user turns on per app."""

from __future__ import annotations

from sqlalchemy import select

from spruce.store.db import Store
from spruce.store.models import AppFeature

from .catalog import APP_FEATURES, FEATURES_BY_ID, FEATURES_BY_NAME, FeatureInfo
from .errors import InvalidParams, NotFound
from .events import ApiActivity, AppChanged, EventBus
from .views import FeatureView, UserView


class Features:
    def __init__(self, store: Store, events: EventBus) -> None:
        self.store = store
        self.events = events

    def enabled(self, app_id: str) -> set[str]:
        with self.store.session() as s:
            rows = s.scalars(
                select(AppFeature).where(AppFeature.app_id == app_id, AppFeature.enabled.is_(True))
            )
            return {r.name for r in rows}

    def list(self, app_id: str) -> list[FeatureView]:
        on = self.enabled(app_id)
        return [FeatureView(f, f.name in on) for f in APP_FEATURES]

    @staticmethod
    def info(identity: str) -> FeatureInfo:
        f = FEATURES_BY_NAME.get(identity) or FEATURES_BY_ID.get(identity)
        if f is None:
            raise NotFound(f"Couldn't find that feature ({identity}).")
        return f

    def get(self, app_id: str, identity: str) -> FeatureView:
        f = self.info(identity)
        return FeatureView(f, f.name in self.enabled(app_id))

    def update(self, actor: UserView, app_id: str, identity: str, enabled: object) -> FeatureView:
        f = self.info(identity)
        if not isinstance(enabled, bool):
            raise InvalidParams("enabled must be true or false.")
        with self.store.session() as s:
            row = s.get(AppFeature, (app_id, f.name))
            if row is None:
                s.add(AppFeature(app_id=app_id, name=f.name, enabled=enabled))
            else:
                row.enabled = enabled
        self.events.publish(AppChanged(app_id))
        verb = "Enable" if enabled else "Disable"
        self.events.publish(ApiActivity(app_id, f"{verb} {f.name} by user {actor.email}"))
        return FeatureView(f, enabled)
