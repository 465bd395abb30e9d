"""Pipelines and their couplings: apps of one generation in stages.

A pipeline is owned by a user or a team. Who sees it: its owner, the owning team's members,
and anyone with access to one of its apps (the apps' own access rule, services/apps.py).
Who changes it (rename, destroy, review-app config): its owner, the owning team's members,
the operator. Coupling an app needs access to the app and to the pipeline, and the app's
generation must be the pipeline's (Heroku: apps of one pipeline share a generation).
"""

from __future__ import annotations

import builtins
import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from spruce.store.db import Store
from spruce.store.models import App, Pipeline, PipelineCoupling, Team, User

from .apps import Apps, is_uuid
from .errors import Forbidden, InvalidParams, NotFound
from .model import Generation
from .teams import Teams, member_role, team_ids_of
from .views import Ref, UserView

PIPELINE_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{2,29}$")
STAGES = ("test", "review", "development", "staging", "production")
PROMOTION_ORDER = ("development", "staging", "production")


@dataclass(frozen=True)
class PipelineView:
    id: str
    name: str
    owner_type: str
    owner_id: str
    generation: str
    created_at: dt.datetime
    updated_at: dt.datetime

    @property
    def ref(self) -> Ref:
        return Ref(self.id, self.name)


@dataclass(frozen=True)
class CouplingView:
    id: str
    app: Ref
    pipeline: Ref
    stage: str
    created_at: dt.datetime
    updated_at: dt.datetime


def pipeline_view(p: Pipeline) -> PipelineView:
    return PipelineView(
        p.id, p.name, p.owner_type, p.owner_id, p.generation, p.created_at, p.updated_at
    )


def _name_of(value: object) -> object:
    """`{"name": ...}` or `{"id": ...}` objects, as Heroku's clients send references."""
    if isinstance(value, dict):
        return value.get("name") or value.get("id")
    return value


def check_stage(stage: object) -> str:
    if stage not in STAGES:
        raise InvalidParams(f"Stage must be one of {', '.join(STAGES)}.")
    assert isinstance(stage, str)
    return stage


def downstream_stage(stage: str) -> str | None:
    """The stage a promotion from `stage` goes to (development -> staging -> production)."""
    if stage not in PROMOTION_ORDER:
        return None
    i = PROMOTION_ORDER.index(stage)
    return PROMOTION_ORDER[i + 1] if i + 1 < len(PROMOTION_ORDER) else None


class Pipelines:
    def __init__(self, store: Store, apps: Apps) -> None:
        self.store = store
        self.apps = apps

    # -- lookup and access -----------------------------------------------------------------
    def visible(self, s: Session, actor: UserView) -> Select[Pipeline]:
        q = select(Pipeline)
        if actor.is_operator:
            return q
        coupled = select(PipelineCoupling.pipeline_id).where(
            PipelineCoupling.app_id.in_(self.apps.visible_ids(s, actor))
        )
        return q.where(
            or_(
                (Pipeline.owner_type == "user") & (Pipeline.owner_id == actor.id),
                (Pipeline.owner_type == "team") & Pipeline.owner_id.in_(team_ids_of(actor.id)),
                Pipeline.id.in_(coupled),
            )
        )

    def find_row(self, s: Session, actor: UserView, identity: str) -> Pipeline:
        """The pipeline by id or name, if `actor` may see it (404 otherwise: a pipeline
        one cannot see is not there)."""
        q = self.visible(s, actor)
        if is_uuid(identity):
            row = s.scalar(q.where(Pipeline.id == identity))
        else:
            row = s.scalar(q.where(Pipeline.name == identity).order_by(Pipeline.created_at))
        if row is None:
            raise NotFound("Couldn't find that pipeline.")
        return row

    @staticmethod
    def check_manage(s: Session, p: Pipeline, actor: UserView) -> None:
        if actor.is_operator:
            return
        if p.owner_type == "user" and p.owner_id == actor.id:
            return
        if p.owner_type == "team" and member_role(s, p.owner_id, actor.id) is not None:
            return
        raise Forbidden(f"Only the owner of the pipeline {p.name} can do this.")

    def get(self, actor: UserView, identity: str) -> PipelineView:
        with self.store.session() as s:
            return pipeline_view(self.find_row(s, actor, identity))

    def get_internal(self, pipeline_id: str) -> PipelineView:
        with self.store.session() as s:
            row = s.get(Pipeline, pipeline_id)
            if row is None:
                raise NotFound("Couldn't find that pipeline.")
            return pipeline_view(row)

    def list_for(self, actor: UserView, name: str | None = None) -> list[PipelineView]:
        with self.store.session() as s:
            q = self.visible(s, actor)
            if name is not None:
                q = q.where(Pipeline.name == name)
            return [pipeline_view(p) for p in s.scalars(q.order_by(Pipeline.created_at))]

    def owner_name(self, pipeline: PipelineView) -> str:
        """The owner as people read it: the user's email or the team's name."""
        with self.store.session() as s:
            if pipeline.owner_type == "team":
                team = s.get(Team, pipeline.owner_id)
                return team.name if team else pipeline.owner_id
            user = s.get(User, pipeline.owner_id)
            return user.email if user else pipeline.owner_id

    # -- changes ---------------------------------------------------------------------------
    def create(
        self, actor: UserView, name: object, owner: object = None, generation: object = None
    ) -> PipelineView:
        if not isinstance(name, str) or not PIPELINE_NAME_RE.match(name):
            raise InvalidParams(
                "Name must start with a letter and can only contain lowercase letters, "
                "digits, and dashes; 3 to 30 characters."
            )
        gen = _name_of(generation) or Generation.CEDAR
        if not isinstance(gen, str) or gen not in tuple(Generation):
            raise InvalidParams("generation must be cedar or fir.")
        owner_type, owner_id = "user", actor.id
        if owner is not None:
            if not isinstance(owner, dict):
                raise InvalidParams("owner must be an object with id and type.")
            owner_type = str(owner.get("type") or "user")
            ident = owner.get("id") or owner.get("name")
            if owner_type not in ("user", "team"):
                raise InvalidParams("owner.type must be user or team.")
            if not isinstance(ident, str) or not ident:
                raise InvalidParams("owner.id is required.")
            owner_id = ident
        with self.store.session() as s:
            if owner_type == "team":
                team = Teams.find_row(s, owner_id)
                Teams.check_member(s, team, actor)
                owner_id = team.id
            elif owner_id not in (actor.id, "~", actor.email):
                if not actor.is_operator:
                    raise Forbidden("A pipeline you create is yours or your team's.")
                user = s.get(User, owner_id)
                if user is None:
                    raise NotFound("Couldn't find that user.")
            else:
                owner_id = actor.id
            row = Pipeline(name=name, owner_type=owner_type, owner_id=owner_id, generation=gen)
            s.add(row)
            s.flush()
            return pipeline_view(row)

    def rename(self, actor: UserView, identity: str, name: object) -> PipelineView:
        if not isinstance(name, str) or not PIPELINE_NAME_RE.match(name):
            raise InvalidParams(
                "Name must start with a letter and can only contain lowercase letters, "
                "digits, and dashes; 3 to 30 characters."
            )
        with self.store.session() as s:
            row = self.find_row(s, actor, identity)
            self.check_manage(s, row, actor)
            row.name = name
            s.flush()
            return pipeline_view(row)

    def delete(self, actor: UserView, identity: str) -> PipelineView:
        """The pipeline goes; its apps stay (uncoupled)."""
        with self.store.session() as s:
            row = self.find_row(s, actor, identity)
            self.check_manage(s, row, actor)
            view = pipeline_view(row)
            s.delete(row)
        return view

    def transfer(self, actor: UserView, identity: str, new_owner: object) -> PipelineView:
        """POST /pipeline-transfers: to the actor or to a team the actor belongs to."""
        if not isinstance(new_owner, dict):
            raise InvalidParams("new_owner must be an object with id and type.")
        owner_type = new_owner.get("type")
        ident = new_owner.get("id") or new_owner.get("name")
        if owner_type not in ("user", "team") or not isinstance(ident, str):
            raise InvalidParams("new_owner needs an id and a type (user or team).")
        with self.store.session() as s:
            row = self.find_row(s, actor, identity)
            self.check_manage(s, row, actor)
            if owner_type == "team":
                team = Teams.find_row(s, ident)
                Teams.check_member(s, team, actor)
                ident = team.id
            elif ident not in (actor.id, actor.email, "~") and not actor.is_operator:
                raise Forbidden("A pipeline can be transferred to you or to one of your teams.")
            elif ident in (actor.email, "~"):
                ident = actor.id
            row.owner_type, row.owner_id = owner_type, ident
            s.flush()
            return pipeline_view(row)

    # -- couplings -------------------------------------------------------------------------
    @staticmethod
    def _coupling_view(s: Session, c: PipelineCoupling) -> CouplingView:
        app = s.get(App, c.app_id)
        p = s.get(Pipeline, c.pipeline_id)
        return CouplingView(
            c.id,
            Ref(c.app_id, app.name if app else ""),
            Ref(c.pipeline_id, p.name if p else ""),
            c.stage,
            c.created_at,
            c.updated_at,
        )

    def couple(
        self, actor: UserView, app_identity: object, pipeline: object, stage: object
    ) -> CouplingView:
        """POST /pipeline-couplings {app, pipeline, stage}."""
        app_ident, pipe_ident = _name_of(app_identity), _name_of(pipeline)
        if not isinstance(app_ident, str) or not app_ident:
            raise InvalidParams("app is required.")
        if not isinstance(pipe_ident, str) or not pipe_ident:
            raise InvalidParams("pipeline is required.")
        stage_name = check_stage(stage)
        with self.store.session() as s:
            app = Apps.find_row(s, app_ident)
            self.apps.check_access(s, app, actor)
            p = self.find_row(s, actor, pipe_ident)
            existing = s.scalar(select(PipelineCoupling).where(PipelineCoupling.app_id == app.id))
            if existing is not None:
                other = s.get(Pipeline, existing.pipeline_id)
                where = other.name if other else existing.pipeline_id
                raise InvalidParams(f"{app.name} is already a part of the pipeline {where}.")
            if app.generation != p.generation:
                raise InvalidParams(
                    f"Apps in a pipeline must be of the same generation: {app.name} is "
                    f"{app.generation}, the pipeline {p.name} is {p.generation}."
                )
            c = PipelineCoupling(pipeline_id=p.id, app_id=app.id, stage=stage_name)
            s.add(c)
            s.flush()
            return self._coupling_view(s, c)

    def _coupling_row(self, s: Session, actor: UserView, identity: str) -> PipelineCoupling:
        c = s.get(PipelineCoupling, identity) if is_uuid(identity) else None
        if c is None:
            raise NotFound("Couldn't find that pipeline coupling.")
        app = s.get_one(App, c.app_id)
        self.apps.check_access(s, app, actor)
        return c

    def coupling(self, actor: UserView, identity: str) -> CouplingView:
        with self.store.session() as s:
            return self._coupling_view(s, self._coupling_row(s, actor, identity))

    def coupling_for_app(self, actor: UserView, app_identity: str) -> CouplingView:
        """GET /apps/{app}/pipeline-couplings: one object, 404 when the app has none."""
        with self.store.session() as s:
            app = Apps.find_row(s, app_identity)
            self.apps.check_access(s, app, actor)
            c = s.scalar(select(PipelineCoupling).where(PipelineCoupling.app_id == app.id))
            if c is None:
                raise NotFound("This app is not part of any pipeline.")
            return self._coupling_view(s, c)

    def coupling_of_app_id(self, app_id: str) -> CouplingView | None:
        with self.store.session() as s:
            c = s.scalar(select(PipelineCoupling).where(PipelineCoupling.app_id == app_id))
            return self._coupling_view(s, c) if c is not None else None

    def update_coupling(self, actor: UserView, identity: str, stage: object) -> CouplingView:
        stage_name = check_stage(stage)
        with self.store.session() as s:
            c = self._coupling_row(s, actor, identity)
            c.stage = stage_name
            s.flush()
            return self._coupling_view(s, c)

    def uncouple(self, actor: UserView, identity: str) -> CouplingView:
        with self.store.session() as s:
            c = self._coupling_row(s, actor, identity)
            view = self._coupling_view(s, c)
            s.delete(c)
        return view

    def couplings(
        self,
        actor: UserView,
        pipeline: str | None = None,
        team: str | None = None,
        mine: bool = False,
    ) -> builtins.list[CouplingView]:
        """Couplings of the apps `actor` may see: of one pipeline, of a team's pipelines,
        of the pipelines the actor owns (`mine`), or all."""
        with self.store.session() as s:
            q = select(PipelineCoupling).where(
                PipelineCoupling.app_id.in_(self.apps.visible_ids(s, actor))
            )
            if pipeline is not None:
                q = q.where(PipelineCoupling.pipeline_id == self.find_row(s, actor, pipeline).id)
            if team is not None:
                t = Teams.find_row(s, team)
                Teams.check_member(s, t, actor)
                owned = select(Pipeline.id).where(
                    Pipeline.owner_type == "team", Pipeline.owner_id == t.id
                )
                q = q.where(PipelineCoupling.pipeline_id.in_(owned))
            if mine:
                owned = select(Pipeline.id).where(
                    Pipeline.owner_type == "user", Pipeline.owner_id == actor.id
                )
                q = q.where(PipelineCoupling.pipeline_id.in_(owned))
            rows = s.scalars(q.order_by(PipelineCoupling.created_at))
            return [self._coupling_view(s, c) for c in rows]

    def app_ids(self, pipeline_id: str, stages: Sequence[str] | None = None) -> list[str]:
        with self.store.session() as s:
            q = select(PipelineCoupling.app_id).where(PipelineCoupling.pipeline_id == pipeline_id)
            if stages is not None:
                q = q.where(PipelineCoupling.stage.in_(stages))
            return list(s.scalars(q.order_by(PipelineCoupling.created_at)))

    def repository_app(self, s: Session, p: Pipeline) -> App | None:
        """Where a pipeline's review apps come from: Spruce has no GitHub, so its
        repository is the git repository of its first app on the platform (development,
        then staging, then production), whose branches review apps are made of."""
        for stage in PROMOTION_ORDER:
            app_id = s.scalar(
                select(PipelineCoupling.app_id)
                .where(PipelineCoupling.pipeline_id == p.id, PipelineCoupling.stage == stage)
                .order_by(PipelineCoupling.created_at)
                .limit(1)
            )
            if app_id is not None:
                return s.get(App, app_id)
        return None

    def repository(self, actor: UserView, identity: str) -> dict[str, Any]:
        """GET /pipelines/{id}/repo: the pipeline's repository (see repository_app)."""
        with self.store.session() as s:
            p = self.find_row(s, actor, identity)
            app = self.repository_app(s, p)
            if app is None:
                raise NotFound(
                    f"The pipeline {p.name} has no app in development, staging or production "
                    "whose git repository review apps could come from."
                )
            return {"id": repo_id(p.id), "full_name": app.name, "name": app.name}


def repo_id(pipeline_id: str) -> int:
    """A stable integer for the pipeline's repository (the schema's repo.id is a number)."""
    return int(pipeline_id.replace("-", "")[:7], 16)
