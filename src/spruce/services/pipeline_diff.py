"""pipelines:diff without GitHub: an app's released commit against its downstream apps',
compared in Spruce's own git repositories (the CommitHistory port).

Like Heroku's, it compares the commit of each app's latest succeeded release (Cedar: the
slug's, Fir: the OCI image's) with the next stage's apps. Heroku's CLI asks GitHub for the
commits between; Spruce reads them from the app's repository on the platform (then the
downstream app's, when the commits were pushed there).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from spruce.store.db import Store
from spruce.store.models import App, OciImage, Release, Slug

from .apps import Apps
from .errors import InvalidParams, NotFound
from .model import Commit, ReleaseStatus
from .pipelines import Pipelines, downstream_stage
from .ports import CommitHistory
from .views import Ref, UserView


@dataclass(frozen=True)
class DiffEntry:
    app: Ref
    """The downstream app."""
    status: str
    """up_to_date | ahead | behind | no_release | not_compared"""
    commit: str | None
    commits: tuple[Commit, ...]
    message: str


@dataclass(frozen=True)
class DiffView:
    app: Ref
    pipeline: Ref
    stage: str
    downstream_stage: str
    commit: str
    entries: tuple[DiffEntry, ...]


def released_commit(s: Session, app_id: str) -> str | None:
    """The commit of the app's latest succeeded release that carries code."""
    rows = s.scalars(
        select(Release)
        .where(Release.app_id == app_id, Release.status == ReleaseStatus.SUCCEEDED)
        .order_by(Release.version.desc())
    )
    for r in rows:
        if r.slug_id:
            slug = s.get(Slug, r.slug_id)
            return slug.commit if slug else None
        if r.oci_image_id:
            image = s.get(OciImage, r.oci_image_id)
            return image.commit if image else None
    return None


class PipelineDiff:
    def __init__(
        self, store: Store, apps: Apps, pipelines: Pipelines, history: CommitHistory | None
    ) -> None:
        self.store = store
        self.apps = apps
        self.pipelines = pipelines
        self.history = history

    def diff(self, actor: UserView, app_identity: str) -> DiffView:
        app = self.apps.get(actor, app_identity)
        coupling = self.pipelines.coupling_of_app_id(app.id)
        if coupling is None:
            raise NotFound(f"This app ({app.name}) does not seem to be a part of any pipeline.")
        target_stage = downstream_stage(coupling.stage)
        if target_stage is None:
            raise InvalidParams(f"Unable to diff {app.name}: {coupling.stage} has no next stage.")
        downstream = self.pipelines.app_ids(coupling.pipeline.id, [target_stage])
        if not downstream:
            raise InvalidParams(
                f"Cannot diff {app.name} as there are no downstream apps configured."
            )
        with self.store.session() as s:
            head = released_commit(s, app.id)
            if head is None:
                raise NotFound(f"No release was found for {app.name}, unable to diff.")
            others = [(s.get_one(App, i).name, i, released_commit(s, i)) for i in downstream]
        entries = tuple(self._compare(app.name, head, Ref(i, n), c) for n, i, c in others)
        return DiffView(app.ref, coupling.pipeline, coupling.stage, target_stage, head, entries)

    def _between(self, names: tuple[str, ...], base: str, head: str) -> list[Commit] | None:
        if self.history is None:
            return None
        for name in names:
            found = self.history.commits_between(name, base, head)
            if found is not None:
                return found
        return None

    def _compare(self, name: str, head: str, other: Ref, base: str | None) -> DiffEntry:
        if base is None:
            return DiffEntry(
                other,
                "no_release",
                None,
                (),
                f"{name} was not compared to {other.name} as "
                f"{other.name} does not have any releases",
            )
        if base == head:
            return DiffEntry(
                other, "up_to_date", base, (), f"{name} is up to date with {other.name}"
            )
        names = (name, other.name)
        ahead = self._between(names, base, head)
        if ahead:
            n = len(ahead)
            return DiffEntry(
                other,
                "ahead",
                base,
                tuple(ahead),
                f"{name} is ahead of {other.name} by {n} commit{'s' if n != 1 else ''}",
            )
        behind = self._between(names, head, base)
        if behind:
            n = len(behind)
            return DiffEntry(
                other,
                "behind",
                base,
                tuple(behind),
                f"{name} is behind {other.name} by {n} commit{'s' if n != 1 else ''}",
            )
        return DiffEntry(
            other,
            "not_compared",
            base,
            (),
            f"{name} was not compared to {other.name} because we were unable to perform a diff "
            "(the commits are not both in Spruce's git repositories)",
        )
