"""The pod watch and the log streams: threads around blocking client calls that hand every
event to the backend's event loop. Routing and dyno states follow this watch; no polling."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from spruce.dynos.backends.kubernetes.api import ApiException, Kube, Obj
from spruce.dynos.backends.kubernetes.manifests import CONTAINER

log = logging.getLogger(__name__)
SELECTOR = "app.kubernetes.io/managed-by=spruce"


class PodWatch:
    def __init__(
        self,
        kube: Kube,
        loop: asyncio.AbstractEventLoop,
        on_snapshot: Callable[[list[Obj]], None],
        on_event: Callable[[str, Obj], None],
        watch_timeout: int = 30,
    ) -> None:
        self._kube = kube.fresh()
        self._loop = loop
        self._on_snapshot = on_snapshot
        self._on_event = on_event
        self._timeout = watch_timeout
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="spruce-kube-watch", daemon=True)
        self.synced = asyncio.Event()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._kube.close()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _post(self, fn: Callable[..., None], *args: Any) -> None:
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(fn, *args)

    def _run(self) -> None:
        rv: str | None = None
        while not self._stopping.is_set():
            try:
                if rv is None:
                    listed = self._kube.list("Pod", SELECTOR)
                    rv = str(listed["metadata"]["resourceVersion"])
                    self._post(self._snapshot, list(listed.get("items") or []))
                for kind, obj in self._kube.watch_pods(
                    SELECTOR, rv, self._timeout, self._stopping.is_set
                ):
                    if kind == "ERROR":
                        if obj.get("code") == 410:  # too old: list again
                            rv = None
                        break
                    rv = str(obj.get("metadata", {}).get("resourceVersion") or rv)
                    if kind != "BOOKMARK":
                        self._post(self._on_event, kind, obj)
            except ApiException as e:
                if e.status == 410:
                    rv = None
                elif not self._stopping.is_set():
                    log.warning("pod watch: %s %s", e.status, e.reason)
                    time.sleep(1)
            except Exception as e:  # connection lost, apiserver restarting
                if not self._stopping.is_set():
                    log.warning("pod watch interrupted: %s", e)
                    time.sleep(1)

    def _snapshot(self, items: list[Obj]) -> None:
        self._on_snapshot(items)
        self.synced.set()


LOG_START_WAIT = 120.0
"""How long a log stream is asked for while its container is being created (seconds)."""


class LogFollower:
    """One thread per run of a dyno's container, feeding each line to `emit` on the loop."""

    def __init__(self, kube: Kube, loop: asyncio.AbstractEventLoop) -> None:
        self._kube = kube
        self._loop = loop
        self._running: dict[tuple[str, int], threading.Thread] = {}
        self._done: dict[tuple[str, int], asyncio.Event] = {}
        self._lines: dict[tuple[str, int], int] = {}

    def follow(
        self,
        key: tuple[str, int],
        pod_name: str,
        emit: Callable[[str], None],
        since_seconds: int | None = None,
        previous: bool = False,
    ) -> None:
        if key in self._running:
            return
        done = self._done[key] = asyncio.Event()
        self._lines[key] = 0

        def counted(line: str) -> None:
            self._lines[key] = self._lines.get(key, 0) + 1
            emit(line)

        thread = threading.Thread(
            target=self._run,
            args=(pod_name, counted, since_seconds, done, previous),
            name=f"spruce-kube-log-{pod_name}",
            daemon=True,
        )
        self._running[key] = thread
        thread.start()

    def following(self, key: tuple[str, int]) -> bool:
        return key in self._running

    def ended_empty(self, key: tuple[str, int]) -> bool:
        """That run's stream has ended without a line: opened before the container wrote
        (or while the kubelet could not read it yet, on a loaded node)."""
        done = self._done.get(key)
        return done is not None and done.is_set() and not self._lines.get(key)

    def reopen(self, key: tuple[str, int]) -> None:
        """Forget a run's ended stream so the next `follow` reads it again from the start."""
        if self.ended_empty(key):
            self._running.pop(key, None)
            self._done.pop(key, None)

    async def drained(self, key: tuple[str, int], timeout: float) -> None:
        """Wait until the stream of that run has ended (its last lines delivered)."""
        done = self._done.get(key)
        if done is not None:
            try:
                await asyncio.wait_for(done.wait(), timeout)
            except TimeoutError:
                pass

    def forget(self, uid: str) -> None:
        for key in [k for k in self._running if k[0] == uid]:
            self._running.pop(key, None)
            self._done.pop(key, None)
            self._lines.pop(key, None)

    def _run(
        self,
        pod_name: str,
        emit: Callable[[str], None],
        since_seconds: int | None,
        done: asyncio.Event,
        previous: bool,
    ) -> None:
        # A container still being created answers 400 (or the kubelet's not-ready line):
        # keep asking for as long as a loaded node may take to start it, not a fixed count.
        deadline = time.monotonic() + LOG_START_WAIT
        try:
            while True:
                last = time.monotonic() >= deadline
                try:
                    first = True
                    for line in self._kube.follow_log(pod_name, CONTAINER, since_seconds, previous):
                        if first and _kubelet_not_ready(line):
                            # The kubelet answers 200 with its error as the body when the
                            # container's log file is not there yet: not the dyno's output.
                            raise _LogNotReady(line)
                        first = False
                        self._loop.call_soon_threadsafe(emit, line)
                    return
                except _LogNotReady:
                    if last:
                        return
                    time.sleep(0.5)
                except ApiException as e:
                    # 400 while the container is still being created; 404 once it is gone.
                    if e.status == 404 or last:
                        return
                    time.sleep(0.5)
                except Exception as e:
                    log.debug("log stream of %s ended: %s", pod_name, e)
                    return
        finally:
            if not self._loop.is_closed():
                self._loop.call_soon_threadsafe(done.set)


class _LogNotReady(Exception):
    """The log stream's first line was the kubelet's error, not the container's output."""


_KUBELET_ERRORS = (
    'failed to try resolving symlinks in path "/var/log/pods/',
    "unable to retrieve container logs for ",
)


def _kubelet_not_ready(line: str) -> bool:
    return line.startswith(_KUBELET_ERRORS)
