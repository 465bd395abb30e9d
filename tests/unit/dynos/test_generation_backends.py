"""GenerationBackends: Fir apps to one backend, Cedar apps to the other, by the app's
generation, and apps adopted from the cluster before any converge to the Fir one."""

from __future__ import annotations

from typing import Any

from spruce.dynos.backends.generations import GenerationBackends
from spruce.services.model import AppRuntime, DynoInfo, Generation, WebEndpoint


class Recording:
    def __init__(self, name: str, adopted: tuple[str, ...] = ()) -> None:
        self.name = name
        self.calls: list[tuple[str, Any]] = []
        self.held = set(adopted)
        self.warnings = [f"{name} warning"]

    async def start(self) -> None:
        self.calls.append(("start", None))

    async def shutdown(self) -> None:
        self.calls.append(("shutdown", None))

    def apps(self) -> list[str]:
        return sorted(self.held)

    async def converge(self, app: AppRuntime) -> None:
        self.held.add(app.app_id)
        self.calls.append(("converge", app.app_id))

    async def remove_app(self, app_id: str) -> None:
        self.held.discard(app_id)
        self.calls.append(("remove_app", app_id))

    def dynos(self, app_id: str) -> list[DynoInfo]:
        self.calls.append(("dynos", app_id))
        return []

    def web_endpoints(self, app_id: str) -> list[WebEndpoint]:
        self.calls.append(("web_endpoints", app_id))
        return [WebEndpoint("web.1", self.name, "127.0.0.1", 1)]

    async def restart(self, app_id: str, process_type: str | None = None,
                      dyno_name: str | None = None) -> None:  # fmt: skip
        self.calls.append(("restart", app_id))

    async def stop(self, app_id: str, process_type: str | None = None,
                   dyno_name: str | None = None) -> None:  # fmt: skip
        self.calls.append(("stop", app_id))

    async def run_one_off(self, app: AppRuntime, command: str, **kw: Any) -> DynoInfo:
        self.calls.append(("run_one_off", (app.app_id, command, kw)))
        return DynoInfo("id", app.app_id, "run.1", "run", "starting", "Basic", command,
                        app.release_id, 1, "", None, None, 0.0, 0.0)  # fmt: skip

    async def wait_one_off(self, app_id: str, name: str, timeout: float | None = None) -> int:
        self.calls.append(("wait_one_off", app_id))
        return 0

    async def run_inside(self, app_id: str, dyno_name: str, command: str) -> DynoInfo:
        raise AssertionError("not used here")

    def note_request(self, app_id: str) -> None:
        self.calls.append(("note_request", app_id))

    def wake(self, app_id: str) -> None:
        self.calls.append(("wake", app_id))


def app(app_id: str, generation: str) -> AppRuntime:
    return AppRuntime(app_id, app_id, "r1", 1, None, {"web": "x"}, {"web": (1, "basic")},
                      generation=generation)  # fmt: skip


async def test_each_app_goes_to_the_backend_of_its_generation() -> None:
    local, fir = Recording("local"), Recording("fir", adopted=("adopted",))
    both = GenerationBackends(local, fir)
    await both.start()
    assert both.warnings == ["local warning", "fir warning"]
    # Just after a restart: what the cluster holds is the Fir backend's, the rest local.
    assert both.web_endpoints("adopted")[0].dyno_id == "fir"
    assert both.web_endpoints("cedar-app")[0].dyno_id == "local"

    await both.converge(app("cedar-app", Generation.CEDAR))
    await both.converge(app("fir-app", Generation.FIR))
    await both.run_one_off(app("fir-app", Generation.FIR), "bash", attach=True)
    both.note_request("fir-app")
    both.wake("fir-app")
    await both.restart("cedar-app")
    assert await both.wait_one_off("fir-app", "run.1") == 0
    assert both.apps() == ["adopted", "cedar-app", "fir-app"]
    assert [c for c, _ in local.calls] == ["start", "web_endpoints", "converge", "restart"]
    assert fir.calls[1:] == [
        ("web_endpoints", "adopted"),
        ("converge", "fir-app"),
        ("run_one_off", ("fir-app", "bash", {"env": None, "size": None, "attach": True,
                                             "tty": False, "process_type": "run"})),
        ("note_request", "fir-app"),
        ("wake", "fir-app"),
        ("wait_one_off", "fir-app"),
    ]  # fmt: skip

    await both.remove_app("fir-app")
    assert fir.calls[-1] == ("remove_app", "fir-app") and "fir-app" not in both.apps()
    await both.shutdown()
    assert fir.calls[-1] == ("shutdown", None) and local.calls[-1] == ("shutdown", None)
