"""Review apps: an app per branch (or pull request) of a pipeline, from a source tarball.

The pipeline's review-app config turns them on (`/pipelines/{id}/review-app-config`). A
review app is created like an app setup (services/setups.py) with app.json's
`environments.review` section applied, coupled to the pipeline in the `review` stage, in
the pipeline's generation and team (or the config's deploy target: a region or a space).
Its status follows the setup: creating, then created or errored. With `destroy_stale_apps`,
review apps with no new release for `stale_days` are destroyed by a background sweep.
"""

from __future__ import annotations

import asyncio
import builtins
import datetime as dt
import logging
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from spruce.store.db import Store
from spruce.store.models import (
    App,
    AppSetup,
    Pipeline,
    ReviewApp,
    ReviewAppConfig,
    Team,
    User,
    utcnow,
)

from .apps import Apps, is_uuid
from .errors import InvalidParams, NotFound, ServiceError
from .events import AppDeleting, EventBus
from .model import Generation
from .pipeline_config import stage_config
from .pipelines import Pipelines, repo_id
from .ports import CommitHistory
from .setups import Setups
from .sources import Sources
from .spaces import Placement, Spaces
from .views import Ref, UserView

log = logging.getLogger(__name__)
BASE_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,20}$")
ACTIVE = ("pending", "creating", "created", "errored")


@dataclass(frozen=True)
class ReviewAppSettings:
    day_seconds: float = 86400.0
    """How long a `stale_days` day is (tests shorten it)."""
    sweep_interval: float = 600.0
    """How often stale review apps are looked for."""


@dataclass(frozen=True)
class ReviewAppConfigView:
    pipeline_id: str
    repo: str | None
    repo_id: int
    automatic_review_apps: bool
    destroy_stale_apps: bool
    stale_days: int
    wait_for_ci: bool
    base_name: str | None
    deploy_target: tuple[str, str] | None
    """(type, id): region or space."""


@dataclass(frozen=True)
class ReviewAppView:
    id: str
    app: Ref | None
    app_setup_id: str | None
    branch: str
    pr_number: int | None
    pipeline_id: str
    status: str
    error_status: str | None
    message: str | None
    creator_id: str | None
    creator_email: str | None
    wait_for_ci: bool
    fork_repo_id: int | None
    created_at: dt.datetime
    updated_at: dt.datetime


def _bool(body: dict[str, Any], key: str, current: bool) -> bool:
    value = body.get(key)
    if value is None:
        return current
    if not isinstance(value, bool):
        raise InvalidParams(f"{key} must be true or false.")
    return value


class ReviewApps:
    def __init__(
        self,
        store: Store,
        events: EventBus,
        apps: Apps,
        pipelines: Pipelines,
        spaces: Spaces,
        setups: Setups,
        sources: Sources,
        history: CommitHistory | None,
        destroy_app: Callable[[str], Awaitable[object]],
        settings: ReviewAppSettings,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.store = store
        self.apps = apps
        self.pipelines = pipelines
        self.spaces = spaces
        self.setups = setups
        self.sources = sources
        self.history = history
        self.destroy_app = destroy_app
        self.settings = settings
        self.clock = clock
        self._sweeper: asyncio.Task[None] | None = None
        self._deleting: set[asyncio.Task[None]] = set()
        events.subscribe(AppDeleting, self._on_app_deleting)

    # -- review-app config -----------------------------------------------------------------
    @staticmethod
    def _config_view(c: ReviewAppConfig) -> ReviewAppConfigView:
        target = (
            (c.deploy_target_type, c.deploy_target_id)
            if c.deploy_target_type and c.deploy_target_id
            else None
        )
        return ReviewAppConfigView(
            c.pipeline_id,
            c.repo,
            repo_id(c.pipeline_id),
            c.automatic_review_apps,
            c.destroy_stale_apps,
            c.stale_days,
            c.wait_for_ci,
            c.base_name,
            target,
        )

    def config(self, actor: UserView, pipeline: str) -> ReviewAppConfigView:
        with self.store.session() as s:
            p = self.pipelines.find_row(s, actor, pipeline)
            c = s.get(ReviewAppConfig, p.id)
            if c is None:
                raise NotFound(f"Review apps are not enabled for the pipeline {p.name}.")
            return self._config_view(c)

    def configure(
        self, actor: UserView, pipeline: str, body: object, enable: bool
    ) -> ReviewAppConfigView:
        """POST (enable) and PATCH (update) in one: both leave review apps enabled."""
        if not isinstance(body, dict):
            raise InvalidParams("The body must be a JSON object.")
        with self.store.session() as s:
            p = self.pipelines.find_row(s, actor, pipeline)
            self.pipelines.check_manage(s, p, actor)
            c = s.get(ReviewAppConfig, p.id)
            if c is None:
                c = ReviewAppConfig(
                    pipeline_id=p.id,
                    automatic_review_apps=False,
                    destroy_stale_apps=False,
                    stale_days=5,
                    wait_for_ci=False,
                )
                s.add(c)
            repo = body.get("repo")
            if repo is not None:
                if not isinstance(repo, str):
                    raise InvalidParams("repo must be a repository name.")
                c.repo = repo
            elif c.repo is None:
                source = self.pipelines.repository_app(s, p)
                c.repo = source.name if source else None
            c.automatic_review_apps = _bool(body, "automatic_review_apps", c.automatic_review_apps)
            c.destroy_stale_apps = _bool(body, "destroy_stale_apps", c.destroy_stale_apps)
            c.wait_for_ci = _bool(body, "wait_for_ci", c.wait_for_ci)
            stale = body.get("stale_days")
            if stale is not None:
                if not isinstance(stale, int) or isinstance(stale, bool) or not 1 <= stale <= 30:
                    raise InvalidParams("stale_days must be a number of days from 1 to 30.")
                c.stale_days = stale
            if "base_name" in body:
                base = body["base_name"]
                if base is not None:
                    if p.generation == Generation.FIR:
                        raise InvalidParams(
                            "Review apps of Fir pipelines cannot have a base_name: "
                            "their names are not predictable."
                        )
                    if not isinstance(base, str) or not BASE_NAME_RE.match(base):
                        raise InvalidParams(
                            "base_name must start with a letter and have at most 21 "
                            "lowercase letters, digits and dashes."
                        )
                c.base_name = base
            if "deploy_target" in body:
                c.deploy_target_type, c.deploy_target_id = self._target(s, actor, body)
            s.flush()
            return self._config_view(c)

    def _target(self, s: Any, actor: UserView, body: dict[str, Any]) -> tuple[str | None, ...]:
        target = body["deploy_target"]
        if target is None:
            return None, None
        if not isinstance(target, dict) or target.get("type") not in ("region", "space"):
            raise InvalidParams("deploy_target must be {id, type} with type region or space.")
        ident = target.get("id")
        if not isinstance(ident, str) or not ident:
            raise InvalidParams("deploy_target.id is required.")
        if target["type"] == "space":
            self.spaces.get(actor, ident)  # the actor's team's space
        return str(target["type"]), ident

    def disable(self, actor: UserView, pipeline: str) -> ReviewAppConfigView:
        with self.store.session() as s:
            p = self.pipelines.find_row(s, actor, pipeline)
            self.pipelines.check_manage(s, p, actor)
            c = s.get(ReviewAppConfig, p.id)
            if c is None:
                raise NotFound(f"Review apps are not enabled for the pipeline {p.name}.")
            view = self._config_view(c)
            s.delete(c)
            return view

    # -- review apps -----------------------------------------------------------------------
    def _view(self, s: Any, r: ReviewApp) -> ReviewAppView:
        self._follow_setup(s, r)
        app = s.get(App, r.app_id) if r.app_id else None
        creator = s.get(User, r.creator_id) if r.creator_id else None
        return ReviewAppView(
            r.id,
            Ref(app.id, app.name) if app else None,
            r.app_setup_id,
            r.branch,
            r.pr_number,
            r.pipeline_id,
            r.status,
            r.error_status,
            r.message,
            r.creator_id,
            creator.email if creator else None,
            r.wait_for_ci,
            r.fork_repo_id,
            r.created_at,
            r.updated_at,
        )

    @staticmethod
    def _follow_setup(s: Any, r: ReviewApp) -> None:
        """A creating review app is created or errored once its app setup is done."""
        if r.status != "creating" or not r.app_setup_id:
            return
        setup = s.get(AppSetup, r.app_setup_id)
        if setup is None or setup.status == "pending":
            return
        if setup.status == "succeeded":
            r.status, r.message = "created", None
        else:
            r.status, r.error_status = "errored", "app_setup_failed"
            r.message = setup.failure_message or "The app setup failed."
        s.flush()

    def _row(self, s: Any, actor: UserView, review_app_id: str) -> ReviewApp:
        r: ReviewApp | None = s.get(ReviewApp, review_app_id) if is_uuid(review_app_id) else None
        if r is None:
            raise NotFound("Couldn't find that review app.")
        self.pipelines.find_row(s, actor, r.pipeline_id)
        return r

    def get(self, actor: UserView, review_app_id: str) -> ReviewAppView:
        with self.store.session() as s:
            return self._view(s, self._row(s, actor, review_app_id))

    def for_app(self, actor: UserView, app_identity: str) -> ReviewAppView:
        with self.store.session() as s:
            app = Apps.find_row(s, app_identity)
            self.apps.check_access(s, app, actor)
            r = s.scalar(select(ReviewApp).where(ReviewApp.app_id == app.id))
            if r is None:
                raise NotFound(f"{app.name} is not a review app.")
            return self._view(s, r)

    def list(self, actor: UserView, pipeline: str) -> list[ReviewAppView]:
        with self.store.session() as s:
            p = self.pipelines.find_row(s, actor, pipeline)
            rows = s.scalars(
                select(ReviewApp)
                .where(ReviewApp.pipeline_id == p.id, ReviewApp.status.in_(ACTIVE))
                .order_by(ReviewApp.created_at)
            )
            return [self._view(s, r) for r in rows]

    def create(self, actor: UserView, body: object) -> ReviewAppView:
        """POST /review-apps {branch, pipeline, source_blob {url, version}, pr_number,
        environment}. Needs a running loop: the app is set up in the background."""
        if not isinstance(body, dict):
            raise InvalidParams("The body must be a JSON object.")
        branch, pipeline = body.get("branch"), body.get("pipeline")
        blob, env = body.get("source_blob"), body.get("environment") or {}
        pr_number = body.get("pr_number")
        if not isinstance(branch, str) or not branch.strip():
            raise InvalidParams("branch is required.")
        if isinstance(pipeline, dict):
            pipeline = pipeline.get("id") or pipeline.get("name")
        if not isinstance(pipeline, str) or not pipeline:
            raise InvalidParams("pipeline is required.")
        if not isinstance(blob, dict) or not isinstance(blob.get("url"), str) or not blob["url"]:
            raise InvalidParams("source_blob.url is required.")
        if pr_number is not None and (not isinstance(pr_number, int) or pr_number < 1):
            raise InvalidParams("pr_number must be a positive number.")
        if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
            raise InvalidParams("environment must map config var names to strings.")
        fork = body.get("fork_repo_id")
        with self.store.session() as s:
            p = self.pipelines.find_row(s, actor, pipeline)
            c = s.get(ReviewAppConfig, p.id)
            if c is None:
                raise InvalidParams(f"Review apps are not enabled for the pipeline {p.name}.")
            name = self._app_name(s, p, c, branch, pr_number)
            team = s.get(Team, p.owner_id) if p.owner_type == "team" else None
            team_name = team.name if team else None
            target = (c.deploy_target_type, c.deploy_target_id)
            pipeline_id, generation, wait = p.id, p.generation, c.wait_for_ci
            # The review stage's config vars, then the request's own on top.
            env = stage_config(s, p.id, "review") | dict(env)
        url, version = blob["url"], blob.get("version")
        if url == "resolve":  # Heroku's CLI: the branch of the pipeline's repository
            url, version = self._resolve(actor, pipeline_id, branch)
        space = target[1] if target[0] == "space" else None
        region = target[1] if target[0] == "region" else None
        placement = (
            self.spaces.placement(actor, team_name, space, generation)
            if team_name or space
            else Placement(None, None, None, generation)
        )
        app = self.apps.create(actor, name, region, None, placement=placement)
        try:
            self.pipelines.couple(actor, app.id, pipeline_id, "review")
            setup = self.setups.begin(
                actor,
                app,
                {"url": url, "version": version},
                dict(env),
                environment="review",
            )
        except ServiceError:
            self._spawn_destroy(app.id)
            raise
        with self.store.session() as s:
            r = ReviewApp(
                pipeline_id=pipeline_id,
                app_id=app.id,
                app_setup_id=setup.id,
                branch=branch,
                pr_number=pr_number,
                status="creating",
                creator_id=actor.id,
                wait_for_ci=wait,
                fork_repo_id=fork if isinstance(fork, int) else None,
            )
            s.add(r)
            s.flush()
            return self._view(s, r)

    def _repository(self, actor: UserView, pipeline: str) -> str:
        """The app whose git repository holds the pipeline's branches: the config's repo
        when it names such an app, else the pipeline's (Pipelines.repository_app)."""
        with self.store.session() as s:
            p = self.pipelines.find_row(s, actor, pipeline)
            c = s.get(ReviewAppConfig, p.id)
            if c is not None and c.repo:
                named = s.scalar(select(App).where(App.name == c.repo))
                if named is not None:
                    self.apps.check_access(s, named, actor)
                    return named.name
            app = self.pipelines.repository_app(s, p)
            if app is None:
                raise InvalidParams(f"The pipeline {p.name} has no app with a git repository.")
            return app.name

    def has_branch(self, actor: UserView, pipeline: str, branch: str) -> dict[str, str]:
        """GET /pipelines/{id}/repo/branches/{branch}: 404 unless the repository has it."""
        repo = self._repository(actor, pipeline)
        if self.history is None or not self.history.has_branch(repo, branch):
            raise NotFound(f"The branch {branch} is not in the git repository of {repo}.")
        return {"name": branch, "repository": repo}

    def _resolve(self, actor: UserView, pipeline: str, branch: str) -> tuple[str, str]:
        """The branch's tree as one of the platform's source blobs: (url, commit)."""
        repo = self._repository(actor, pipeline)
        url = self.sources.new_upload()
        path = self.sources.path(url.rstrip("/").rsplit("/", 1)[-1])
        sha = self.history.archive(repo, branch, path) if self.history else None
        if sha is None:
            raise InvalidParams(f"The branch {branch} is not in the git repository of {repo}.")
        return url, sha

    def _app_name(
        self, s: Any, p: Pipeline, c: ReviewAppConfig, branch: str, pr: int | None
    ) -> str:
        if c.base_name and pr is not None:
            name = f"{c.base_name}-pr-{pr}"
            if s.scalar(select(App.id).where(App.name == name)) is None:
                return name
        slug = re.sub(r"[^a-z0-9]+", "-", branch.lower()).strip("-")[:8].strip("-") or "branch"
        while True:
            name = f"{p.name[:14].rstrip('-')}-{slug}-{secrets.token_hex(3)}"
            if s.scalar(select(App.id).where(App.name == name)) is None:
                return name

    async def delete(self, actor: UserView, review_app_id: str) -> ReviewAppView:
        """DELETE /review-apps/{id}: the app is destroyed; the review app reads deleted."""
        with self.store.session() as s:
            r = self._row(s, actor, review_app_id)
            if r.app_id is not None:
                app = s.get_one(App, r.app_id)
                self.apps.check_access(s, app, actor, owner_only=True)
            r.status = "deleting"
            app_id = r.app_id
        if app_id is not None:
            await self.destroy_app(app_id)
        with self.store.session() as s:
            row = s.get_one(ReviewApp, review_app_id)
            row.status = "deleted"
            return self._view(s, row)

    def _on_app_deleting(self, event: AppDeleting) -> None:
        with self.store.session() as s:
            for r in s.scalars(select(ReviewApp).where(ReviewApp.app_id == event.app_id)):
                r.status = "deleted"

    def _spawn_destroy(self, app_id: str) -> None:
        task = asyncio.get_running_loop().create_task(self._destroy_quietly(app_id))
        self._deleting.add(task)
        task.add_done_callback(self._deleting.discard)

    async def _destroy_quietly(self, app_id: str) -> None:
        try:
            await self.destroy_app(app_id)
        except Exception:
            log.exception("could not destroy the review app %s", app_id)

    # -- stale review apps -------------------------------------------------------------------
    def stale(self) -> builtins.list[tuple[str, str]]:
        """(review app id, app id) of the review apps past their pipeline's stale_days."""
        now = self.clock()
        out = []
        with self.store.session() as s:
            rows = s.execute(
                select(ReviewApp, ReviewAppConfig.stale_days, App.released_at)
                .join(ReviewAppConfig, ReviewAppConfig.pipeline_id == ReviewApp.pipeline_id)
                .join(App, App.id == ReviewApp.app_id)
                .where(
                    ReviewAppConfig.destroy_stale_apps.is_(True),
                    ReviewApp.status.in_(("created", "errored")),
                )
            )
            for r, days, released in rows:
                last = max(released or r.created_at, r.created_at)
                age = (now - last).total_seconds()
                if age >= days * self.settings.day_seconds and r.app_id is not None:
                    out.append((r.id, r.app_id))
        return out

    async def sweep(self) -> int:
        """Destroy stale review apps now; how many went."""
        gone = 0
        for review_app_id, app_id in self.stale():
            with self.store.session() as s:
                row = s.get(ReviewApp, review_app_id)
                if row is None:
                    continue
                row.status = "deleting"
            try:
                await self.destroy_app(app_id)
            except Exception:
                log.exception("stale review app %s could not be destroyed", review_app_id)
                continue
            with self.store.session() as s:
                row = s.get(ReviewApp, review_app_id)
                if row is not None:
                    row.status = "deleted"
                    row.message = "Destroyed after no deploy for the pipeline's stale_days."
            gone += 1
        return gone

    def start(self) -> None:
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep_forever())

    async def _sweep_forever(self) -> None:
        while True:
            try:
                with self.store.session() as s:
                    for r in s.scalars(select(ReviewApp).where(ReviewApp.status == "creating")):
                        self._follow_setup(s, r)
                await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("the stale review app sweep failed")
            await asyncio.sleep(self.settings.sweep_interval)

    async def stop(self) -> None:
        tasks = [*self._deleting, *([self._sweeper] if self._sweeper else [])]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
