"""Pipelines, couplings, promotions and their targets, the pipeline's latest releases,
transfers, `POST /filters/apps` (how Heroku's CLI loads a pipeline's apps), and Spruce's
own `GET /apps/{app}/pipeline-diff` (pipelines:diff without GitHub)."""

from __future__ import annotations

from typing import Any

from starlette.routing import Route

from spruce.services.errors import InvalidParams, NotFound, ServiceError
from spruce.services.pipeline_diff import DiffView
from spruce.services.pipelines import CouplingView, PipelineView
from spruce.services.promotions import PromotionTargetView, PromotionView
from spruce.services.views import AppView

from . import views
from .http import Ctx, endpoint, paginate


def pipeline_json(p: PipelineView) -> dict[str, Any]:
    return {
        "id": p.id,
        "name": p.name,
        "owner": {"id": p.owner_id, "type": p.owner_type},
        "generation": views.generation_json(p.generation),
        "created_at": views.ts(p.created_at),
        "updated_at": views.ts(p.updated_at),
    }


def coupling_json(c: CouplingView) -> dict[str, Any]:
    return {
        "id": c.id,
        "app": {"id": c.app.id, "name": c.app.name},
        "pipeline": {"id": c.pipeline.id, "name": c.pipeline.name},
        "stage": c.stage,
        "created_at": views.ts(c.created_at),
        "updated_at": views.ts(c.updated_at),
    }


def promotion_json(p: PromotionView) -> dict[str, Any]:
    return {
        "id": p.id,
        "pipeline": {"id": p.pipeline.id},
        "source": {"app": {"id": p.source_app.id}, "release": {"id": p.source_release_id}},
        "status": p.status,
        "created_at": views.ts(p.created_at),
        "updated_at": views.ts(p.updated_at),
    }


def target_json(t: PromotionTargetView) -> dict[str, Any]:
    return {
        "id": t.id,
        "app": {"id": t.app.id},
        "release": {"id": t.release_id} if t.release_id else None,
        "status": t.status,
        "error_message": t.error_message,
        "pipeline_promotion": {"id": t.promotion_id},
    }


def diff_json(d: DiffView) -> dict[str, Any]:
    return {
        "app": {"id": d.app.id, "name": d.app.name},
        "pipeline": {"id": d.pipeline.id, "name": d.pipeline.name},
        "stage": d.stage,
        "downstream_stage": d.downstream_stage,
        "commit": d.commit,
        "comparisons": [
            {
                "app": {"id": e.app.id, "name": e.app.name},
                "status": e.status,
                "commit": e.commit,
                "message": e.message,
                "commits": [
                    {"sha": c.sha, "date": c.date, "author": c.author, "message": c.message}
                    for c in e.commits
                ],
            }
            for e in d.entries
        ],
    }


# -- pipelines -------------------------------------------------------------------------------
def pipelines_create(ctx: Ctx) -> Any:
    p = ctx.services.pipelines.create(
        ctx.actor, ctx.field("name"), ctx.field("owner"), ctx.field("generation")
    )
    ctx.status = 201
    return pipeline_json(p)


def pipelines_list(ctx: Ctx) -> Any:
    name = ctx.request.query_params.get("eq[name]")
    rows = [pipeline_json(p) for p in ctx.services.pipelines.list_for(ctx.actor, name)]
    return paginate(ctx, rows, ("id", "name"), "name")


def pipelines_info(ctx: Ctx) -> Any:
    return pipeline_json(ctx.services.pipelines.get(ctx.actor, ctx.params["pipeline"]))


def pipelines_update(ctx: Ctx) -> Any:
    p = ctx.services.pipelines.rename(ctx.actor, ctx.params["pipeline"], ctx.field("name"))
    return pipeline_json(p)


def pipelines_delete(ctx: Ctx) -> Any:
    return pipeline_json(ctx.services.pipelines.delete(ctx.actor, ctx.params["pipeline"]))


def pipeline_transfer(ctx: Ctx) -> Any:
    pipeline = ctx.field("pipeline")
    ident = pipeline.get("id") or pipeline.get("name") if isinstance(pipeline, dict) else pipeline
    if not isinstance(ident, str) or not ident:
        raise InvalidParams("pipeline is required.")
    before = ctx.services.pipelines.get(ctx.actor, ident)
    after = ctx.services.pipelines.transfer(ctx.actor, ident, ctx.field("new_owner"))
    ctx.status = 201
    return {
        "pipeline": {"id": after.id},
        "previous_owner": {"id": before.owner_id, "type": before.owner_type},
        "new_owner": {"id": after.owner_id, "type": after.owner_type},
    }


def _latest_releases(ctx: Ctx) -> list[dict[str, Any]]:
    s = ctx.services
    out = []
    for c in s.pipelines.couplings(ctx.actor, pipeline=ctx.params["pipeline"]):
        current = s.releases.current(c.app.id)
        if current is not None:
            out.append(views.release_json(current))
    return out


def latest_releases(ctx: Ctx) -> Any:
    return _latest_releases(ctx)


def latest_builds(ctx: Ctx) -> Any:
    s = ctx.services
    out = []
    for c in s.pipelines.couplings(ctx.actor, pipeline=ctx.params["pipeline"]):
        builds = s.builds.list(c.app.id)
        if builds:
            out.append(views.build_json(builds[-1]))
    return out


def pipeline_stack(ctx: Ctx) -> Any:
    p = ctx.services.pipelines.get(ctx.actor, ctx.params["pipeline"])
    name = "cnb" if p.generation == "fir" else "heroku-24"
    return {"stack": views.stack_json(name)}


# -- couplings -------------------------------------------------------------------------------
def couplings_create(ctx: Ctx) -> Any:
    c = ctx.services.pipelines.couple(
        ctx.actor, ctx.field("app"), ctx.field("pipeline"), ctx.field("stage")
    )
    ctx.status = 201
    return coupling_json(c)


def _couplings(ctx: Ctx, rows: list[CouplingView]) -> Any:
    return paginate(ctx, [coupling_json(c) for c in rows], ("id", "stage"), "id")


def couplings_list(ctx: Ctx) -> Any:
    return _couplings(ctx, ctx.services.pipelines.couplings(ctx.actor))


def couplings_of_pipeline(ctx: Ctx) -> Any:
    rows = ctx.services.pipelines.couplings(ctx.actor, pipeline=ctx.params["pipeline"])
    return _couplings(ctx, rows)


def couplings_of_user(ctx: Ctx) -> Any:
    if ctx.params["user"] not in ("~", ctx.actor.id, ctx.actor.email):
        raise NotFound("Couldn't find that user.")
    return _couplings(ctx, ctx.services.pipelines.couplings(ctx.actor, mine=True))


def couplings_of_team(ctx: Ctx) -> Any:
    rows = ctx.services.pipelines.couplings(ctx.actor, team=ctx.params["team"])
    return _couplings(ctx, rows)


def coupling_info(ctx: Ctx) -> Any:
    return coupling_json(ctx.services.pipelines.coupling(ctx.actor, ctx.params["coupling"]))


def coupling_for_app(ctx: Ctx) -> Any:
    return coupling_json(ctx.services.pipelines.coupling_for_app(ctx.actor, ctx.params["app"]))


def coupling_update(ctx: Ctx) -> Any:
    c = ctx.services.pipelines.update_coupling(
        ctx.actor, ctx.params["coupling"], ctx.field("stage")
    )
    return coupling_json(c)


def coupling_delete(ctx: Ctx) -> Any:
    return coupling_json(ctx.services.pipelines.uncouple(ctx.actor, ctx.params["coupling"]))


# -- promotions ------------------------------------------------------------------------------
async def promotions_create(ctx: Ctx) -> Any:
    promotion = await ctx.off_loop(ctx.services.promotions.check, ctx.actor, ctx.body)
    started = ctx.services.promotions.start(ctx.actor, promotion)
    ctx.status = 201
    return promotion_json(started)


def promotion_info(ctx: Ctx) -> Any:
    return promotion_json(ctx.services.promotions.get(ctx.actor, ctx.params["promotion"]))


def promotion_targets(ctx: Ctx) -> Any:
    rows = ctx.services.promotions.targets(ctx.actor, ctx.params["promotion"])
    return [target_json(t) for t in rows]


# -- apps by id (Heroku's CLI: POST /filters/apps {in: {id: [...]}}) --------------------------
def filter_apps(ctx: Ctx) -> Any:
    wanted = ctx.field("in")
    ids = wanted.get("id") if isinstance(wanted, dict) else None
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise InvalidParams("in.id must list app ids.")
    apps: list[AppView] = []
    for ident in dict.fromkeys(ids):
        try:
            apps.append(ctx.services.apps.get(ctx.actor, ident))
        except ServiceError:
            continue  # apps one cannot see are left out, as Heroku's filter does
    return paginate(ctx, [views.app_json(a) for a in apps], ("id", "name"), "id")


def pipeline_diff(ctx: Ctx) -> Any:
    return diff_json(ctx.services.pipeline_diff.diff(ctx.actor, ctx.params["app"]))


def stage_config_get(ctx: Ctx) -> Any:
    """GET /pipelines/{id}/stage/{stage}/config-vars (`heroku ci:config`, review apps')."""
    p, stage = ctx.params["pipeline"], ctx.params["stage"]
    return ctx.services.pipeline_config.get(ctx.actor, p, stage)


def stage_config_update(ctx: Ctx) -> Any:
    p, stage = ctx.params["pipeline"], ctx.params["stage"]
    return ctx.services.pipeline_config.update(ctx.actor, p, stage, ctx.body)


def routes() -> list[Route]:
    P = "/pipelines/{pipeline}"
    C = "/pipeline-couplings/{coupling}"
    return [
        Route("/pipelines", endpoint(pipelines_create), methods=["POST"]),
        Route("/pipelines", endpoint(pipelines_list), methods=["GET"]),
        Route(P, endpoint(pipelines_info), methods=["GET"]),
        Route(P, endpoint(pipelines_update), methods=["PATCH"]),
        Route(P, endpoint(pipelines_delete), methods=["DELETE"]),
        Route(P + "/pipeline-couplings", endpoint(couplings_of_pipeline), methods=["GET"]),
        Route(P + "/latest-releases", endpoint(latest_releases), methods=["GET"]),
        Route(P + "/latest-deployments", endpoint(latest_releases), methods=["GET"]),
        Route(P + "/latest-builds", endpoint(latest_builds), methods=["GET"]),
        Route(P + "/pipeline-stack", endpoint(pipeline_stack), methods=["GET"]),
        Route(P + "/stage/{stage}/config-vars", endpoint(stage_config_get), methods=["GET"]),
        Route(P + "/stage/{stage}/config-vars", endpoint(stage_config_update), methods=["PATCH"]),
        Route("/pipeline-transfers", endpoint(pipeline_transfer), methods=["POST"]),
        Route("/pipeline-couplings", endpoint(couplings_create), methods=["POST"]),
        Route("/pipeline-couplings", endpoint(couplings_list), methods=["GET"]),
        Route(C, endpoint(coupling_info), methods=["GET"]),
        Route(C, endpoint(coupling_update), methods=["PATCH"]),
        Route(C, endpoint(coupling_delete), methods=["DELETE"]),
        Route("/users/{user}/pipeline-couplings", endpoint(couplings_of_user), methods=["GET"]),
        Route("/teams/{team}/pipeline-couplings", endpoint(couplings_of_team), methods=["GET"]),
        Route("/apps/{app}/pipeline-couplings", endpoint(coupling_for_app), methods=["GET"]),
        Route("/apps/{app}/pipeline-diff", endpoint(pipeline_diff), methods=["GET"]),
        Route("/pipeline-promotions", endpoint(promotions_create), methods=["POST"]),
        Route("/pipeline-promotions/{promotion}", endpoint(promotion_info), methods=["GET"]),
        Route(
            "/pipeline-promotions/{promotion}/promotion-targets",
            endpoint(promotion_targets),
            methods=["GET"],
        ),
        Route("/filters/apps", endpoint(filter_apps), methods=["POST"]),
    ]
