"""The Kubernetes tier: one real v1.20.2 cluster (two nodes) for the whole session.

Run it on its own: `.venv/bin/python -m pytest -q -p no:cacheprovider tests/kube`. The
cluster binaries are built once per machine (scripts/kube/build, about 8 minutes); a warm
cache starts the cluster in about 20 seconds. Without root, or with a cold cache whose build
fails, the tests that need the cluster skip and say why; SPRUCE_KUBE_REQUIRED=1 makes that
a failure instead.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from spruce.dynos.backends.kubernetes import HostSlugImages, KubernetesBackend, KubernetesSettings
from spruce.dynos.model import AppRuntime, DynoSettings
from spruce.events import PrintLogSink
from spruce.kube import BUSYBOX_IMAGE, Cluster, ClusterConfig, ClusterUnavailable
from spruce.services.model import DynoSample, SlugArtifact

from .kubed import REGION, Kubed

SCHEMA = "1.30"  # every manifest the backend writes is checked against current Kubernetes


@pytest.fixture(scope="session")
def kube_cluster() -> Iterator[Cluster]:
    cluster = Cluster(
        ClusterConfig(nodes=2, node_labels={"0": {REGION: "eu"}, "1": {REGION: "us"}})
    )
    try:
        cluster.start()
    except ClusterUnavailable as e:
        if os.environ.get("SPRUCE_KUBE_REQUIRED") == "1":
            pytest.fail(f"the Kubernetes tier cannot run: {e}")
        pytest.skip(f"the Kubernetes tier cannot run here: {e}")
    print(f"\nkube cluster up in {cluster.timings['start']:.1f} s ({cluster.kubeconfig})")
    yield cluster
    report = cluster.stop()
    print(f"\nkube cluster down in {report.seconds:.1f} s, restored {report.sysctls_restored}")
    assert report.clean, f"teardown left things behind: {report}"


@pytest.fixture(scope="session")
def kubed(kube_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kubed]:
    """The whole platform on the cluster, shared by the platform-level tests."""
    from support import wait_for

    k = Kubed(kube_cluster, tmp_path_factory.mktemp("kube-platform"))
    yield k
    for app in k.p.client().get("/apps").json():
        k.p.client().delete(f"/apps/{app['id']}")  # its Deployments, pods and Secrets go
    k.p.stop()
    try:
        wait_for(lambda: not k.all_pods(), 60, what="the pods gone")
    except TimeoutError:
        left = [
            (x["metadata"]["namespace"], x["metadata"]["name"], x["spec"].get("nodeName"),
             x["metadata"].get("deletionTimestamp"), x["status"].get("phase"))
            for x in k.all_pods()
        ]  # fmt: skip
        raise AssertionError(f"pods left after the platform's apps were deleted: {left}") from None
    k.close()


def fast_dyno_settings(**kw: object) -> DynoSettings:
    s = DynoSettings(stop_grace=2.0, sleep_after=1800.0, sleep_check_interval=0.2)
    for k, v in kw.items():
        setattr(s, k, v)
    return s


class Dynos:
    """A backend on its own namespace of the session's cluster, with its log lines."""

    def __init__(
        self,
        cluster: Cluster,
        ds: DynoSettings,
        placement: Callable[[AppRuntime], dict[str, str]] | None = None,
        **settings: object,
    ) -> None:
        self.cluster = cluster
        self.sink = PrintLogSink()
        self.changes: list[str] = []
        self.samples: list[DynoSample] = []
        self.namespace = "t-" + secrets.token_hex(4)
        self.ds = ds
        self.settings = settings
        self.placement = placement
        self.backend = self.new_backend()

    def new_backend(self) -> KubernetesBackend:
        return KubernetesBackend(
            self.sink,
            HostSlugImages(BUSYBOX_IMAGE),
            kubeconfig=self.cluster.kubeconfig,
            settings=KubernetesSettings(
                namespace=self.namespace,
                endpoint_host="127.0.0.1",
                validate_against=SCHEMA,
                **self.settings,  # type: ignore[arg-type]
            ),
            dyno_settings=self.ds,
            on_change=self.changes.append,
            placement=lambda app: self.placement(app) if self.placement else {},
            on_sample=self.samples.extend,
        )

    def lines(self, process: str | None = None, source: str | None = None) -> list[str]:
        return [
            m
            for (_, src, proc, m) in self.sink.lines
            if (process is None or proc == process) and (source is None or src == source)
        ]


@pytest.fixture
def dyno_settings() -> DynoSettings:
    return fast_dyno_settings()


@pytest.fixture
def kube_settings() -> dict[str, object]:
    """Overrides of KubernetesSettings (a test module may redefine this)."""
    return {}


@pytest.fixture
async def dynos(
    kube_cluster: Cluster, dyno_settings: DynoSettings, kube_settings: dict[str, object]
) -> AsyncIterator[Dynos]:
    d = Dynos(kube_cluster, dyno_settings, **kube_settings)
    await d.backend.start()
    yield d
    for app_id in d.backend.apps():
        await d.backend.remove_app(app_id)
    await d.backend.shutdown()


WEB = (
    'echo "booting $DYNO on $PORT"; mkdir -p /tmp/www; '
    'echo "$GREETING from $DYNO" > /tmp/www/index.html; '
    "exec httpd -f -p 127.0.0.1:$PORT -h /tmp/www"
)


def make_slug(root: Path) -> Path:
    slug = root / "slug"
    slug.mkdir()
    (slug / "Procfile").write_text(f"web: {WEB}\n")
    return slug


def runtime(slug: Path, release: int = 1, **kw: object) -> AppRuntime:
    args: dict[str, object] = dict(
        app_id="app-" + secrets.token_hex(3),
        app_name="kubeapp",
        release_id=f"rel-{release}",
        release_version=release,
        slug=SlugArtifact(f"slug-{slug.name}", slug),
        process_types={
            "web": WEB,
            "worker": 'echo "worker $DYNO up"; exec sleep 1000',
            "mute": "exec sleep 1000",
        },
        formation={"web": (1, "eco")},
        config={"GREETING": "hello"},
        generation="fir",
    )
    args.update(kw)
    return AppRuntime(**args)  # type: ignore[arg-type]


async def until(cond: Callable[[], object], timeout: float = 120.0, what: str = "") -> None:
    """Poll a condition on the test's side (the backend itself polls nothing)."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what or cond}")
        await asyncio.sleep(0.1)
