"""Dynos (ps_*), one-off runs with output and exit code, deploys and builds."""

from __future__ import annotations

import asyncio
import re
import shlex
from pathlib import Path
from typing import Any

from spruce.api import views
from spruce.services.appjson import AppJsonError, parse_app_json
from spruce.services.errors import InvalidParams
from spruce.services.views import AppView

from .app_tools import display
from .registry import Call, NotBuilt, Registry, ToolError, string

SOURCE_PATH = re.compile(r"^[a-zA-Z0-9._-]+(/[a-zA-Z0-9._-]+)*$")
MAX_TTL = 3600.0
DEPLOY_TIMEOUT = 900.0
POLL = 0.25
OUTPUT_TAIL = 60  # build output lines handed back after a deploy


def register(r: Registry) -> None:
    @r.heroku("ps_list", read_only=True, idempotent=True)
    async def ps_list(c: Call) -> Any:
        app = await c.target()
        return [views.dyno_json(d, app) for d in c.services.dynos.list(app)]

    @r.heroku("ps_scale", idempotent=True)
    async def ps_scale(c: Call) -> Any:
        s = c.services
        app = await c.target(need="operate")
        spec = c.opt("dyno")
        if spec is None:
            formation = await c.db(s.formation.list, app.id)
        else:
            formation = await c.db(s.formation.scale, c.actor, app.id, spec)
        return [_formation_line(f) for f in formation]

    @r.heroku("ps_restart", idempotent=True)
    async def ps_restart(c: Call) -> Any:
        app = await c.target(need="operate")
        dyno, ptype = c.opt("dyno-name"), c.opt("process-type")
        await c.services.dynos.restart(c.actor, app, process_type=ptype, dyno_name=dyno)
        return {"restarted": dyno or ptype or "all dynos", "app": app.name}

    @r.heroku("deploy_one_off_dyno")
    async def deploy_one_off_dyno(c: Call) -> Any:
        app = await c.target("name", need="deploy")
        command = staged_command(c.need("command"), c.args.get("sources") or [])
        ttl = c.seconds("timeToLive", MAX_TTL, MAX_TTL)
        return await run_one_off(c, app, command, c.args.get("env"), c.opt("size"), ttl)

    @r.own(
        "run_command",
        "Run a command in a one-off dyno of an app (its release's code and config) and "
        "answer its output and exit code.",
        {
            "app": string("App name."),
            "command": string("Shell command, e.g. `python manage.py migrate`."),
            "size": string("Dyno size; default: the app's default."),
            "timeout": {"type": "number", "description": "Seconds before the dyno is stopped."},
        },
        ("app", "command"),
    )
    async def run_command(c: Call) -> Any:
        app = await c.target(need="deploy")
        timeout = c.seconds("timeout", 300, MAX_TTL)
        return await run_one_off(c, app, c.need("command"), None, c.opt("size"), timeout)

    @r.heroku("deploy_to_heroku")
    async def deploy_to_heroku(c: Call) -> Any:
        if c.args.get("internalRouting"):
            raise NotBuilt("deploy_to_heroku", "Internally routed apps (reachable only in a space)")
        try:
            parse_app_json(c.need("appJson"))
        except AppJsonError as e:
            raise ToolError(
                "appJson is not a valid app.json:\n  " + "\n  ".join(e.errors)
            ) from None
        tarball = c.opt("tarballUri")
        if tarball is None:
            raise ToolError(
                f"rootUri ({c.opt('rootUri')}) is a folder on the client's machine, which this "
                "server cannot read: send tarballUri (a source tarball's URL, e.g. from POST "
                "/sources), or connect with `spruce mcp`, which packs and uploads the folder."
            )
        env = c.args.get("env") or {}
        if not isinstance(env, dict):
            raise InvalidParams("env must map names to values.")
        env = {str(k): str(v) for k, v in env.items()}
        where = {"organization": c.opt("teamId"), "space": c.opt("spaceId")}
        return await deploy(c, c.need("name"), tarball, env, where)

    @r.own(
        "list_builds",
        "An app's builds, newest first, with their status.",
        {"app": string("App name.")},
        ("app",),
        read_only=True,
        idempotent=True,
    )
    async def list_builds(c: Call) -> Any:
        app = await c.target(need="deploy")
        builds = await c.db(c.services.builds.list, app.id)
        return [
            {
                "id": b.id,
                "status": b.status,
                "user": b.user_email,
                "created_at": views.ts(b.created_at),
                "release_id": b.release_id,
            }
            for b in reversed(builds)
        ]

    @r.own(
        "get_build_output",
        "The output of one of an app's builds (the latest by default).",
        {"app": string("App name."), "build": string("Build id; default: the latest.")},
        ("app",),
        read_only=True,
        idempotent=True,
    )
    async def get_build_output(c: Call) -> Any:
        s = c.services
        app = await c.target(need="deploy")
        build_id = c.opt("build")
        if build_id is None:
            builds = await c.db(s.builds.list, app.id)
            if not builds:
                raise ToolError(f"{app.name} has no builds yet.")
            build_id = builds[-1].id
        build = await c.db(s.builds.get, app.id, build_id)
        path, _ = await c.db(s.builds.output, build.id)
        return {"id": build.id, "status": build.status, "output": _read(path)}


def _formation_line(f: Any) -> str:
    return f"{f.type}={f.quantity}:{views.display_size(f.size)}"


def staged_command(command: str, sources: object) -> str:
    """Heroku's deploy_one_off_dyno: write `sources` into a fresh temporary folder, run
    the command there."""
    if not isinstance(sources, list):
        raise InvalidParams("sources must be a list of {relativePath, contents}.")
    if not sources:
        return command
    steps = ['cd "$(mktemp -d)"']
    for src in sources:
        if not isinstance(src, dict):
            raise InvalidParams("each source needs relativePath and contents.")
        path, contents = src.get("relativePath"), src.get("contents")
        if not isinstance(path, str) or not isinstance(contents, str):
            raise InvalidParams("each source needs relativePath and contents (strings).")
        if len(path) > 512 or not SOURCE_PATH.match(path) or ".." in path.split("/"):
            raise InvalidParams(
                f"relativePath {path!r} must be relative, with segments of letters, digits, "
                "'.', '_' or '-'."
            )
        parent = str(Path(path).parent)
        if parent != ".":
            steps.append(f"mkdir -p {shlex.quote(parent)}")
        steps.append(f"printf '%s' {shlex.quote(contents)} > {shlex.quote(path)}")
    return " && ".join(steps) + " && " + command


async def run_one_off(
    c: Call, app: AppView, command: str, env: object, size: str | None, ttl: float
) -> dict[str, Any]:
    """A detached one-off: its lines come back as progress while it runs, then its whole
    output and exit code."""
    s = c.services
    mark = s.logs.mark(app.id)
    info = await s.dynos.run(c.actor, app, command, env, size)
    waiter = asyncio.ensure_future(s.dynos.wait(app, info.name, ttl))
    lines: list[str] = []
    try:
        while True:
            done, _ = await asyncio.wait({waiter}, timeout=POLL)
            new, mark = s.logs.since(app.id, mark, "app", info.name)
            for ln in new:
                lines.append(ln.message)
                await c.progress(len(lines), None, ln.message)
            if done:
                break
    finally:
        if not waiter.done():
            waiter.cancel()
    code = waiter.result()
    await asyncio.sleep(0.05)  # the last lines of a fast command may still be on their way
    new, _ = s.logs.since(app.id, mark, "app", info.name)
    lines.extend(ln.message for ln in new)
    if code is None:
        try:
            await s.dynos.stop(c.actor, app, dyno_name=info.name)
        except Exception:  # noqa: BLE001 - it may have ended meanwhile
            pass
    return {
        "dyno": info.name,
        "exit_code": code,
        "timed_out": code is None,
        "output": "\n".join(lines),
    }


async def deploy(
    c: Call, name: str, tarball: str, env: dict[str, str], where: dict[str, str | None]
) -> dict[str, Any]:
    """Build `tarball` on the app `name`; an app that does not exist yet is set up from
    it (app.json: config, add-ons, formation, postdeploy), as Heroku's tool does, in the
    team or space `where` names."""
    s = c.services
    try:
        app: AppView | None = await c.db(s.apps.get, c.actor, name, False, "deploy")
    except Exception as e:  # noqa: BLE001 - NotFound: a new app; anything else re-raised
        if getattr(e, "status", None) != 404:
            raise
        app = None
    if app is None:
        spec: dict[str, Any] = {"name": name}
        spec.update((k, v) for k, v in where.items() if v)
        body = {"app": spec, "source_blob": {"url": tarball}, "overrides": {"env": env}}
        setup = s.setups.create(c.actor, body)  # on the loop: it starts the setup's task
        sent = [0]
        while setup.status == "pending":
            await asyncio.sleep(POLL * 2)
            setup = await c.db(s.setups.get, c.actor, setup.id)
            if setup.build is not None:
                await _progress_output(c, setup.build.id, sent)
        app = await c.db(s.apps.get, c.actor, name)
        out = await _build_tail(c, setup.build.id if setup.build else None)
        result = {
            "app": app.name,
            "created": True,
            "status": setup.status,
            "web_url": app.web_url,
            "git_url": app.git_url,
            "build_output": out,
        }
        if setup.failure_message:
            result["failure"] = setup.failure_message
        if setup.manifest_errors:
            result["app_json_errors"] = list(setup.manifest_errors)
        if setup.status == "failed":
            raise ToolError(_deploy_failure(result))
        return result
    for ref, given, what in (
        (app.team, where["organization"], "team"),
        (app.space, where["space"], "space"),
    ):
        if given and (ref is None or given not in (ref.id, ref.name)):
            raise ToolError(f"{app.name} already exists and is not in the {what} {given}.")
    if env:
        await c.db(s.releases.update_config, c.actor, app.id, env)
    build = await c.db(s.builds.create_pending, c.actor, app.id, {"url": tarball}, None)
    s.builds.submit(c.actor, build)
    waited, sent = 0.0, [0]
    while build.status == "pending" and waited < DEPLOY_TIMEOUT:
        await asyncio.sleep(POLL * 2)
        waited += POLL * 2
        build = await c.db(s.builds.get, app.id, build.id)
        await _progress_output(c, build.id, sent)
    result = {
        "app": app.name,
        "created": False,
        "status": build.status,
        "web_url": app.web_url,
        "git_url": app.git_url,
        "build_output": await _build_tail(c, build.id),
    }
    if build.status != "succeeded":
        raise ToolError(_deploy_failure(result))
    return result


def _deploy_failure(result: dict[str, Any]) -> str:
    why = result.get("failure") or f"the build {result['status']}"
    errors = "\n".join(result.get("app_json_errors") or [])
    return f"Deploying {result['app']} failed: {why}.\n{errors}\n{result['build_output']}".strip()


async def _progress_output(c: Call, build_id: str, sent: list[int]) -> None:
    """New build output lines as progress notifications (for hosts that asked);
    `sent[0]` counts the lines already sent."""
    path, _ = await c.db(c.services.builds.output, build_id)
    lines = _read(path).splitlines()
    for i in range(sent[0], len(lines)):
        await c.progress(i + 1, None, lines[i])
    sent[0] = max(sent[0], len(lines))


async def _build_tail(c: Call, build_id: str | None) -> str:
    if build_id is None:
        return ""
    path, _ = await c.db(c.services.builds.output, build_id)
    return "\n".join(_read(path).splitlines()[-OUTPUT_TAIL:])


def _read(path: Path | None) -> str:
    if path is None or not path.exists():
        return ""
    return path.read_text(errors="replace")


__all__ = ["display", "register", "staged_command"]
