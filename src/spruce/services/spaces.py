"""Spaces: a team's private network with a generation (cedar or fir) and a region.

An app created in a space takes the space's team, generation and region, and can never
change them. A space goes `allocating` -> `allocated` once its runtime home (a directory per
space under its region) exists; apps may be created in it from then on. Each space has an
inbound ruleset (trusted source CIDRs, enforced by the router) and an outbound ruleset
(allowed destinations of the space's dynos, enforced by the local dyno backend in each
dyno's network namespace when the platform runs as root; see docs/fir.md).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import logging
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from spruce.store.db import Store
from spruce.store.models import App, Space, SpaceRuleset, Team, utcnow

from .errors import Conflict, InvalidParams, NotFound
from .events import AppChanged, EventBus
from .model import EgressRule, Generation, SpaceNetwork
from .regions import Regions, region_root
from .teams import Teams, team_ids_of
from .views import Ref, UserView

log = logging.getLogger(__name__)
SPACE_NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?!-))+[a-z0-9]$")
DEFAULT_CIDR = "10.0.0.0/16"
DEFAULT_DATA_CIDR = "10.1.0.0/16"
INBOUND, OUTBOUND = "inbound", "outbound"
# Heroku's default trusted range lets everyone in. Rules are IPv4 CIDRs (the schema's
# pattern); the router reads ::1 as 127.0.0.1 and lets other IPv6 clients in only under
# 0.0.0.0/0.
DEFAULT_INBOUND = ({"action": "allow", "source": "0.0.0.0/0"},)
DEFAULT_OUTBOUND = ({"target": "0.0.0.0/0", "from_port": 0, "to_port": 65535, "protocol": "-1"},)
MAX_RULES = 60


@dataclass(frozen=True)
class SpaceView:
    id: str
    name: str
    team: Ref
    region: str
    generation: str
    shield: bool
    state: str
    cidr: str
    data_cidr: str
    created_at: dt.datetime
    updated_at: dt.datetime

    @property
    def ref(self) -> Ref:
        return Ref(self.id, self.name)


@dataclass(frozen=True)
class RulesetView:
    id: str
    space: Ref
    direction: str
    rules: tuple[dict[str, Any], ...]
    created_by: str
    created_at: dt.datetime


@dataclass(frozen=True)
class Placement:
    """Where a new app goes: its team, space, region and generation."""

    team_id: str | None
    space_id: str | None
    region: str | None
    generation: str | None


def _is_uuid(value: str) -> bool:
    return len(value) == 36 and value.count("-") == 4


def _private_net(value: object, what: str, prefixes: range) -> str:
    try:
        net = ipaddress.IPv4Network(str(value))
    except ValueError:
        raise InvalidParams(f"{what} must be an IPv4 network in CIDR notation.") from None
    if not net.is_private or net.prefixlen not in prefixes:
        lo, hi = prefixes.start, prefixes.stop - 1
        raise InvalidParams(f"{what} must be a private (RFC 1918) network from /{lo} to /{hi}.")
    return str(net)


def _cidr(value: object, what: str) -> str:
    try:
        return str(ipaddress.IPv4Network(str(value), strict=False))
    except ValueError:
        raise InvalidParams(f"{what} must be an IPv4 network in CIDR notation.") from None


def check_rules(direction: str, rules: object) -> list[dict[str, Any]]:
    """Validate an inbound or outbound ruleset as the Platform API schema shapes it."""
    if not isinstance(rules, list) or not all(isinstance(r, dict) for r in rules):
        raise InvalidParams("rules must be an array of objects.")
    if len(rules) > MAX_RULES:
        raise InvalidParams(f"A ruleset has at most {MAX_RULES} rules.")
    out: list[dict[str, Any]] = []
    for r in rules:
        if direction == INBOUND:
            if r.get("action") not in ("allow", "deny"):
                raise InvalidParams("Each inbound rule's action must be allow or deny.")
            out.append({"action": r["action"], "source": _cidr(r.get("source"), "source")})
            continue
        ports = []
        for key in ("from_port", "to_port"):
            port = r.get(key)
            if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
                raise InvalidParams(f"{key} must be a port number (0-65535).")
            ports.append(port)
        if ports[0] > ports[1]:
            raise InvalidParams("from_port must not be above to_port.")
        protocol = str(r.get("protocol", "")).lower()
        if protocol not in ("tcp", "udp", "icmp", "-1"):
            raise InvalidParams("protocol must be tcp, udp, icmp or -1 (all).")
        out.append(
            {
                "target": _cidr(r.get("target"), "target"),
                "from_port": ports[0],
                "to_port": ports[1],
                "protocol": protocol,
            }
        )
    return out


def inbound_rules_by_app(
    s: Session, app_ids: list[str] | None
) -> dict[str, tuple[tuple[str, str], ...]]:
    """The current inbound rules of each of these apps that runs in a space (None: all)."""
    q = select(App.id, App.space_id).where(App.space_id.is_not(None))
    if app_ids is not None:
        q = q.where(App.id.in_(app_ids))
    placed = s.execute(q).all()
    if not placed:
        return {}
    space_ids = {space_id for _, space_id in placed}
    latest = (
        select(SpaceRuleset.space_id, func.max(SpaceRuleset.version).label("version"))
        .where(SpaceRuleset.direction == INBOUND, SpaceRuleset.space_id.in_(space_ids))
        .group_by(SpaceRuleset.space_id)
        .subquery()
    )
    rules = {
        space_id: tuple((str(r["source"]), str(r["action"])) for r in rows)
        for space_id, rows in s.execute(
            select(SpaceRuleset.space_id, SpaceRuleset.rules).join(
                latest,
                (SpaceRuleset.space_id == latest.c.space_id)
                & (SpaceRuleset.version == latest.c.version)
                & (SpaceRuleset.direction == INBOUND),
            )
        )
    }
    default = tuple((r["source"], r["action"]) for r in DEFAULT_INBOUND)
    return {app_id: rules.get(space_id, default) for app_id, space_id in placed}


def space_network(s: Session, space_id: str) -> SpaceNetwork | None:
    """The network an app of this space runs in, with the current outbound ruleset."""
    sp = s.get(Space, space_id)
    if sp is None:
        return None
    row = s.scalar(
        select(SpaceRuleset)
        .where(SpaceRuleset.space_id == space_id, SpaceRuleset.direction == OUTBOUND)
        .order_by(SpaceRuleset.version.desc())
        .limit(1)
    )
    rules: list[dict[str, Any]] = list(row.rules) if row is not None else list(DEFAULT_OUTBOUND)
    return SpaceNetwork(
        sp.id,
        sp.name,
        tuple(
            EgressRule(str(r["target"]), int(r["from_port"]), int(r["to_port"]), str(r["protocol"]))
            for r in rules
        ),
    )


class Spaces:
    def __init__(self, store: Store, events: EventBus, regions: Regions, home: Path) -> None:
        self.store = store
        self.events = events
        self.regions = regions
        self.home = Path(home)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    # -- allocation in the background ----------------------------------------------------
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._allocator(), name="space-allocator")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def _kick(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            loop.call_soon_threadsafe(wake.set)

    async def _allocator(self) -> None:
        assert self._wake is not None
        while True:
            self._wake.clear()
            for space_id in await asyncio.to_thread(self.pending):
                try:
                    await asyncio.to_thread(self.allocate, space_id)
                except Exception:
                    log.exception("allocating space %s failed", space_id)
            await self._wake.wait()

    # -- views and lookup ----------------------------------------------------------------
    @staticmethod
    def _view(sp: Space, team: Team) -> SpaceView:
        return SpaceView(
            sp.id,
            sp.name,
            Ref(team.id, team.name),
            sp.region,
            sp.generation,
            sp.shield,
            sp.state,
            sp.cidr,
            sp.data_cidr,
            sp.created_at,
            sp.updated_at,
        )

    @staticmethod
    def find_row(s: Session, identity: str) -> Space:
        sp = s.get(Space, identity) if _is_uuid(identity) else None
        if sp is None:
            sp = s.scalar(select(Space).where(Space.name == identity))
        if sp is None:
            raise NotFound("Couldn't find that space.")
        return sp

    def _access(self, s: Session, identity: str, actor: UserView, admin: bool = False) -> Space:
        sp = self.find_row(s, identity)
        Teams.check_member(s, s.get_one(Team, sp.team_id), actor, admin=admin)
        return sp

    def get(self, actor: UserView, identity: str) -> SpaceView:
        with self.store.session() as s:
            sp = self._access(s, identity, actor)
            return self._view(sp, s.get_one(Team, sp.team_id))

    def get_internal(self, space_id: str) -> SpaceView:
        with self.store.session() as s:
            sp = s.get_one(Space, space_id)
            return self._view(sp, s.get_one(Team, sp.team_id))

    def list_for(self, actor: UserView) -> list[SpaceView]:
        with self.store.session() as s:
            q = select(Space, Team).join(Team, Team.id == Space.team_id)
            if not actor.is_operator:
                q = q.where(Space.team_id.in_(team_ids_of(actor.id)))
            return [self._view(sp, t) for sp, t in s.execute(q.order_by(Space.name))]

    def space_dir(self, space: SpaceView) -> Path:
        """The space's runtime home, under its region."""
        return region_root(self.home, space.region) / "spaces" / space.id

    # -- changes -------------------------------------------------------------------------
    def create(
        self,
        actor: UserView,
        name: object,
        team: object,
        region: object = None,
        generation: object = None,
        cidr: object = None,
        data_cidr: object = None,
        shield: object = None,
        log_drain_url: object = None,
    ) -> SpaceView:
        if not isinstance(name, str) or not name:
            raise InvalidParams("Space name required.")
        if not SPACE_NAME_RE.match(name) or len(name) > 30:
            raise InvalidParams(
                "Space name must be 3 to 30 lower case letters, digits and single dashes, "
                "starting and ending with a letter or digit."
            )
        if not isinstance(team, str) or not team:
            raise InvalidParams("team is required: a space belongs to a team.")
        gen = generation or Generation.CEDAR
        if gen not in tuple(Generation):
            raise InvalidParams("generation must be cedar or fir.")
        if region is not None and not isinstance(region, str):
            raise InvalidParams("region must be a region's name or id.")
        reg = self.regions.for_space(region)
        shield_on = bool(shield)
        if shield_on and gen == Generation.FIR:
            raise InvalidParams("Shield spaces are not available for the fir generation.")
        net = _private_net(cidr or DEFAULT_CIDR, "cidr", range(16, 17))
        data_net = _private_net(data_cidr or DEFAULT_DATA_CIDR, "data_cidr", range(16, 21))
        if ipaddress.IPv4Network(net).overlaps(ipaddress.IPv4Network(data_net)):
            raise InvalidParams("cidr and data_cidr must not overlap.")
        if log_drain_url is not None and (
            not isinstance(log_drain_url, str) or not log_drain_url.startswith("https://")
        ):
            raise InvalidParams("log_drain_url must be an https URL.")
        with self.store.session() as s:
            t = Teams.find_row(s, team)
            Teams.check_member(s, t, actor, admin=True)
            if s.scalar(select(Space.id).where(Space.name == name)):
                raise Conflict(f"Name {name} is already taken.")
            sp = Space(
                name=name,
                team_id=t.id,
                region=reg.name,
                generation=str(gen),
                shield=shield_on,
                state="allocating",
                cidr=net,
                data_cidr=data_net,
                log_drain_url=log_drain_url,
            )
            s.add(sp)
            s.flush()
            for direction, rules in ((INBOUND, DEFAULT_INBOUND), (OUTBOUND, DEFAULT_OUTBOUND)):
                s.add(
                    SpaceRuleset(
                        space_id=sp.id,
                        direction=direction,
                        version=1,
                        rules=[dict(r) for r in rules],
                        created_by=actor.email,
                    )
                )
            s.flush()
            view = self._view(sp, t)
        self._kick()
        return view

    def pending(self) -> list[str]:
        """Spaces still allocating (after a restart too)."""
        with self.store.session() as s:
            return list(s.scalars(select(Space.id).where(Space.state == "allocating")))

    def allocate(self, space_id: str) -> SpaceView | None:
        """Make the space's runtime home, then mark it allocated."""
        with self.store.session() as s:
            sp = s.get(Space, space_id)
            if sp is None or sp.state != "allocating":
                return None
            view = self._view(sp, s.get_one(Team, sp.team_id))
        self.space_dir(view).mkdir(parents=True, exist_ok=True)
        with self.store.session() as s:
            sp = s.get(Space, space_id)
            if sp is None or sp.state != "allocating":
                return None
            sp.state = "allocated"
            sp.updated_at = utcnow()
            s.flush()
            return self._view(sp, s.get_one(Team, sp.team_id))

    def rename(self, actor: UserView, identity: str, name: object) -> SpaceView:
        if not isinstance(name, str) or not SPACE_NAME_RE.match(name) or len(name) > 30:
            raise InvalidParams("Space name must be 3 to 30 lower case letters, digits and dashes.")
        with self.store.session() as s:
            sp = self._access(s, identity, actor, admin=True)
            if name != sp.name and s.scalar(select(Space.id).where(Space.name == name)):
                raise Conflict(f"Name {name} is already taken.")
            sp.name = name
            s.flush()
            return self._view(sp, s.get_one(Team, sp.team_id))

    def delete(self, actor: UserView, identity: str) -> SpaceView:
        with self.store.session() as s:
            sp = self._access(s, identity, actor, admin=True)
            apps = s.scalar(select(func.count()).select_from(App).where(App.space_id == sp.id))
            if apps:
                raise Conflict(f"The space {sp.name} still has {apps} app(s): destroy them first.")
            sp.state = "deleting"
            view = self._view(sp, s.get_one(Team, sp.team_id))
            s.delete(sp)
        d = self.space_dir(view)
        if d.is_dir():
            shutil.rmtree(d, ignore_errors=True)
        return view

    # -- app placement -------------------------------------------------------------------
    def placement(
        self,
        actor: UserView,
        team: str | None,
        space: str | None,
        generation: str | None,
    ) -> Placement:
        """Where a new app goes: in a space it takes the space's team, region and
        generation; a team app outside a space is the team's on the Common Runtime."""
        if not team and not space:
            return Placement(None, None, None, generation)
        with self.store.session() as s:
            if space:
                sp = self.find_row(s, space)
                t = s.get_one(Team, sp.team_id)
                if team and team not in (t.id, t.name):
                    raise InvalidParams(f"The space {sp.name} belongs to another team.")
                Teams.check_member(s, t, actor)
                if sp.state != "allocated":
                    raise InvalidParams(f"The space {sp.name} is still {sp.state}.")
                if generation not in (None, sp.generation):
                    raise InvalidParams(
                        f"Apps in the space {sp.name} are {sp.generation}: "
                        "an app takes its space's generation."
                    )
                return Placement(t.id, sp.id, sp.region, sp.generation)
            assert team
            t = Teams.find_row(s, team)
            Teams.check_member(s, t, actor)
            return Placement(t.id, None, None, generation)

    # -- rulesets ------------------------------------------------------------------------
    @staticmethod
    def _ruleset_view(r: SpaceRuleset, sp: Space) -> RulesetView:
        return RulesetView(
            r.id,
            Ref(sp.id, sp.name),
            r.direction,
            tuple(dict(x) for x in r.rules),
            r.created_by,
            r.created_at,
        )

    @staticmethod
    def _current_row(s: Session, space_id: str, direction: str) -> SpaceRuleset | None:
        return s.scalar(
            select(SpaceRuleset)
            .where(SpaceRuleset.space_id == space_id, SpaceRuleset.direction == direction)
            .order_by(SpaceRuleset.version.desc())
            .limit(1)
        )

    def ruleset(self, actor: UserView, identity: str, direction: str) -> RulesetView:
        with self.store.session() as s:
            sp = self._access(s, identity, actor)
            row = self._current_row(s, sp.id, direction)
            if row is None:
                raise NotFound(f"The space {sp.name} has no {direction} ruleset.")
            return self._ruleset_view(row, sp)

    def rulesets(self, actor: UserView, identity: str, direction: str) -> list[RulesetView]:
        with self.store.session() as s:
            sp = self._access(s, identity, actor)
            rows = s.scalars(
                select(SpaceRuleset)
                .where(SpaceRuleset.space_id == sp.id, SpaceRuleset.direction == direction)
                .order_by(SpaceRuleset.version)
            )
            return [self._ruleset_view(r, sp) for r in rows]

    def ruleset_info(
        self, actor: UserView, identity: str, direction: str, ruleset_id: str
    ) -> RulesetView:
        for r in self.rulesets(actor, identity, direction):
            if r.id == ruleset_id:
                return r
        raise NotFound("Couldn't find that ruleset.")

    def set_ruleset(
        self, actor: UserView, identity: str, direction: str, rules: object
    ) -> RulesetView:
        """A new current ruleset (PUT replaces the whole list, as Heroku's does)."""
        checked = check_rules(direction, rules)
        with self.store.session() as s:
            sp = self._access(s, identity, actor, admin=True)
            current = self._current_row(s, sp.id, direction)
            row = SpaceRuleset(
                space_id=sp.id,
                direction=direction,
                version=current.version + 1 if current else 1,
                rules=checked,
                created_by=actor.email,
            )
            s.add(row)
            s.flush()
            view = self._ruleset_view(row, sp)
            app_ids = list(s.scalars(select(App.id).where(App.space_id == sp.id)))
        for app_id in app_ids:
            self.events.publish(AppChanged(app_id))  # the router's table follows
        return view
