"""App features: the router and runtime flags a user turns on per app."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from spruce.store.db import Store
from spruce.store.models import AccountFeature, App, AppFeature

from .catalog import (
    ACCOUNT_FEATURE_APP_DEFAULTS,
    ACCOUNT_FEATURES,
    APP_FEATURES,
    FEATURES_BY_ID,
    FEATURES_BY_NAME,
    FeatureInfo,
)
from .errors import InvalidParams, NotFound, flag
from .events import ApiActivity, AppChanged, EventBus
from .model import Generation
from .views import FeatureView, UserView

# Heroku Exec (ps:exec, ps:copy, ps:forward, ps:socks) does not exist on Fir; Heroku's CLI
# reads this feature first, so refusing it is how those commands answer on Fir apps (the
# CLI's own check compares `generation` with a string and misses the object form).
EXEC_FEATURE = "runtime-heroku-exec"
FIR_EXEC_REFUSAL = (
    "This command is unavailable for this app. Use heroku run:inside instead. See "
    "https://devcenter.heroku.com/articles/run-tasks-in-an-existing-dyno."
)


class Features:
    def __init__(self, store: Store, events: EventBus) -> None:
        self.store = store
        self.events = events
        self.account = AccountFeatures(store)

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
        self._refuse_exec_on_fir(app_id, identity)
        f = self.info(identity)
        return FeatureView(f, f.name in self.enabled(app_id))

    def _refuse_exec_on_fir(self, app_id: str, identity: str) -> None:
        if identity != EXEC_FEATURE:
            return
        with self.store.session() as s:
            if s.scalar(select(App.generation).where(App.id == app_id)) == Generation.FIR:
                raise InvalidParams(FIR_EXEC_REFUSAL)

    def update(self, actor: UserView, app_id: str, identity: str, enabled: object) -> FeatureView:
        self._refuse_exec_on_fir(app_id, identity)
        f = self.info(identity)
        enabled = flag(enabled, "enabled")
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


def account_defaults(s: Session, app_id: str, owner_id: str) -> None:
    """A new app gets the app features its owner's account features ask for."""
    rows = s.scalars(
        select(AccountFeature.name).where(
            AccountFeature.user_id == owner_id, AccountFeature.enabled.is_(True)
        )
    )
    for name in rows.all():
        wanted = ACCOUNT_FEATURE_APP_DEFAULTS.get(name)
        if wanted:
            s.add(AppFeature(app_id=app_id, name=wanted, enabled=True))


ACCOUNT_BY_NAME = {f.name: f for f in ACCOUNT_FEATURES}
ACCOUNT_BY_ID = {f.id: f for f in ACCOUNT_FEATURES}


class AccountFeatures:
    """A user's account-level features (`heroku labs`)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def enabled(self, user_id: str) -> set[str]:
        with self.store.session() as s:
            rows = s.scalars(
                select(AccountFeature).where(
                    AccountFeature.user_id == user_id, AccountFeature.enabled.is_(True)
                )
            )
            return {r.name for r in rows}

    def list(self, user: UserView) -> list[FeatureView]:
        on = self.enabled(user.id)
        return [FeatureView(f, f.name in on) for f in ACCOUNT_FEATURES]

    @staticmethod
    def info(identity: str) -> FeatureInfo:
        f = ACCOUNT_BY_NAME.get(identity) or ACCOUNT_BY_ID.get(identity)
        if f is None:
            raise NotFound(f"Couldn't find that feature ({identity}).")
        return f

    def get(self, user: UserView, identity: str) -> FeatureView:
        f = self.info(identity)
        return FeatureView(f, f.name in self.enabled(user.id))

    def update(self, user: UserView, identity: str, enabled: object) -> FeatureView:
        f = self.info(identity)
        on = flag(enabled, "enabled")
        with self.store.session() as s:
            row = s.get(AccountFeature, (user.id, f.name))
            if row is None:
                s.add(AccountFeature(user_id=user.id, name=f.name, enabled=on))
            else:
                row.enabled = on
        return FeatureView(f, on)
