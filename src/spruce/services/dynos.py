"""Dynos as users act on them: list, restart, stop, run one-offs, run inside a dyno."""

from __future__ import annotations

import re

from .deployments import Deployments
from .errors import InvalidParams, NotFound
from .events import ApiActivity, EventBus
from .formation import Formations
from .model import DynoError, DynoInfo, DynoNotFound
from .ports import DynoBackend
from .views import AppView, UserView

ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
DYNO_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,63}\.[0-9]{1,6}$")
FIR_DYNO_NAME = re.compile(r"^[a-z0-9-]{1,63}-[0-9a-z]{10}-[0-9a-z]{5}$")  # web-848cd4f64d-pvpr2


def _is_dyno_name(identity: str) -> bool:
    return bool(DYNO_NAME.match(identity) or FIR_DYNO_NAME.match(identity))


class Dynos:
    def __init__(
        self,
        events: EventBus,
        backend: DynoBackend,
        deployments: Deployments,
        formation: Formations,
    ) -> None:
        self.events = events
        self.backend = backend
        self.deployments = deployments
        self.formation = formation

    def list(self, app: AppView) -> list[DynoInfo]:
        return sorted(self.backend.dynos(app.id), key=lambda d: (d.type, d.name))

    def get(self, app: AppView, identity: str) -> DynoInfo:
        for d in self.backend.dynos(app.id):
            if identity in (d.name, d.id):
                return d
        raise NotFound(f"Couldn't find that dyno ({identity}).")

    def _line(self, app: AppView, message: str) -> None:
        self.events.publish(ApiActivity(app.id, message))

    def _process_type(self, app: AppView, process_type: str) -> str:
        if process_type not in {f.type for f in self.formation.list(app.id)}:
            raise NotFound(f"Couldn't find that process type ({process_type}).")
        return process_type

    async def restart(
        self,
        actor: UserView,
        app: AppView,
        process_type: str | None = None,
        dyno_name: str | None = None,
    ) -> None:
        if process_type:
            self._process_type(app, process_type)
        if dyno_name:
            self.get(app, dyno_name)
        elif not any(process_type in (None, d.type) for d in self.list(app)):
            return  # nothing runs: like Heroku, restarting is then a no-op, not an error
        try:
            await self.backend.restart(app.id, process_type=process_type, dyno_name=dyno_name)
        except DynoNotFound as e:
            raise NotFound(str(e)) from None
        what = dyno_name or process_type or "all dynos"
        self._line(app, f"Restart {what} by user {actor.email}")

    async def restart_named(self, actor: UserView, app: AppView, identity: str) -> None:
        """DELETE /apps/{app}/dynos/{dyno}: a dyno name (web.1) or a process type (web)."""
        if _is_dyno_name(identity) or any(d.id == identity for d in self.list(app)):
            await self.restart(actor, app, dyno_name=self.get(app, identity).name)
        else:
            await self.restart(actor, app, process_type=identity)

    async def stop(
        self,
        actor: UserView,
        app: AppView,
        process_type: str | None = None,
        dyno_name: str | None = None,
    ) -> None:
        if dyno_name:
            dyno_name = self.get(app, dyno_name).name
        try:
            await self.backend.stop(app.id, process_type=process_type, dyno_name=dyno_name)
        except DynoNotFound as e:
            raise NotFound(str(e)) from None
        self._line(app, f"Stop {dyno_name or process_type} by user {actor.email}")

    async def stop_named(self, actor: UserView, app: AppView, identity: str) -> None:
        """POST /apps/{app}/dynos/{dyno}/actions/stop: a dyno name or id, or a process type."""
        if _is_dyno_name(identity) or any(d.id == identity for d in self.list(app)):
            await self.stop(actor, app, dyno_name=identity)
        else:
            await self.stop(actor, app, process_type=identity)

    async def run(
        self,
        actor: UserView,
        app: AppView,
        command: object,
        env: object = None,
        size: object = None,
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
        runtime = self.deployments.app_runtime(app.id)
        if runtime is None:
            raise InvalidParams(
                f"{app.name} has no release with code yet: deploy it first (git push)."
            )
        try:
            info = await self.backend.run_one_off(
                runtime, command, {k: str(v) for k, v in env.items()}, size, attach=attach, tty=tty
            )
        except DynoError as e:
            raise InvalidParams(str(e)) from None
        self._line(app, f"Starting process with command `{command}` by user {actor.email}")
        return info

    async def run_for_addon(
        self, app: AppView, command: str, env: dict[str, str], size: str, addon_name: str
    ) -> DynoInfo:
        """A one-off an add-on starts (an agent's tool), attached: its caller reads the
        output through the rendezvous. The add-on must be attached to `app` (the caller's
        check); the app's log says who started it."""
        runtime = self.deployments.app_runtime(app.id)
        if runtime is None:
            raise InvalidParams(
                f"{app.name} has no release with code yet: deploy it first (git push)."
            )
        try:
            info = await self.backend.run_one_off(runtime, command, env, size, attach=True)
        except DynoError as e:
            raise InvalidParams(str(e)) from None
        self._line(app, f"Starting process with command `{command}` by add-on {addon_name}")
        return info

    async def stop_for_addon(self, app: AppView, dyno_name: str) -> None:
        try:
            await self.backend.stop(app.id, dyno_name=dyno_name)
        except DynoNotFound:
            pass  # it ended meanwhile

    async def wait(self, app: AppView, dyno_name: str, timeout: float | None) -> int | None:
        try:
            return await self.backend.wait_one_off(app.id, dyno_name, timeout)
        except DynoNotFound as e:
            raise NotFound(str(e)) from None

    async def run_inside(
        self, actor: UserView, app: AppView, dyno_name: str, command: object
    ) -> DynoInfo:
        if not isinstance(command, str) or not command.strip():
            raise InvalidParams("A command is required.")
        self.get(app, dyno_name)
        try:
            info = await self.backend.run_inside(app.id, dyno_name, command)
        except DynoNotFound as e:
            raise NotFound(str(e)) from None
        except DynoError as e:
            raise InvalidParams(str(e)) from None
        self._line(app, f"Running `{command}` inside {dyno_name} by user {actor.email}")
        return info
