"""Dynos as users act on them: list, restart, stop, run one-offs, run inside a dyno."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from spruce.dynos import DynoError, DynoInfo, DynoNotFound
from spruce.store.models import App, User

from .errors import InvalidParams, NotFound

if TYPE_CHECKING:
    from spruce.runtime.dynos import DynoRuntime

    from . import Services

ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Dynos:
    def __init__(self, services: Services, runtime: DynoRuntime) -> None:
        self.services = services
        self.runtime = runtime
        self.manager = runtime.manager

    def list(self, app: App) -> list[DynoInfo]:
        return sorted(self.manager.dynos(app.id), key=lambda d: (d.type, d.name))

    def get(self, app: App, identity: str) -> DynoInfo:
        for d in self.manager.dynos(app.id):
            if identity in (d.name, d.id):
                return d
        raise NotFound(f"Couldn't find that dyno ({identity}).")

    def _api_line(self, app: App, message: str) -> None:
        self.services.events.publish("api_log", app_id=app.id, message=message)

    async def restart(
        self, actor: User, app: App, process_type: str | None = None, dyno_name: str | None = None
    ) -> None:
        if process_type and process_type not in {
            f.type for f in self.services.formation.list(app.id)
        }:
            raise NotFound(f"Couldn't find that process type ({process_type}).")
        if dyno_name:
            self.get(app, dyno_name)
        try:
            await self.manager.restart(app.id, process_type=process_type, dyno_name=dyno_name)
        except DynoNotFound as e:
            raise NotFound(str(e)) from None
        what = dyno_name or process_type or "all dynos"
        self._api_line(app, f"Restart {what} by user {actor.email}")

    async def stop(
        self, actor: User, app: App, process_type: str | None = None, dyno_name: str | None = None
    ) -> None:
        if dyno_name:
            self.get(app, dyno_name)
        try:
            await self.manager.stop(app.id, process_type=process_type, dyno_name=dyno_name)
        except DynoNotFound as e:
            raise NotFound(str(e)) from None
        self._api_line(app, f"Stop {dyno_name or process_type} by user {actor.email}")

    async def run(
        self,
        actor: User,
        app: App,
        command: Any,
        env: Any = None,
        size: Any = None,
        attach: bool = False,
        tty: bool = False,
    ) -> DynoInfo:
        if not isinstance(command, str) or not command.strip():
            raise InvalidParams("A command is required to run a one-off dyno.")
        env = env or {}
        if not isinstance(env, dict) or not all(
            isinstance(k, str) and ENV_KEY.match(k) and isinstance(v, str | int | float)
            for k, v in env.items()
        ):
            raise InvalidParams("env must be an object of variable names to strings.")
        if size is not None and not isinstance(size, str):
            raise InvalidParams("size must be a dyno size name.")
        runtime = self.runtime.app_runtime(app.id)
        if runtime is None:
            raise InvalidParams(
                f"{app.name} has no release with code yet: deploy it first (git push)."
            )
        try:
            info = await self.manager.run_one_off(
                runtime, command, {k: str(v) for k, v in env.items()}, size, attach=attach, tty=tty
            )
        except DynoError as e:
            raise InvalidParams(str(e)) from None
        self._api_line(app, f"Starting process with command `{command}` by user {actor.email}")
        return info

    async def run_inside(self, actor: User, app: App, dyno_name: str, command: Any) -> DynoInfo:
        if not isinstance(command, str) or not command.strip():
            raise InvalidParams("A command is required.")
        self.get(app, dyno_name)
        try:
            info = await self.manager.run_inside(app.id, dyno_name, command)
        except DynoNotFound as e:
            raise NotFound(str(e)) from None
        except DynoError as e:
            raise InvalidParams(str(e)) from None
        self._api_line(app, f"Running `{command}` inside {dyno_name} by user {actor.email}")
        return info
