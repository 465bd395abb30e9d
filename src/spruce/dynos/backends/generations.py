"""One dyno backend over two: Fir apps' dynos on one (Kubernetes), Cedar apps' on the other
(the local dyno manager). Built once in the composition root for `spruce up --dyno-backend
kubernetes`; the services, the router's table and Eco wake-ups see one DynoBackend.

An app's generation never changes, so the backend that holds an app is known from the first
converge or one-off; before that (just after a restart), an app the Fir backend adopted from
the cluster is its, and every other app the local one's.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Protocol

from spruce.dynos.rendezvous import RendezvousServer
from spruce.services.model import AppRuntime, DynoInfo, DynoUsage, Generation, WebEndpoint
from spruce.services.ports import DynoBackend


class Backend(DynoBackend, Protocol):
    def apps(self) -> list[str]:
        """The apps this backend holds dynos (or adopted workloads) for."""
        ...


class Dispatcher(abc.ABC):
    """Sends each call to the backend that holds the app: the one `_choose` names for an
    app at its first converge or one-off; before that (just after a restart), one of the
    others that adopted it from its cluster, else the default."""

    def __init__(self, default: Backend, others: Sequence[Backend]) -> None:
        self._default = default
        self._others = list(others)
        self._where: dict[str, Backend] = {}

    @abc.abstractmethod
    def _choose(self, app: AppRuntime) -> Backend:
        """The backend an app's dynos belong on (by generation, by region)."""

    def _of(self, app: AppRuntime) -> Backend:
        backend = self._choose(app)
        self._where[app.app_id] = backend
        return backend

    def _for(self, app_id: str) -> Backend:
        found = self._where.get(app_id)
        if found is not None:
            return found
        for other in self._others:
            if app_id in other.apps():
                return other
        return self._default

    def apps(self) -> list[str]:
        return sorted({a for b in (self._default, *self._others) for a in b.apps()})

    async def converge(self, app: AppRuntime) -> None:
        await self._of(app).converge(app)

    async def remove_app(self, app_id: str) -> None:
        backend = self._for(app_id)
        self._where.pop(app_id, None)
        await backend.remove_app(app_id)

    def dynos(self, app_id: str) -> list[DynoInfo]:
        return self._for(app_id).dynos(app_id)

    def web_endpoints(self, app_id: str) -> list[WebEndpoint]:
        return self._for(app_id).web_endpoints(app_id)

    async def restart(
        self, app_id: str, process_type: str | None = None, dyno_name: str | None = None
    ) -> None:
        await self._for(app_id).restart(app_id, process_type, dyno_name)

    async def stop(
        self, app_id: str, process_type: str | None = None, dyno_name: str | None = None
    ) -> None:
        await self._for(app_id).stop(app_id, process_type, dyno_name)

    async def run_one_off(
        self,
        app: AppRuntime,
        command: str,
        env: dict[str, str] | None = None,
        size: str | None = None,
        attach: bool = False,
        tty: bool = False,
        process_type: str = "run",
    ) -> DynoInfo:
        return await self._of(app).run_one_off(
            app, command, env=env, size=size, attach=attach, tty=tty, process_type=process_type
        )

    async def wait_one_off(
        self, app_id: str, name: str, timeout: float | None = None
    ) -> int | None:
        return await self._for(app_id).wait_one_off(app_id, name, timeout)

    async def run_inside(self, app_id: str, dyno_name: str, command: str) -> DynoInfo:
        return await self._for(app_id).run_inside(app_id, dyno_name, command)

    def usage(self, app_id: str) -> list[DynoUsage]:
        return self._for(app_id).usage(app_id)

    def note_request(self, app_id: str) -> None:
        self._for(app_id).note_request(app_id)

    def wake(self, app_id: str) -> None:
        self._for(app_id).wake(app_id)


class GenerationBackends(Dispatcher):
    """Dispatches each call to the backend of the app's generation."""

    def __init__(
        self, local: Backend, fir: Backend, rendezvous: RendezvousServer | None = None
    ) -> None:
        """`rendezvous`: shared by both backends for `heroku run`; started and closed here."""
        super().__init__(local, [fir])
        self.local = local
        self.fir = fir
        self.rendezvous = rendezvous

    @property
    def warnings(self) -> Sequence[str]:
        return [*self.local.warnings, *self.fir.warnings]

    async def start(self) -> None:
        if self.rendezvous is not None:
            await self.rendezvous.start()
        await self.local.start()
        await self.fir.start()

    async def shutdown(self) -> None:
        """The Fir backend's workloads keep running on the cluster (adopted at the next
        start); the local dynos stop with the platform, as without this backend."""
        try:
            await self.fir.shutdown()
        finally:
            await self.local.shutdown()
            if self.rendezvous is not None:
                await self.rendezvous.close()

    def _choose(self, app: AppRuntime) -> Backend:
        return self.fir if app.generation == Generation.FIR else self.local
