"""App setups: an app created from a source tarball and its app.json.

Order, as on Heroku: create the app, resolve env (given values, generators, defaults) into
config vars, set buildpacks, provision add-ons, build and release, scale the formation,
run `scripts.postdeploy` once in a one-off dyno. A failure marks the setup failed with the
reason; the app is kept so the user can look at it (Heroku does the same).
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spruce.compile import AppJsonError, parse_app_json, resolve_env
from spruce.store.models import App, AppSetup, User

from .errors import InvalidParams, NotFound, ServiceError

if TYPE_CHECKING:
    from . import Services

log = logging.getLogger(__name__)
POSTDEPLOY_TIMEOUT = 3600.0


class Setups:
    def __init__(self, services: Services) -> None:
        self.services = services
        self._tasks: set[asyncio.Task[None]] = set()

    def get(self, actor: User, setup_id: str) -> AppSetup:
        with self.services.store.session() as s:
            setup = s.get(AppSetup, setup_id)
        if setup is None:
            raise NotFound("Couldn't find that app setup.")
        if setup.app_id:
            self.services.apps.get(actor, setup.app_id)
        return setup

    def create(
        self, actor: User, body: Any, local_source: Callable[[str], Path | None]
    ) -> tuple[AppSetup, App]:
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
        app = self.services.apps.create(
            actor, app_spec.get("name"), app_spec.get("region"), app_spec.get("stack")
        )
        with self.services.store.session() as s:
            setup = AppSetup(app_id=app.id, status="pending")
            s.add(setup)
        task = asyncio.create_task(self._run(actor, setup.id, app, blob, dict(env), local_source))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return setup, app

    def _update(self, setup_id: str, **fields: Any) -> None:
        with self.services.store.session() as s:
            row = s.get(AppSetup, setup_id)
            if row is not None:
                for k, v in fields.items():
                    setattr(row, k, v)

    async def _run(
        self,
        actor: User,
        setup_id: str,
        app: App,
        blob: dict[str, Any],
        env: dict[str, str],
        local_source: Callable[[str], Path | None],
    ) -> None:
        builds = self.services.builds
        assert builds is not None
        work = Path(tempfile.mkdtemp(prefix="setup-", dir=builds.home / "work"))
        try:
            src = await builds.fetch_source(blob["url"], work / "src", local_source)
            manifest_path = src / "app.json"
            try:
                manifest = parse_app_json(
                    manifest_path.read_text() if manifest_path.exists() else "{}"
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
                self.services.releases.update_config(actor, app.id, config)
            if manifest.buildpacks:
                builds.set_buildpacks(app.id, manifest.buildpacks)
            for spec in manifest.addons:
                if self.services.addons is None:
                    raise InvalidParams("Add-ons are not available on this platform.")
                await self.services.addons.create(actor, app, spec.plan, spec.as_name, spec.options)
            build = builds.create_pending(
                actor, app.id, {"url": blob["url"], "version": blob.get("version")}
            )
            self._update(setup_id, build_id=build.id)
            result = await builds.run(actor, build, src)
            if result.status != "succeeded":
                self._update(
                    setup_id, status="failed", failure_message="The build failed; see its output."
                )
                return
            updates = [
                {"type": t, "quantity": f.quantity, **({"size": f.size} if f.size else {})}
                for t, f in manifest.formation.items()
            ]
            known = {f.type for f in self.services.formation.list(app.id)}
            updates = [u for u in updates if u["type"] in known]
            if updates:
                self.services.formation.update(actor, app.id, updates)
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
        except Exception as e:
            log.exception("app setup %s failed", setup_id)
            self._update(
                setup_id, status="failed", failure_message=f"Internal error: {type(e).__name__}"
            )
        finally:
            shutil.rmtree(work, ignore_errors=True)

    async def _postdeploy(self, actor: User, app: App, script: str) -> tuple[int | None, str]:
        dynos = self.services.dynos
        router = self.services.logs.router
        seq = router.head(app.id)
        info = await dynos.run(actor, app, script)
        code = await dynos.manager.wait_one_off(app.id, info.name, POSTDEPLOY_TIMEOUT)
        lines, _ = router.lines_after(app.id, seq, source="app", dyno=info.name)
        return code, "\n".join(line.message for line in lines)
