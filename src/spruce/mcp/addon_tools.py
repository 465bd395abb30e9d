"""Add-ons and Postgres (pg_*), Key-Value Store info, and the AI tools."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from typing import Any

from spruce.api import views
from spruce.services.errors import InvalidParams, NotFound
from spruce.services.model import QueryResult
from spruce.services.views import AddonView

from .registry import Call, NotBuilt, Registry, ToolError, string

INFERENCE = "heroku-inference"
MAX_CELL = 2000  # characters of one value shown by pg_psql


def register(r: Registry) -> None:
    # -- add-ons ------------------------------------------------------------------------
    @r.heroku("list_addons", read_only=True, idempotent=True)
    async def list_addons(c: Call) -> Any:
        s = c.services

        def find() -> list[AddonView]:
            if c.opt("app"):
                return s.addons.for_app(c.app().id)
            return s.addons.visible(c.actor)

        return [_addon_summary(a) for a in await c.db(find)]

    @r.heroku("get_addon_info", read_only=True, idempotent=True)
    async def get_addon_info(c: Call) -> Any:
        s = c.services

        def find() -> dict[str, Any]:
            app_id = c.app().id if c.opt("app") else None
            addon = s.addons.resolve_addon(c.actor, c.need("addon"), app_id)
            atts = s.addons.attachments(c.actor, addon_id=addon.id)
            return views.addon_json(addon) | {
                "attachments": [{"app": a.app.name, "name": a.name} for a in atts]
            }

        return await c.db(find)

    @r.heroku("create_addon")
    async def create_addon(c: Call) -> Any:
        app = await c.target(need="manage")
        addon = await c.services.addons.create(
            c.actor, app.id, c.need("serviceAndPlan"), c.opt("as"), None, c.opt("name")
        )
        return _addon_summary(addon) | {"config_vars": list(addon.config_var_names)}

    @r.heroku("list_addon_services", read_only=True, idempotent=True)
    async def list_addon_services(c: Call) -> Any:
        return [
            {"name": svc.name, "human_name": svc.human_name, "plans": [p.name for p in svc.plans]}
            for svc in c.services.addons.catalog.services()
        ]

    @r.heroku("list_addon_plans", read_only=True, idempotent=True)
    async def list_addon_plans(c: Call) -> Any:
        svc = c.services.addons.catalog.service(c.need("service"))
        return [views.plan_json(p, svc.human_name) for p in svc.plans]

    # -- Postgres -------------------------------------------------------------------------
    @r.heroku("pg_psql")
    async def pg_psql(c: Call) -> Any:
        if c.opt("credential") not in (None, "default"):
            raise ToolError("Spruce's Postgres add-ons have one credential: default.")
        command = c.opt("command")
        if command is None:
            if c.opt("file"):
                raise ToolError(
                    "file names a file on the client's machine, which this server cannot "
                    "read: send its SQL as command (`spruce mcp` over stdio reads the file "
                    "for you)."
                )
            raise InvalidParams("command (the SQL to run) is required.")
        addon = await c.db(_database, c, "deploy")  # SQL as the add-on's role: deploy's
        return render_query(await c.services.addon_data.query(addon, command))

    @r.heroku("pg_info", read_only=True, idempotent=True)
    async def pg_info(c: Call) -> Any:
        addon = await c.db(_database, c)
        info = await c.services.addon_data.info(addon)
        return {"addon": info.addon, "plan": info.plan} | dict(info.info)

    @r.heroku("pg_ps", read_only=True)
    async def pg_ps(c: Call) -> Any:
        rows = await c.services.addon_data.ps(await c.db(_database, c))
        if not c.flag("verbose"):
            rows = [row for row in rows if row.get("state") != "idle"]
        return rows

    @r.heroku("pg_locks", read_only=True)
    async def pg_locks(c: Call) -> Any:
        rows = await c.services.addon_data.locks(await c.db(_database, c))
        if c.flag("truncate"):
            for row in rows:
                q = row.get("query_snippet") or ""
                row["query_snippet"] = q[:40] + ("…" if len(q) > 40 else "")
        return rows

    @r.heroku("pg_outliers", read_only=True)
    async def pg_outliers(c: Call) -> Any:
        addon = await c.db(_database, c)
        result = await c.services.addon_data.outliers(
            addon, c.args.get("num", 10), c.flag("reset"), c.flag("truncate")
        )
        return render_query(result)

    @r.heroku("pg_credentials", read_only=True, idempotent=True)
    async def pg_credentials(c: Call) -> Any:
        s = c.services

        def find() -> Any:
            addon = _database(c, "deploy")  # credentials are config values: deploy's
            creds = s.addon_data.credentials(addon)
            atts = s.addons.attachments(c.actor, addon_id=addon.id)
            for cred in creds:
                cred["attachments"] = [f"{a.app.name}::{a.name}" for a in atts]
            return creds

        return await c.db(find)

    @r.heroku("pg_kill", destructive=True)
    async def pg_kill(c: Call) -> Any:
        addon = await c.db(_database, c, "operate")
        pid = c.args.get("pid")
        if isinstance(pid, float) and pid.is_integer():
            pid = int(pid)
        killed = await c.services.addon_data.kill(addon, pid, c.flag("force"))
        return {"pid": killed, "terminated" if c.flag("force") else "cancelled": True}

    @r.heroku("pg_maintenance", read_only=True, idempotent=True)
    async def pg_maintenance(c: Call) -> Any:
        addon = await c.db(_database, c)
        # True of every Spruce database: the platform schedules no maintenance on them.
        return {
            "addon": addon.name,
            "maintenance_required": False,
            "window": None,
            "note": "Spruce schedules no maintenance windows on its Postgres databases.",
        }

    @r.heroku("pg_backups", read_only=True, idempotent=True)
    async def pg_backups(c: Call) -> Any:
        addon = await c.db(_database, c)
        return [views.backup_json(b) for b in c.services.addon_data.backups(addon)]

    @r.heroku("pg_upgrade", destructive=True)
    async def pg_upgrade(c: Call) -> Any:
        await c.db(_database, c, "manage")
        raise NotBuilt(
            "pg_upgrade",
            "Postgres version upgrades",
            "Every Spruce database runs on the platform's one PostgreSQL server version.",
        )

    # -- Spruce's own --------------------------------------------------------------------
    @r.own(
        "kvs_info",
        "Key-Value Store (Redis) info for an add-on: version, memory, clients, settings.",
        {"app": string("App name."), "addon": string("Add-on or attachment; default: REDIS")},
        ("app",),
        read_only=True,
        idempotent=True,
    )
    async def kvs_info(c: Call) -> Any:
        s = c.services

        def find() -> AddonView:
            return s.addons.resolve_addon(c.actor, c.opt("addon", "REDIS"), c.app().id)

        addon = await c.db(find)
        if c.services.addons.catalog.provider(addon.service.name).key_value_store() is None:
            raise InvalidParams(f"{addon.name} is not a Key-Value Store.")
        info = await c.services.addon_data.info(addon)
        return {"addon": info.addon, "plan": info.plan} | dict(info.info)

    # -- AI -------------------------------------------------------------------------------
    @r.heroku("list_ai_available_models", read_only=True, idempotent=True)
    async def list_ai_available_models(c: Call) -> Any:
        svc = _inference(c, "list_ai_available_models")
        return [{"model_id": p.name.partition(":")[2], "plan": p.name} for p in svc.plans]

    @r.heroku("provision_ai_model")
    async def provision_ai_model(c: Call) -> Any:
        _inference(c, "provision_ai_model")
        app = await c.target(need="manage")
        plan = f"{INFERENCE}:{c.need('modelName')}"
        addon = await c.services.addons.create(c.actor, app.id, plan, c.opt("as"))
        return _addon_summary(addon) | {"config_vars": list(addon.config_var_names)}

    @r.heroku("make_ai_inference")
    async def make_ai_inference(c: Call) -> Any:
        """Heroku's server runs `ai:agents:call --optfile`: the same agent call, made with
        the model resource's own key, on the platform's inference server."""
        _inference(c, "make_ai_inference")
        if c.opt("output"):
            raise ToolError(
                "output names a file on the client's machine, which this server cannot "
                "write: leave it out, the answer comes back in the result."
            )
        opts = c.args.get("opts")
        if not isinstance(opts, dict):
            raise InvalidParams("opts (model, messages, ...) is required.")
        calls = c.services.inference_calls
        res = await c.db(calls.resource, c.actor, c.need("app"), c.opt("modelResource"))
        events = await calls.agent(res, opts)
        if c.flag("json"):
            return events
        return _agent_summary(res.attachment, events)


def _database(c: Call, need: str = "view") -> AddonView:
    """The Postgres add-on `database` names (config var, attachment, name, id, APP::DB);
    DATABASE_URL's by default, if the caller may do `need` to the app. Runs in a store
    thread."""
    app = c.app(need=need)
    ident = c.opt("database") or "DATABASE"
    try:
        addon = c.services.addons.resolve_addon(c.actor, ident.removesuffix("_URL"), app.id)
    except NotFound:
        raise NotFound(f"Couldn't find a Postgres database {ident!r} on {app.name}.") from None
    if c.services.addons.catalog.provider(addon.service.name).postgres() is None:
        raise InvalidParams(f"{addon.name} is not a Postgres database.")
    return addon


def _inference(c: Call, tool: str) -> Any:
    try:
        return c.services.addons.catalog.service(INFERENCE)
    except NotFound:
        raise NotBuilt(tool, "Managed Inference add-ons (heroku-inference)") from None


def _agent_summary(resource: str, events: list[Any]) -> dict[str, Any]:
    """The agent's answer (its last model message) and each tool run, in order."""
    steps: list[dict[str, Any]] = []
    answer = ""
    model = None
    for ev in events:
        message = ((ev.get("choices") or [{}])[0]).get("message") or {}
        model = ev.get("model", model)
        if ev.get("object") == "tool.completion":
            steps.append({"tool": message.get("name"), "result": message.get("content")})
        elif ev.get("object") == "chat.completion":
            for call in message.get("tool_calls") or []:
                fn = call.get("function") or {}
                steps.append({"call": fn.get("name"), "arguments": fn.get("arguments")})
            if message.get("content"):
                answer = message["content"]
    return {"resource": resource, "model": model, "answer": answer, "steps": steps}


def _addon_summary(a: AddonView) -> dict[str, Any]:
    return {
        "name": a.name,
        "app": a.app.name,
        "service": a.service.name,
        "plan": a.plan.name,
        "state": a.state,
    }


def _cell(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        text = value
    elif isinstance(value, decimal.Decimal | uuid.UUID):
        text = str(value)
    elif isinstance(value, dt.datetime | dt.date | dt.time):
        text = value.isoformat()
    elif isinstance(value, bytes | memoryview):
        text = "\\x" + bytes(value).hex()
    else:
        text = str(value)
    if isinstance(text, str) and len(text) > MAX_CELL:
        return text[:MAX_CELL] + "…"
    return text


def render_query(result: QueryResult) -> dict[str, Any]:
    out: dict[str, Any] = {"status": result.status}
    if result.columns:
        out["columns"] = list(result.columns)
        out["rows"] = [[_cell(v) for v in row] for row in result.rows]
        out["row_count"] = len(result.rows)
        if result.truncated:
            out["truncated"] = True
    return out
