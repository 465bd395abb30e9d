"""A pipeline stage's config vars (`/pipelines/{id}/stage/{stage}/config-vars`): the `test`
stage's are Heroku CI's (`heroku ci:config`), the `review` stage's every review app gets."""

from __future__ import annotations

import re

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from spruce.store.db import Store
from spruce.store.models import PipelineStageConfigVar

from .errors import InvalidParams
from .pipelines import Pipelines
from .views import UserView

STAGES = ("test", "review", "development", "staging", "production")
_KEY = re.compile(r"^[\w.:\[\]]+$")  # the schema's pattern for a config var's name


def stage_config(s: Session, pipeline_id: str, stage: str) -> dict[str, str]:
    rows = s.execute(
        select(PipelineStageConfigVar.key, PipelineStageConfigVar.value).where(
            PipelineStageConfigVar.pipeline_id == pipeline_id,
            PipelineStageConfigVar.stage == stage,
        )
    )
    return dict(sorted((k, v) for k, v in rows))


def _check_stage(stage: str) -> str:
    if stage not in STAGES:
        raise InvalidParams(f"Stage must be one of {', '.join(STAGES)}.")
    return stage


class PipelineConfigVars:
    def __init__(self, store: Store, pipelines: Pipelines) -> None:
        self.store = store
        self.pipelines = pipelines

    def get(self, actor: UserView, pipeline: str, stage: str) -> dict[str, str]:
        """The stage's config vars; values are secrets, so only who manages the pipeline."""
        _check_stage(stage)
        with self.store.session() as s:
            p = self.pipelines.find_row(s, actor, pipeline)
            self.pipelines.check_manage(s, p, actor)
            return stage_config(s, p.id, stage)

    def update(self, actor: UserView, pipeline: str, stage: str, changes: object) -> dict[str, str]:
        """Set the names given a string, remove those given null; the stage's vars after."""
        _check_stage(stage)
        if not isinstance(changes, dict):
            raise InvalidParams("The body must map config var names to strings or null.")
        for key, value in changes.items():
            if not isinstance(key, str) or not _KEY.match(key):
                raise InvalidParams(f"{key!r} is not a valid config var name.")
            if value is not None and not isinstance(value, str | int | float | bool):
                raise InvalidParams(f"The value of {key} must be a string or null.")
        with self.store.session() as s:
            p = self.pipelines.find_row(s, actor, pipeline)
            self.pipelines.check_manage(s, p, actor)
            for key, value in changes.items():
                s.execute(
                    delete(PipelineStageConfigVar).where(
                        PipelineStageConfigVar.pipeline_id == p.id,
                        PipelineStageConfigVar.stage == stage,
                        PipelineStageConfigVar.key == key,
                    )
                )
                if value is not None:
                    text = str(value).lower() if isinstance(value, bool) else str(value)
                    s.add(
                        PipelineStageConfigVar(pipeline_id=p.id, stage=stage, key=key, value=text)
                    )
            s.flush()
            return stage_config(s, p.id, stage)
