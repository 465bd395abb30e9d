"""Apps, maintenance, logs, teams and spaces, pipelines, config vars, releases, domains."""

from __future__ import annotations

import datetime as dt
from typing import Any

from spruce.api import views
from spruce.services.errors import InvalidParams
from spruce.services.views import AppView

from .registry import Call, Registry, ToolError, string

LOG_LINES = 100  # what `heroku logs` prints without --num


def register(r: Registry) -> None:
    # -- apps -----------------------------------------------------------------------
    @r.heroku("list_apps", read_only=True, idempotent=True)
    async def list_apps(c: Call) -> Any:
        s, team, space = c.services, c.opt("team"), c.opt("space")
        if team and space:
            raise InvalidParams("Give team or space, not both.")

        def find() -> list[AppView]:
            if space:
                sp = s.spaces.get(c.actor, space)
                return s.apps.list_for(c.actor, space_id=sp.id)
            if team:
                return s.apps.list_for(c.actor, team_id=s.teams.get(c.actor, team).id)
            owned = not c.flag("all")
            return s.apps.list_for(c.actor, owned, personal=c.flag("personal"))

        return [_app_summary(a) for a in await c.db(find)]

    @r.heroku("get_app_info", read_only=True, idempotent=True)
    async def get_app_info(c: Call) -> Any:
        s = c.services

        def gather() -> tuple[AppView, dict[str, Any]]:
            app = c.app()  # in the same store thread as the rest: one hop for the call
            return app, {
                "app": views.app_json(app),
                "addons": [
                    {"name": a.name, "plan": a.plan.name, "state": a.state}
                    for a in s.addons.for_app(app.id)
                ],
                "collaborators": [c_.email for c_ in s.collaborators.of(app)],
                "domains": [d.hostname for d in s.domains.list(app.id)],
                "formation": [views.formation_json(f) for f in s.formation.list(app.id)],
                "config_var_names": sorted(s.releases.config(app.id)),
            }

        app, info = await c.db(gather)
        info["dynos"] = [
            {"name": d.name, "state": d.state, "size": d.size, "command": d.command}
            for d in s.dynos.list(app)
        ]
        return info

    @r.heroku("create_app")
    async def create_app(c: Call) -> Any:
        s = c.services

        def create() -> AppView:
            where = s.spaces.placement(c.actor, c.opt("team"), c.opt("space"), None)
            return s.apps.create(c.actor, c.opt("app"), c.opt("region"), placement=where)

        app = await c.db(create)
        return _app_summary(app) | {"git_url": app.git_url}

    @r.heroku("rename_app", idempotent=True)
    async def rename_app(c: Call) -> Any:
        app = await c.db(c.services.apps.update, c.actor, c.need("app"), c.need("newName"))
        return _app_summary(app) | {"git_url": app.git_url}

    @r.heroku("maintenance_on", idempotent=True)
    async def maintenance_on(c: Call) -> Any:
        app = await c.db(c.services.apps.update, c.actor, c.need("app"), None, True)
        return {"app": app.name, "maintenance": app.maintenance}

    @r.heroku("maintenance_off", idempotent=True)
    async def maintenance_off(c: Call) -> Any:
        app = await c.db(c.services.apps.update, c.actor, c.need("app"), None, False)
        return {"app": app.name, "maintenance": app.maintenance}

    @r.heroku("get_app_logs", read_only=True)
    async def get_app_logs(c: Call) -> Any:
        dyno, process_type = c.opt("dynoName"), c.opt("processType")
        if dyno and process_type:
            raise InvalidParams("Give dynoName or processType, not both.")
        app = await c.target()
        lines = c.services.logs.recent(app.id, LOG_LINES, c.opt("source"), dyno or process_type)
        text = [display(ln.ts, ln.source, ln.process, ln.message) for ln in lines]
        # Hosts that ask for progress see each line as it is read (logs as a stream).
        for i, line in enumerate(text, 1):
            await c.progress(i, len(text), line)
        return "\n".join(text) if text else f"No log lines for {app.name} yet."

    # -- teams and spaces (pipelines: pipeline_tools.py) --------------------------------
    # Spruce answers JSON either way: `json` (text or JSON in Heroku's) changes nothing.
    @r.heroku("list_teams", read_only=True, idempotent=True)
    async def list_teams(c: Call) -> Any:
        teams = await c.db(c.services.teams.list_for, c.actor)
        return [
            {"name": t.name, "id": t.id, "role": t.role, "created_at": views.ts(t.created_at)}
            for t in teams
        ]

    @r.heroku("list_private_spaces", read_only=True, idempotent=True)
    async def list_private_spaces(c: Call) -> Any:
        spaces = await c.db(c.services.spaces.list_for, c.actor)
        return [
            {
                "name": sp.name,
                "id": sp.id,
                "team": sp.team.name,
                "region": sp.region,
                "generation": sp.generation,
                "state": sp.state,
                "shield": sp.shield,
                "cidr": sp.cidr,
                "data_cidr": sp.data_cidr,
                "created_at": views.ts(sp.created_at),
            }
            for sp in spaces
        ]

    # -- Spruce's own: config vars, releases, rollback, domains, destroy ---------------------
    app_arg = {"app": string("App name.")}

    @r.own(
        "config_get",
        "Config vars of an app (names and values: they are secrets, show them sparingly).",
        app_arg | {"names": {"type": "array", "items": {"type": "string"}}},
        ("app",),
        read_only=True,
        idempotent=True,
    )
    async def config_get(c: Call) -> Any:
        app = await c.target(need="deploy")
        config = await c.db(c.services.releases.config, app.id)
        names = c.args.get("names")
        if names:
            return {k: config.get(k) for k in names}
        return config

    @r.own(
        "config_set",
        "Set config vars on an app (makes a release and restarts its dynos).",
        app_arg | {"vars": {"type": "object", "additionalProperties": {"type": "string"}}},
        ("app", "vars"),
        idempotent=True,
    )
    async def config_set(c: Call) -> Any:
        app = await c.target(need="deploy")
        values = c.args.get("vars")
        if not isinstance(values, dict) or not values:
            raise InvalidParams("vars must name at least one config var.")
        _, release = await c.db(c.services.releases.update_config, c.actor, app.id, values)
        return {"set": sorted(values), "release": release.version if release else None}

    @r.own(
        "config_unset",
        "Remove config vars from an app (makes a release and restarts its dynos).",
        app_arg | {"names": {"type": "array", "items": {"type": "string"}, "minItems": 1}},
        ("app", "names"),
        destructive=True,
        idempotent=True,
    )
    async def config_unset(c: Call) -> Any:
        app = await c.target(need="deploy")
        names = c.args.get("names") or []
        patch = dict.fromkeys(names)
        _, release = await c.db(c.services.releases.update_config, c.actor, app.id, patch)
        return {"unset": sorted(names), "release": release.version if release else None}

    @r.own(
        "list_releases",
        "An app's releases, newest first: version, description, status, who and when.",
        app_arg,
        ("app",),
        read_only=True,
        idempotent=True,
    )
    async def list_releases(c: Call) -> Any:
        app = await c.target(need="deploy")
        rels = await c.db(c.services.releases.list, app.id)
        return [
            {
                "version": rel.version,
                "description": rel.description,
                "status": rel.status,
                "current": rel.current,
                "user": rel.user_email,
                "created_at": views.ts(rel.created_at),
            }
            for rel in reversed(rels)
        ]

    @r.own(
        "rollback",
        "Roll an app back to an earlier release (v12, or its id); the previous one by default.",
        app_arg
        | {
            "release": string("Release to roll back to (e.g. v12). Default: the previous one."),
            "confirm": string("The app's name, to confirm."),
        },
        ("app", "confirm"),
        destructive=True,
    )
    async def rollback(c: Call) -> Any:
        app = await c.target(confirm=True, need="deploy")
        target = c.opt("release")
        if target is None:
            rels = await c.db(c.services.releases.list, app.id)
            current = next((x for x in reversed(rels) if x.current), None)
            older = [x for x in rels if current and x.version < current.version]
            if not older:
                raise ToolError(f"{app.name} has no earlier release to roll back to.")
            target = str(older[-1].version)
        rel = await c.db(c.services.releases.rollback, c.actor, app.id, target.lstrip("v"))
        return {"release": rel.version, "description": rel.description, "status": rel.status}

    @r.own(
        "list_domains",
        "An app's domains: its default hostname and custom ones, with DNS targets and ACM status.",
        app_arg,
        ("app",),
        read_only=True,
        idempotent=True,
    )
    async def list_domains(c: Call) -> Any:
        app = await c.target()
        return [views.domain_json(d) for d in await c.db(c.services.domains.list, app.id)]

    @r.own(
        "add_domain",
        "Add a custom domain to an app; answers the DNS target to point a CNAME at.",
        app_arg | {"hostname": string("e.g. www.example.com")},
        ("app", "hostname"),
    )
    async def add_domain(c: Call) -> Any:
        app = await c.target(need="manage")
        d = await c.db(c.services.domains.add, c.actor, app.id, c.need("hostname"))
        return views.domain_json(d)

    @r.own(
        "destroy_app",
        "Destroy an app for good: its dynos, releases, add-ons and config.",
        app_arg | {"confirm": string("The app's name, to confirm.")},
        ("app", "confirm"),
        destructive=True,
    )
    async def destroy_app(c: Call) -> Any:
        app = await c.target(owner_only=True, confirm=True)
        await c.services.delete_app(c.actor, app.id)
        return {"destroyed": app.name}


def _app_summary(app: AppView) -> dict[str, Any]:
    return {
        "name": app.name,
        "id": app.id,
        "owner": app.owner_email,
        "team": app.team.name if app.team else None,
        "space": app.space.name if app.space else None,
        "region": app.region,
        "stack": app.stack,
        "generation": app.generation,
        "web_url": app.web_url,
        "maintenance": app.maintenance,
        "released_at": views.ts(app.released_at),
    }


def display(ts: float, source: str, process: str, message: str) -> str:
    """Heroku's log display format: `<timestamp> <source>[<process>]: <message>`."""
    when = dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="microseconds")
    return f"{when} {source}[{process}]: {message}"
