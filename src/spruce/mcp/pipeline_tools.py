"""Pipelines: pipelines_create, pipelines_promote, pipelines_list, pipelines_info (Heroku's
tools under their schemas), over services/pipelines.py and services/promotions.py."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from spruce.services.pipelines import PipelineView
from spruce.services.promotions import PromotionTargetView

from .registry import Call, Registry, ToolError

PROMOTION_WAIT = 900.0  # how long a promotion is followed before the tool answers


def _pipeline(c: Call, p: PipelineView) -> dict[str, Any]:
    return {
        "id": p.id,
        "name": p.name,
        "owner": {"type": p.owner_type, "name": c.services.pipelines.owner_name(p)},
        "generation": p.generation,
        "created_at": p.created_at.isoformat(),
    }


def _apps(c: Call, p: PipelineView) -> list[dict[str, str]]:
    rows = c.services.pipelines.couplings(c.actor, pipeline=p.id)
    return [{"app": x.app.name, "stage": x.stage} for x in rows]


def register(r: Registry) -> None:
    @r.heroku("pipelines_create")
    async def pipelines_create(c: Call) -> Any:
        s = c.services
        app = await c.db(c.app) if c.opt("app") else None
        team = c.opt("team")
        owner: dict[str, str] | None = None
        if team:
            owner = {"type": "team", "id": (await c.db(s.teams.get, c.actor, team)).id}
        generation = app.generation if app else None
        p = await c.db(s.pipelines.create, c.actor, c.need("name"), owner, generation)
        result = _pipeline(c, p)
        if app is not None:
            coupling = await c.db(s.pipelines.couple, c.actor, app.id, p.id, c.need("stage"))
            result["apps"] = [{"app": coupling.app.name, "stage": coupling.stage}]
        return result

    @r.heroku("pipelines_list", read_only=True, idempotent=True)
    async def pipelines_list(c: Call) -> Any:
        pipelines = await c.db(c.services.pipelines.list_for, c.actor)

        def rows() -> list[dict[str, Any]]:
            return [_pipeline(c, p) for p in pipelines]

        listed = await c.db(rows)
        if c.flag("json"):
            return listed
        if not listed:
            return "You have no pipelines."
        return "\n".join(f"{p['name']} ({p['generation']}, {p['owner']['name']})" for p in listed)

    @r.heroku("pipelines_info", read_only=True, idempotent=True)
    async def pipelines_info(c: Call) -> Any:
        p = await c.db(c.services.pipelines.get, c.actor, c.need("pipeline"))

        def gather() -> dict[str, Any]:
            return _pipeline(c, p) | {"apps": _apps(c, p)}

        info = await c.db(gather)
        if c.flag("json"):
            return info
        lines = [f"=== {p.name}", f"owner: {info['owner']['name']}", ""]
        lines += [f"{a['app']}  {a['stage']}" for a in info["apps"]]
        return "\n".join(lines)

    @r.heroku("pipelines_promote")
    async def pipelines_promote(c: Call) -> Any:
        s = c.services
        to = [n.strip() for n in (c.opt("to") or "").split(",") if n.strip()]
        plan = await c.db(s.promotions.plan, c.actor, c.need("app"), to or None)
        promotion_id = await c.db(s.promotions.check, c.actor, plan.body())
        s.promotions.start(c.actor, promotion_id)
        deadline = time.monotonic() + PROMOTION_WAIT
        targets: list[PromotionTargetView] = []
        while time.monotonic() < deadline:
            targets = await c.db(s.promotions.targets, c.actor, promotion_id)
            done = sum(t.status != "pending" for t in targets)
            await c.progress(done, len(targets), f"{done} of {len(targets)} targets released")
            if done == len(targets):
                break
            await asyncio.sleep(0.5)
        else:
            raise ToolError(
                f"The promotion {promotion_id} is still running; ask again with "
                "pipelines_info later."
            )

        def outcome(t: PromotionTargetView) -> dict[str, Any]:
            out: dict[str, Any] = {"app": t.app.name, "status": t.status}
            if t.error_message:
                out["error"] = t.error_message
            if t.release_id:
                release = s.releases.find(t.release_id)
                out["release"] = f"v{release.version}" if release else None
                path, _ = s.releases.output(t.release_id)
                if path is not None and path.exists():
                    out["release_output"] = path.read_text(errors="replace")
            return out

        results = [await c.db(outcome, t) for t in targets]
        ok = all(t.status == "succeeded" for t in targets)
        return {
            "promotion": promotion_id,
            "from": plan.source.name,
            "to": plan.target_stage or ", ".join(t.name for t in plan.targets),
            "result": "Promotion successful" if ok else "Promotion to some apps failed",
            "targets": results,
        }
