"""`heroku run` and `run:inside` on Kubernetes: the rendezvous client meets the pod through
the apiserver's attach (or exec) stream, a websocket. An attached one-off's command waits for
one line on stdin before it starts, so that no output is lost before the attach: the backend
sends that line once attached."""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import kubernetes.stream

from spruce.dynos.backends.kubernetes.api import Kube
from spruce.dynos.backends.kubernetes.manifests import CONTAINER
from spruce.dynos.rendezvous import EOT, Attachment, exit_status_line

STDOUT, STDERR = 1, 2
_stream: Any = kubernetes.stream.stream


def _open(kube: Kube, pod: str, tty: bool) -> Any:
    return _stream(
        kube.core.connect_get_namespaced_pod_attach,
        pod,
        kube.ns,
        container=CONTAINER,
        stdin=True,
        stdout=True,
        stderr=not tty,
        tty=tty,
        binary=True,
        _preload_content=False,
    )


def _exec(kube: Kube, pod: str, command: list[str]) -> Any:
    return _stream(
        kube.core.connect_get_namespaced_pod_exec,
        pod,
        kube.ns,
        container=CONTAINER,
        command=command,
        stdin=True,
        stdout=True,
        stderr=True,
        tty=False,
        binary=True,
        _preload_content=False,
    )


def _pump(ws: Any, loop: asyncio.AbstractEventLoop, out: Callable[[bytes], None],
          inbox: queue.Queue[bytes | None], go: bytes) -> None:  # fmt: skip
    """Thread: websocket frames to the client, client bytes to the pod, until it closes."""
    if go:
        ws.write_stdin(go)
    try:
        while ws.is_open():
            ws.update(timeout=0.1)
            for channel in (STDOUT, STDERR):
                data = ws.read_channel(channel)
                if data:
                    loop.call_soon_threadsafe(out, data)
            while True:
                try:
                    chunk = inbox.get_nowait()
                except queue.Empty:
                    break
                if chunk is None:
                    # End of input: only v5 attach (Kubernetes 1.29+) can close stdin.
                    with contextlib.suppress(Exception):
                        ws.close_channel(0)
                    continue
                ws.write_stdin(chunk)
    except Exception:
        pass
    finally:
        with contextlib.suppress(Exception):
            ws.close()


async def session(
    kube: Kube,
    pod: str,
    att: Attachment,
    tty: bool,
    exit_status: Callable[[], Awaitable[int | None]],
) -> None:
    """Attach the client to a one-off's pod; then send its exit status and close."""
    ws = await asyncio.to_thread(_open, kube, pod, tty)
    await _relay(ws, pod, att, tty, b"\n", exit_status)


async def exec_session(kube: Kube, pod: str, command: list[str], att: Attachment) -> None:
    """Run a command inside a running dyno's container for the client (`run:inside`)."""
    ws = await asyncio.to_thread(_exec, kube, pod, command)

    async def status() -> int | None:
        code: Any = ws.returncode
        return int(code) if code is not None else None

    await _relay(ws, pod, att, False, b"", status)


async def _relay(
    ws: Any,
    pod: str,
    att: Attachment,
    tty: bool,
    go: bytes,
    exit_status: Callable[[], Awaitable[int | None]],
) -> None:
    loop = asyncio.get_running_loop()
    inbox: queue.Queue[bytes | None] = queue.Queue()
    pump = threading.Thread(
        target=_pump, args=(ws, loop, att.writer.write, inbox, go), name=f"attach-{pod}",
        daemon=True,
    )  # fmt: skip
    pump.start()

    async def client_to_pod() -> None:
        data = att.pending
        while True:
            if data:
                eot = -1 if tty else data.find(EOT)
                inbox.put(data if eot < 0 else data[:eot])
                if eot >= 0:
                    inbox.put(None)
            data = await att.reader.read(4096)
            if not data:
                return

    inbound = asyncio.create_task(client_to_pod())
    try:
        await asyncio.to_thread(pump.join)
        status = await exit_status()
        with contextlib.suppress(Exception):
            await att.writer.drain()
            if status is not None:
                att.writer.write(exit_status_line(status))
            await asyncio.wait_for(att.writer.drain(), 2)
    finally:
        inbound.cancel()
        att.done.set()
