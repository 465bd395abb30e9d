"""The formation: how many dynos of which size each process type runs."""

from __future__ import annotations

import builtins
import re
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from spruce.store.db import Store
from spruce.store.models import App, Formation

from .catalog import DYNO_SIZES, default_size, find_size
from .errors import InvalidParams, NotFound
from .events import ApiActivity, EventBus, FormationChanged
from .settings import AppSettings
from .views import FormationView, Ref, UserView

# The release phase runs once per release, never as dynos: listed at quantity 0, as Heroku
# lists it (releases:retry looks for it), and never scaled up.
NOT_SCALED = {"release"}
SCALE_ARG = re.compile(r"^([a-zA-Z0-9_-]+)([=+-])(\d+)?(?::([a-zA-Z0-9-]+))?$")
SCALE_USAGE = "use TYPE=AMOUNT[:SIZE], TYPE+AMOUNT or TYPE-AMOUNT, e.g. web=2:standard-1x worker+1"


def parse_scale(args: str | Sequence[str]) -> list[dict[str, Any]]:
    """`ps:scale`'s arguments (`web=2 worker+1 web=1:standard-2x`, space- or
    comma-separated) as formation updates, with Heroku's relative quantities ("+1",
    "-1") that `Formations.update` counts from the quantity at the time. The one parser
    of the CLI and the MCP tool."""
    words = [
        w
        for arg in ([args] if isinstance(args, str) else args)
        for w in re.split(r"[\s,]+", arg)
        if w
    ]
    if not words:
        raise InvalidParams(f"Nothing to scale: {SCALE_USAGE}.")
    updates: list[dict[str, Any]] = []
    for word in words:
        m = SCALE_ARG.match(word)
        if not m:
            raise InvalidParams(f"Invalid scale argument {word!r}: {SCALE_USAGE}.")
        ptype, op, amount, size = m.groups()
        upd: dict[str, Any] = {"type": ptype}
        if amount is not None:
            upd["quantity"] = int(amount) if op == "=" else f"{op}{int(amount)}"
        elif op != "=" or size is None:
            raise InvalidParams(f"Invalid scale argument {word!r}: {SCALE_USAGE}.")
        if size:
            upd["size"] = size
        updates.append(upd)
    return updates


def sync_formation(s: Session, app_id: str, process_types: dict[str, str]) -> None:
    """Make the formation match a slug's (or image's) process types (new types start at 0,
    web at 1, in the generation's default size)."""
    app = s.get(App, app_id)
    size = default_size(app.generation if app is not None else "cedar")
    rows = {f.type: f for f in s.scalars(select(Formation).where(Formation.app_id == app_id))}
    for ptype, command in process_types.items():
        row = rows.pop(ptype, None)
        if row is None:
            s.add(
                Formation(
                    app_id=app_id,
                    type=ptype,
                    quantity=1 if ptype == "web" else 0,
                    size=size,
                    command=command,
                )
            )
        elif row.command != command:
            row.command = command
    for gone in rows.values():
        s.delete(gone)


def parse_quantity(value: Any, current: int = 0) -> int:
    """A new quantity: a whole number (Heroku's CLI sends them as strings, "2"), or one
    relative to `current` as Heroku's API takes it ("+1", "-1"; never below 0)."""
    if isinstance(value, bool):
        raise InvalidParams("quantity must be a whole number.")
    if isinstance(value, int):
        q = value
    elif isinstance(value, str) and value.strip()[1:].isdigit() and value.strip()[0] in "+-":
        return max(0, current + int(value.strip()))
    elif isinstance(value, str) and value.strip().isdigit():
        q = int(value.strip())
    else:
        raise InvalidParams(f"Invalid quantity {value!r}: quantity must be a whole number.")
    if q < 0:
        raise InvalidParams("quantity cannot be negative.")
    return q


def formation_view(f: Formation, app: Ref) -> FormationView:
    return FormationView(
        f.id, app, f.type, f.quantity, f.size, f.command, f.created_at, f.updated_at
    )


class Formations:
    def __init__(self, store: Store, events: EventBus) -> None:
        self.store = store
        self.events = events

    @staticmethod
    def _ref(s: Session, app_id: str) -> Ref:
        app = s.get(App, app_id)
        if app is None:
            raise NotFound("Couldn't find that app.")
        return Ref(app.id, app.name)

    def list(self, app_id: str) -> builtins.list[FormationView]:
        with self.store.session() as s:
            ref = self._ref(s, app_id)
            rows = s.scalars(
                select(Formation).where(Formation.app_id == app_id).order_by(Formation.type)
            )
            return [formation_view(f, ref) for f in rows]

    def _find(self, s: Session, app_id: str, identity: str) -> Formation:
        q = select(Formation).where(Formation.app_id == app_id)
        try:
            uuid.UUID(identity)
            q = q.where(Formation.id == identity)
        except ValueError:
            q = q.where(Formation.type == identity)
        row = s.scalar(q)
        if row is None:
            raise NotFound(f"Couldn't find that process type ({identity}).")
        return row

    def get(self, app_id: str, identity: str) -> FormationView:
        with self.store.session() as s:
            return formation_view(self._find(s, app_id, identity), self._ref(s, app_id))

    def scale(
        self, actor: UserView, app_id: str, args: str | Sequence[str]
    ) -> builtins.list[FormationView]:
        """`ps:scale`'s arguments applied (`parse_scale`, then `update`)."""
        return self.update(actor, app_id, parse_scale(args))

    def update(self, actor: UserView, app_id: str, updates: Any) -> builtins.list[FormationView]:
        """Apply a batch atomically: every entry is checked before anything changes."""
        if not isinstance(updates, list) or not updates:
            raise InvalidParams("updates must be a non-empty list of {type, quantity, size}.")
        changed: builtins.list[FormationView] = []
        with self.store.session() as s:
            app = s.get(App, app_id)
            if app is None:
                raise NotFound("Couldn't find that app.")
            ref = Ref(app.id, app.name)
            limit = AppSettings.from_stored(app.settings).formation_limit
            for upd in updates:
                if not isinstance(upd, dict):
                    raise InvalidParams(
                        "each update must be an object with type, quantity or size."
                    )
                ident = upd.get("type") or upd.get("id")
                if not isinstance(ident, str) or not ident:
                    raise InvalidParams("each update needs a process type.")
                row = self._find(s, app_id, ident)
                if "quantity" in upd and upd["quantity"] is not None:
                    row.quantity = parse_quantity(upd["quantity"], row.quantity)
                    if row.type in NOT_SCALED and row.quantity:
                        raise InvalidParams(f"{row.type} cannot be scaled: it runs per release.")
                if upd.get("size"):
                    size = find_size(str(upd["size"]))
                    if size is None or size.generation != app.generation:
                        names = ", ".join(
                            z.display_name for z in DYNO_SIZES if z.generation == app.generation
                        )
                        raise InvalidParams(
                            f"Invalid dyno size {upd['size']!r} for a {app.generation} app. "
                            f"Valid sizes: {names}."
                        )
                    row.size = size.name
                size = find_size(row.size)
                cap = min(limit, size.max_per_type) if size else limit
                if row.quantity > cap:
                    if size and size.max_per_type < limit:
                        raise InvalidParams(
                            f"Cannot update to more than {cap} {row.size} size dynos per process type."
                        )
                    raise InvalidParams(
                        f"Cannot scale {row.type} to {row.quantity}: this app is limited to {cap} dynos per process type."
                    )
                s.flush()
                changed.append(formation_view(row, ref))
        summary = ", ".join(f"{f.type}={f.quantity}:{f.size}" for f in changed)
        self.events.publish(FormationChanged(app_id))
        self.events.publish(ApiActivity(app_id, f"Scaled to {summary} by user {actor.email}"))
        return changed
