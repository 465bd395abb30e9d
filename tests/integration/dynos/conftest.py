"""Fixtures for the dyno manager's integration tests: real processes, short timers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from spruce.certs.ca import InternalCA
from spruce.dynos import AppRuntime, DynoManager, DynoSettings
from spruce.events import PrintLogSink
from spruce.services.model import SlugArtifact

# Small programs a slug can hold; run with the system python (visible inside the sandbox).
WEB = r"""
import http.server, os, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.startswith("/read?"):
            path = self.path[6:]
            try:
                body = open(path, "rb").read()
                code = 200
            except OSError as e:
                body, code = repr(e).encode(), 403
        else:
            body = ("%s %s %s" % (os.environ["DYNO"], os.environ.get("RELEASE_MARK", ""),
                                  os.getcwd())).encode()
            code = 200
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
print("web listening", os.environ["PORT"], flush=True)
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"""

STUBBORN = r"""
import signal, time
signal.signal(signal.SIGTERM, lambda *a: print("ignoring SIGTERM", flush=True))
print("stubborn worker up", flush=True)
while True:
    time.sleep(1)
"""

HOG = r"""
import sys, time
step, total_steps, pause = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
chunks = []
for i in range(total_steps):
    chunks.append(bytearray(b"x" * (step * 1024 * 1024)))
    print("allocated", (i + 1) * step, "MB", flush=True)
    time.sleep(pause)
time.sleep(60)
"""


def make_slug(root: Path, name: str = "slug", extra: dict[str, str] | None = None) -> Path:
    slug = root / name
    (slug / ".profile.d").mkdir(parents=True)
    (slug / "web.py").write_text(WEB)
    (slug / "stubborn.py").write_text(STUBBORN)
    (slug / "hog.py").write_text(HOG)
    (slug / ".profile.d" / "mark.sh").write_text("export PROFILE_D_RAN=yes\n")
    for rel, text in (extra or {}).items():
        (slug / rel).write_text(text)
    return slug


def runtime(slug: Path, app_id: str = "app1", release: int = 1, **kw: object) -> AppRuntime:
    args: dict[str, object] = dict(
        app_id=app_id,
        app_name=f"{app_id}-name",
        release_id=f"rel-{app_id}-{release}",
        release_version=release,
        slug=SlugArtifact(f"slug-{slug.name}", slug),
        process_types={
            "web": "python3 web.py",
            "worker": "python3 stubborn.py",
            "crash": "echo boom; exit 3",
            "sleepy": "sleep 1000",
            "hog": "python3 hog.py 10 10 0.1",
        },
        formation={"web": (1, "standard-1x")},
        config={"RELEASE_MARK": f"r{release}"},
    )
    args.update(kw)
    return AppRuntime(**args)  # type: ignore[arg-type]


async def until(cond: Callable[[], object], timeout: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or cond}")
        await asyncio.sleep(0.05)


def fast_settings(**kw: object) -> DynoSettings:
    s = DynoSettings(
        boot_timeout=None,
        stop_grace=1.0,
        crash_restart_delays=(0.0,),
        crash_cooloff_base=0.6,
        crash_cooloff_max=1.2,
        crash_reset_after=600.0,
        memory_check_interval=0.1,
        r14_interval=0.5,
        boot_poll_interval=0.05,
        sleep_after=1800.0,
        sleep_check_interval=0.1,
        metrics_interval=0.3,
        rendezvous_timeout=5.0,
        preboot_extra_wait=5.0,
    )
    for k, v in kw.items():
        setattr(s, k, v)
    return s


class TimedSink(PrintLogSink):
    """Keeps lines and when they arrived (monotonic)."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def emit(
        self, app_id: str, source: str, process: str, message: str, ts: float | None = None
    ) -> None:
        super().emit(app_id, source, process, message, ts)
        self.times.append(time.monotonic())


class Harness:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.sink = TimedSink()
        self.changes: list[str] = []
        self.ca = InternalCA(tmp / "ca")
        self.managers: list[DynoManager] = []

    async def manager(
        self, on_change: Callable[[str], None] | None = None, **settings: object
    ) -> DynoManager:
        m = DynoManager(
            self.tmp / "home",
            self.sink,
            fast_settings(**settings),
            on_change or self.changes.append,
            ca=self.ca,
        )
        await m.start()
        self.managers.append(m)
        return m

    def lines(self, source: str | None = None, process: str | None = None) -> list[str]:
        return [
            msg
            for (_, src, proc, msg) in self.sink.lines
            if (source is None or src == source) and (process is None or proc == process)
        ]

    def has_line(self, text: str, process: str | None = None) -> bool:
        return any(text in line for line in self.lines(process=process))


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    h = Harness(tmp_path)
    yield h
    for m in h.managers:
        await m.shutdown()
