"""The Services object: every service of the layer made once, over the store, the event
bus and the ports (the package's `__init__` re-exports it lazily)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from spruce.store.db import Store

from .accounts import RATE_LIMIT, RATE_WINDOW, Accounts
from .acm import Acm
from .acm_lifecycle import Policy as AcmPolicy
from .acm_scheduler import AcmScheduler, utcnow
from .addon_catalog import AddonCatalog
from .addon_data import AddonData
from .addons import Addons
from .app_transfers import AppTransfers
from .apps import Apps
from .builds import Builds, BuildSettings
from .certs import Certs
from .collaborators import Collaborators
from .deployments import Deployments
from .domains import Domains
from .dynos import Dynos
from .events import AppChanged, EventBus
from .features import Features
from .formation import Formations
from .heroku_exec import HerokuExec
from .inference_calls import InferenceCalls
from .logs import Logs
from .metrics import Metrics, MetricsSettings
from .migrations import Migrations
from .model import RouteCertificate
from .oauth import Credentials
from .oci_images import OciImages
from .pg_transfers import PgTransfers
from .pipeline_config import PipelineConfigVars
from .pipeline_diff import PipelineDiff
from .pipelines import Pipelines
from .ports import (
    AddonProvider,
    BuildRunner,
    CertificateAuthority,
    CertificateIssuer,
    CommitHistory,
    DynoBackend,
    ExecGateway,
    ImageBuildRunner,
    InferenceApi,
    LogPort,
    RouteSink,
    TelemetryExporter,
)
from .promotions import Promotions
from .regions import Region, Regions
from .release_phase import RELEASE_PHASE_TIMEOUT, ReleasePhase
from .releases import Releases
from .review_apps import ReviewApps, ReviewAppSettings
from .routing import Routing
from .sealing import Sealer
from .settings import PlatformAddresses
from .setups import Setups
from .shared import SharedLimits
from .sources import Sources
from .spaces import Spaces
from .teams import Teams
from .telemetry import TelemetryDrains
from .views import AppView, UserView

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Ports:
    """Every adapter services drive, each built once by the composition root."""

    dynos: DynoBackend
    builds: BuildRunner
    logs: LogPort
    routes: RouteSink
    issuer: CertificateIssuer
    addon_providers: tuple[AddonProvider, ...]
    authority: CertificateAuthority
    """Where ACM's certificates come from: an ACME CA, or the internal CA."""
    images: ImageBuildRunner
    """Fir builds: CNBs into OCI images in the platform's registry."""
    telemetry: TelemetryExporter
    """OpenTelemetry signals to telemetry drains over OTLP."""
    history: CommitHistory | None = None
    """The apps' git repositories (pipelines:diff); None: no diff."""
    exec_gateway: ExecGateway | None = None
    """Heroku Exec's SSH gateway (spruce up --exec-host); None: not served."""
    inference: InferenceApi | None = None
    """The platform's inference server, as model resources' keys call it; None: none."""


@dataclass(frozen=True)
class ServiceSettings:
    build: BuildSettings = BuildSettings()
    release_phase_timeout: float = RELEASE_PHASE_TIMEOUT
    default_certificate: RouteCertificate | None = None
    """The router's certificate for names no app claims."""
    acm: AcmPolicy = AcmPolicy()
    """When ACM renews (30 days before expiry) and how it retries."""
    clock: Callable[[], dt.datetime] = utcnow
    """The time ACM's scheduler goes by (tests move it)."""
    regions: tuple[Region, ...] = ()
    """The operator's regions, where spaces run (`local` when none is declared)."""
    metrics: MetricsSettings = MetricsSettings()
    """How long and how finely the router's and dynos' measurements are kept."""
    review_apps: ReviewAppSettings = ReviewAppSettings()
    """How long a stale_days day is and how often stale review apps are swept."""
    rate_limit: int = RATE_LIMIT
    """API requests an account may make an hour (Heroku's 4,500; benchmarks raise it)."""
    shared_limits: Path | None = None
    """With API workers (spruce up --api-workers): the file where every API process keeps
    the rate limits and the key epoch (services/shared.py); None: in this process only."""


class Services:
    def __init__(
        self,
        store: Store,
        events: EventBus,
        ports: Ports,
        addresses: PlatformAddresses,
        home: Path,
        settings: ServiceSettings | None = None,
    ) -> None:
        settings = settings or ServiceSettings()
        home = Path(home)
        self.store = store
        self.events = events
        self.addresses = addresses
        self.accounts = Accounts(
            store,
            SharedLimits.create(settings.shared_limits, settings.rate_limit, RATE_WINDOW)
            if settings.shared_limits
            else None,
            settings.rate_limit,
        )
        self.regions = Regions(settings.regions)
        self.teams = Teams(store)
        self.spaces = Spaces(store, events, self.regions, home)
        self.apps = Apps(store, events, addresses)
        self.collaborators = Collaborators(store, events, self.apps)
        self.releases = Releases(store, events, addresses)
        self.formation = Formations(store, events)
        self.features = Features(store, events)
        self.domains = Domains(store, events, addresses)
        # Private keys ACM keeps are sealed with a key in the home (services/sealing.py).
        sealer = Sealer.in_home(home)
        self.certs = Certs(store, events, sealer)
        self.acm = Acm(store, events, self.apps, self.certs, sealer, settings.acm)
        self.credentials = Credentials(store, self.accounts, sealer)
        self.app_transfers = AppTransfers(store, events, self.apps)
        self.acm_scheduler = AcmScheduler(
            self.acm,
            events,
            ports.authority,
            settings.acm,
            settings.clock,
            table_settled=lambda: self.routing.settled(),  # made below, awaited only later
        )
        self.logs = Logs(store, events, ports.logs, addresses)
        self.metrics = Metrics(events, settings.metrics)
        self._metrics_file = home / "metrics.json"
        self.metrics.load(self._metrics_file)
        self.telemetry = TelemetryDrains(
            store,
            events,
            self.apps,
            self.spaces,
            ports.telemetry,
            ports.dynos,
            ports.logs,
            sealer,
            addresses,
            home,
        )
        self.deployments = Deployments(
            store, events, ports.dynos, otlp_endpoint=self.telemetry.otlp_endpoint
        )
        self.release_phase = ReleasePhase(
            events,
            self.releases,
            self.deployments.app_runtime,
            ports.dynos,
            ports.logs,
            home / "releases",
            settings.release_phase_timeout,
        )
        self.sources = Sources(home, ports.builds, addresses)
        self.oci_images = OciImages(store, ports.images)
        self.builds = Builds(
            store,
            events,
            self.releases,
            self.release_phase,
            ports.builds,
            self.sources,
            addresses,
            home,
            settings.build,
            images=ports.images,
            oci_images=self.oci_images,
        )
        self.dynos = Dynos(events, ports.dynos, self.deployments, self.formation)
        self.heroku_exec = HerokuExec(
            events, self.apps, self.features, ports.dynos, ports.exec_gateway
        )
        self.addons = Addons(
            store,
            events,
            self.apps,
            self.releases,
            AddonCatalog(ports.addon_providers),
            ports.logs,
        )
        self.addon_data = AddonData(self.addons)
        self.inference_calls = InferenceCalls(
            self.apps, self.addons, self.releases, ports.inference
        )
        self.pg_transfers = PgTransfers(
            store, self.apps, self.addons, self.addon_data, sealer, addresses
        )
        self.setups = Setups(
            store,
            events,
            self.apps,
            self.releases,
            self.formation,
            self.builds,
            self.addons,
            self.dynos,
            ports.logs,
            addresses,
            spaces=self.spaces,
        )
        self.migrations = Migrations(
            store,
            events,
            self.apps,
            self.spaces,
            self.releases,
            self.features,
            self.addons,
            self.formation,
            self.domains,
            self.builds,
            ports.dynos,
        )
        self.pipelines = Pipelines(store, self.apps)
        self.pipeline_config = PipelineConfigVars(store, self.pipelines)
        self.promotions = Promotions(
            store,
            self.apps,
            self.pipelines,
            self.releases,
            self.release_phase,
            lambda app_id: self.builds.data_root(app_id) / "slugs",  # the target's region's
            images=ports.images,
        )
        self.pipeline_diff = PipelineDiff(store, self.apps, self.pipelines, ports.history)
        self._history = ports.history
        if ports.history is not None:
            history = ports.history
            events.subscribe(
                AppChanged,
                lambda e: history.rename(e.old_name, e.new_name) if e.renamed else None,
            )
        self.review_apps = ReviewApps(
            store,
            events,
            self.apps,
            self.pipelines,
            self.spaces,
            self.setups,
            self.sources,
            ports.history,
            self.destroy_app_internal,
            settings.review_apps,
            settings.clock,
        )
        self.routing = Routing(
            store,
            events,
            ports.dynos,
            self.certs,
            self.acm,
            ports.issuer,
            ports.routes,
            addresses,
            settings.default_certificate,
        )

    async def delete_app(self, actor: UserView, identity: str) -> AppView:
        """Destroy an app: its builds, release phases and dynos stop, its add-ons are
        deprovisioned (or detached), then its rows go."""
        app = self.apps.get(actor, identity, owner_only=True)
        self.apps.announce_deleting(app)
        await self.deployments.remove(app.id)
        await self.addons.destroy_for_app(actor, app.id)
        if self._history is not None:  # while the row still says where (its region's root)
            self._history.forget(app.name)
        self.apps.delete_row(app)
        return app

    async def destroy_app_internal(self, app_id: str) -> AppView:
        """The platform's own destroy (stale review apps), in the name of the app's owner."""
        app = self.apps.get_internal(app_id)
        return await self.delete_app(self.accounts.get(app.owner_id), app.id)

    async def start(self) -> None:
        """Background work begins (after the router has its table)."""
        self.promotions.recover()
        self.review_apps.start()
        await self.spaces.start()
        await self.acm_scheduler.start()
        self.telemetry.start()

    async def stop(self) -> None:
        """Background work ends (the platform is stopping)."""
        await self.acm_scheduler.stop()
        await self.spaces.stop()
        await self.telemetry.stop()
        await self.review_apps.stop()
        await self.promotions.stop()
        await self.setups.stop()
        await self.builds.stop()
        await self.release_phase.stop()
        await self.deployments.stop()
        try:
            self.metrics.save(self._metrics_file)
        except OSError as e:  # the home went read-only: lose the graphs, not the stop
            log.warning("metrics were not saved: %s", e)


__all__ = ["EventBus", "Ports", "ServiceSettings", "Services"]
