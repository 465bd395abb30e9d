"""App setups: an app created from a source tarball and its app.json.

Order, as on Heroku: create the app, resolve env (given values, generators, defaults) into
config vars, set buildpacks, provision add-ons, build and release, scale the formation,
run `scripts.postdeploy` once in a one-off dyno. A failure marks the setup failed with the
reason; the app is kept so the user can look at it (Heroku does the same).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from spruce.store.db import Store
from spruce.store.models import App, AppSetup, Build

from .addons import Addons
from .appjson import AppJsonError, parse_app_json, resolve_env
from .apps import Apps
from .builds import Builds
from .dynos import Dynos
from .errors import InvalidParams, NotFound, ServiceError
from .events import AppDeleting, EventBus
from .formation import Formations
from .model import BuildStatus
from .ports import LogPort
from .releases import Releases
from .settings import PlatformAddresses
from .spaces import Placement, Spaces
from .views import AppSetupView, AppView, Ref, SetupBuild, UserView

log = logging.getLogger(__name__)
POSTDEPLOY_TIMEOUT = 3600.0


class Setups:
    def __init__(
        self,
        store: Store,
        events: EventBus,
        apps: Apps,
        releases: Releases,
        formation: Formations,
        builds: Builds,
        addons: Addons,
        dynos: Dynos,
        logs: LogPort,
        addresses: PlatformAddresses,
        spaces: Spaces | None = None,
    ) -> None:
        self.store = store
        self.spaces = spaces
        self.apps = apps
        self.releases = releases
        self.formation = formation
        self.builds = builds
        self.addons = addons
        self.dynos = dynos
        self.logs = logs
        self.addresses = addresses
        self._tasks: dict[str, asyncio.Task[None]] = {}
        events.subscribe(AppDeleting, self._on_deleting)

    def _on_deleting(self, event: AppDeleting) -> None:
        task = self._tasks.pop(event.app_id, None)
        if task is not None:
            task.cancel()

    async def stop(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    def get(self, actor: UserView, setup_id: str) -> AppSetupView:
        with self.store.session() as s:
            setup = s.get(AppSetup, setup_id)
            if setup is None:
                raise NotFound("Couldn't find that app setup.")
            app = s.get(App, setup.app_id) if setup.app_id else None
            if app is not None:
                self.apps.check_access(s, app, actor)
            build = s.get(Build, setup.build_id) if setup.build_id else None
            return AppSetupView(
                id=setup.id,
                app=Ref(app.id, app.name) if app else None,
                status=setup.status,
                failure_message=setup.failure_message,
                manifest_errors=tuple(setup.manifest_errors or ()),
                build=SetupBuild(
                    build.id, build.status, self.addresses.stream_url("builds", build.id)
                )
                if build
                else None,
                postdeploy_exit_code=setup.postdeploy_exit_code,
                postdeploy_output=setup.postdeploy_output,
                resolved_success_url=setup.resolved_success_url,
                created_at=setup.created_at,
                updated_at=setup.updated_at,
            )

    def create(self, actor: UserView, body: object) -> AppSetupView:
        if not isinstance(body, dict):
            raise InvalidParams("The body must be a JSON object.")
        blob = body.get("source_blob")
        if not isinstance(blob, dict) or not isinstance(blob.get("url"), str) or not blob["url"]:
            raise InvalidParams("source_blob.url is required.")
        app_spec = body.get("app") or {}
        overrides = body.get("overrides") or {}
        if not isinstance(app_spec, dict) or not isinstance(overrides, dict):
            raise InvalidParams("app and overrides must be objects.")
        env = overrides.get("env") or {}
        if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
            raise InvalidParams("overrides.env must map names to strings.")
        placement = self._placement(actor, app_spec)
        app = self.apps.create(
            actor,
            app_spec.get("name"),
            app_spec.get("region"),
            app_spec.get("stack"),
            placement=placement,
        )
        return self.begin(actor, app, dict(blob), dict(env))

    def begin(
        self,
        actor: UserView,
        app: AppView,
        blob: dict[str, Any],
        env: dict[str, str],
        environment: str | None = None,
    ) -> AppSetupView:
        """Set up an existing new app from the source at blob["url"]; with `environment`,
        that section of app.json's `environments` applies (review apps: "review")."""
        with self.store.session() as s:
            setup = AppSetup(app_id=app.id, status="pending")
            s.add(setup)
            s.flush()
            setup_id = setup.id
        task = asyncio.get_running_loop().create_task(
            self._run(actor, setup_id, app, blob, env, environment)
        )
        self._tasks[app.id] = task
        task.add_done_callback(lambda _: self._tasks.pop(app.id, None))
        return self.get(actor, setup_id)

    def _placement(self, actor: UserView, app_spec: dict[str, Any]) -> Placement | None:
        """Heroku's app.organization (or team) and app.space: the new app's team or space,
        by name or id."""

        def name_of(value: object) -> str | None:
            if isinstance(value, dict):
                value = value.get("name") or value.get("id")
            if value is None or value == "":
                return None
            if not isinstance(value, str):
                raise InvalidParams("app.organization and app.space name a team and a space.")
            return value

        team = name_of(app_spec.get("organization") or app_spec.get("team"))
        space = name_of(app_spec.get("space"))
        if not team and not space:
            return None
        if self.spaces is None:
            raise InvalidParams("Apps in teams and spaces cannot be set up here.")
        return self.spaces.placement(actor, team, space, None)

    def _update(self, setup_id: str, **fields: Any) -> None:
        with self.store.session() as s:
            row = s.get(AppSetup, setup_id)
            if row is not None:
                for k, v in fields.items():
                    setattr(row, k, v)

    async def _run(
        self,
        actor: UserView,
        setup_id: str,
        app: AppView,
        blob: dict[str, Any],
        env: dict[str, str],
        environment: str | None = None,
    ) -> None:
        try:
            async with self.builds.sources.fetched(str(blob["url"])) as src:
                manifest_path = src / "app.json"
                try:
                    manifest = parse_app_json(
                        manifest_path.read_text() if manifest_path.exists() else "{}",
                        environment,
                    )
                    config = resolve_env(manifest, env)
                except AppJsonError as e:
                    self._update(
                        setup_id,
                        status="failed",
                        manifest_errors=list(e.errors),
                        failure_message="app.json is not valid.",
                    )
                    return
                if config:
                    self.releases.update_config(actor, app.id, config)
                if manifest.buildpacks:
                    self.builds.set_buildpacks(app.id, manifest.buildpacks)
                for spec in manifest.addons:
                    await self.addons.create(actor, app.id, spec.plan, spec.as_name, spec.options)
                build = self.builds.create_pending(
                    actor, app.id, {"url": blob["url"], "version": blob.get("version")}
                )
                self._update(setup_id, build_id=build.id)
                result = await self.builds.run(actor, build, src)
            if result.status != BuildStatus.SUCCEEDED:
                self._update(
                    setup_id, status="failed", failure_message="The build failed; see its output."
                )
                return
            updates = [
                {"type": t, "quantity": f.quantity, **({"size": f.size} if f.size else {})}
                for t, f in manifest.formation.items()
            ]
            known = {f.type for f in self.formation.list(app.id)}
            updates = [u for u in updates if u["type"] in known]
            if updates:
                self.formation.update(actor, app.id, updates)
            script = manifest.scripts.get("postdeploy")
            if script:
                code, output = await self._postdeploy(actor, app, script)
                self._update(setup_id, postdeploy_exit_code=code, postdeploy_output=output)
                if code != 0:
                    self._update(
                        setup_id,
                        status="failed",
                        failure_message=f"The postdeploy script exited with status {code}.",
                    )
                    return
            self._update(setup_id, status="succeeded", resolved_success_url=manifest.success_url)
        except ServiceError as e:
            self._update(setup_id, status="failed", failure_message=e.message)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.exception("app setup %s failed", setup_id)
            self._update(
                setup_id, status="failed", failure_message=f"Internal error: {type(e).__name__}"
            )

    async def _postdeploy(
        self, actor: UserView, app: AppView, script: str
    ) -> tuple[int | None, str]:
        seq = self.logs.head(app.id)
        info = await self.dynos.run(actor, app, script)
        code = await self.dynos.wait(app, info.name, POSTDEPLOY_TIMEOUT)
        lines, _ = self.logs.lines_after(app.id, seq, source="app", dyno=info.name)
        return code, "\n".join(line.message for line in lines)
