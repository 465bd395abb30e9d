"""Review apps and the pipelines' review-app config; the pipeline's repository as Heroku's
CLI reads it (`/pipelines/{id}/repo`, its branches) and the account feature that makes the
CLI ask for it instead of GitHub's host."""

from __future__ import annotations

from typing import Any

from starlette.routing import Route

from spruce.services.review_apps import ReviewAppConfigView, ReviewAppView

from . import views
from .http import Ctx, endpoint, paginate

REPOSITORIES_FEATURE = "dashboard-repositories-api"


def config_json(c: ReviewAppConfigView) -> dict[str, Any]:
    target = c.deploy_target
    return {
        "repo": {"id": c.repo_id, "name": c.repo},
        "automatic_review_apps": c.automatic_review_apps,
        "destroy_stale_apps": c.destroy_stale_apps,
        "stale_days": c.stale_days,
        "wait_for_ci": c.wait_for_ci,
        "base_name": c.base_name,
        "deploy_target": {"type": target[0], "id": target[1]} if target else None,
        "pipeline_id": c.pipeline_id,
    }


def review_app_json(r: ReviewAppView) -> dict[str, Any]:
    return {
        "id": r.id,
        "app": {"id": r.app.id, "name": r.app.name} if r.app else None,
        "app_setup": {"id": r.app_setup_id} if r.app_setup_id else None,
        "branch": r.branch,
        "pr_number": r.pr_number,
        "pipeline": {"id": r.pipeline_id},
        "status": r.status,
        "error_status": r.error_status,
        "message": r.message,
        "creator": {"id": r.creator_id, "email": r.creator_email} if r.creator_id else {},
        "wait_for_ci": r.wait_for_ci,
        "fork_repo": {"id": r.fork_repo_id} if r.fork_repo_id is not None else None,
        "created_at": views.ts(r.created_at),
        "updated_at": views.ts(r.updated_at),
    }


def config_enable(ctx: Ctx) -> Any:
    c = ctx.services.review_apps.configure(ctx.actor, ctx.params["pipeline"], ctx.body, True)
    ctx.status = 201
    return config_json(c)


def config_update(ctx: Ctx) -> Any:
    c = ctx.services.review_apps.configure(ctx.actor, ctx.params["pipeline"], ctx.body, False)
    return config_json(c)


def config_info(ctx: Ctx) -> Any:
    return config_json(ctx.services.review_apps.config(ctx.actor, ctx.params["pipeline"]))


def config_delete(ctx: Ctx) -> Any:
    return config_json(ctx.services.review_apps.disable(ctx.actor, ctx.params["pipeline"]))


async def review_apps_create(ctx: Ctx) -> Any:
    r = ctx.services.review_apps.create(ctx.actor, ctx.body)
    ctx.status = 201
    return review_app_json(r)


def review_app_info(ctx: Ctx) -> Any:
    return review_app_json(ctx.services.review_apps.get(ctx.actor, ctx.params["review_app"]))


async def review_app_delete(ctx: Ctx) -> Any:
    r = await ctx.services.review_apps.delete(ctx.actor, ctx.params["review_app"])
    return review_app_json(r)


def review_app_of_app(ctx: Ctx) -> Any:
    return review_app_json(ctx.services.review_apps.for_app(ctx.actor, ctx.params["app"]))


def review_apps_of_pipeline(ctx: Ctx) -> Any:
    rows = ctx.services.review_apps.list(ctx.actor, ctx.params["pipeline"])
    return paginate(ctx, [review_app_json(r) for r in rows], ("id", "branch"), "id")


def pipeline_repo(ctx: Ctx) -> Any:
    return ctx.services.pipelines.repository(ctx.actor, ctx.params["pipeline"])


def pipeline_branch(ctx: Ctx) -> Any:
    return ctx.services.review_apps.has_branch(
        ctx.actor, ctx.params["pipeline"], ctx.params["branch"]
    )


def repositories_feature(ctx: Ctx) -> Any:
    """On: Heroku's CLI then reads the pipeline's repository from the API host instead of
    GitHub's integration host (which it cannot be pointed elsewhere from)."""
    return {
        "id": "5e7b1c1a-6a3e-4f7d-9a39-1d0c6f2f7a11",
        "name": REPOSITORIES_FEATURE,
        "description": "Pipelines' repositories through the Platform API (Spruce's git).",
        "doc_url": "",
        "enabled": True,
        "state": "general",
        "display_name": "Repositories API",
        "feedback_email": "",
        "created_at": views.ts(ctx.actor.created_at),
        "updated_at": views.ts(ctx.actor.created_at),
    }


def routes() -> list[Route]:
    P = "/pipelines/{pipeline}"
    R = "/review-apps/{review_app}"
    return [
        Route(P + "/review-app-config", endpoint(config_enable), methods=["POST"]),
        Route(P + "/review-app-config", endpoint(config_info), methods=["GET"]),
        Route(P + "/review-app-config", endpoint(config_update), methods=["PATCH"]),
        Route(P + "/review-app-config", endpoint(config_delete), methods=["DELETE"]),
        Route(P + "/review-apps", endpoint(review_apps_of_pipeline), methods=["GET"]),
        Route(P + "/repo", endpoint(pipeline_repo), methods=["GET"]),
        Route(P + "/repo/branches/{branch:path}", endpoint(pipeline_branch), methods=["GET"]),
        Route("/review-apps", endpoint(review_apps_create), methods=["POST"]),
        Route(R, endpoint(review_app_info), methods=["GET"]),
        Route(R, endpoint(review_app_delete), methods=["DELETE"]),
        Route("/apps/{app}/review-app", endpoint(review_app_of_app), methods=["GET"]),
        Route(
            f"/account/features/{REPOSITORIES_FEATURE}",
            endpoint(repositories_feature),
            methods=["GET"],
        ),
    ]
