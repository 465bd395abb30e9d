"""Building the Kubernetes dyno backend from `spruce up`'s settings (for Platform.build).

Kept apart from the backend's package so that the platform imports the `kubernetes` client
only when --dyno-backend kubernetes asks for it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from spruce.config import Settings
from spruce.dynos.backends.generations import Backend
from spruce.dynos.backends.regions import RegionBackends, node_labels, parse_kube_regions
from spruce.dynos.model import DynoSettings
from spruce.dynos.rendezvous import RendezvousServer
from spruce.logs import LogRouter
from spruce.registry import Registry
from spruce.registry.regional import RegionalRegistries
from spruce.services.model import AppRuntime, DynoSample


def make_kubernetes_backend(
    settings: Settings,
    registry: Registry,
    log_router: LogRouter,
    dyno_settings: DynoSettings,
    on_change: Callable[[str], None],
    rendezvous: RendezvousServer,
    *,
    kube_tuning: dict[str, Any] | None = None,
    on_sample: Callable[[tuple[DynoSample, ...]], None] | None = None,
) -> Backend:
    """Fir apps' dynos as workloads on the cluster of --kubeconfig (and on each region's own
    cluster, --kube-region REGION=kubeconfig:PATH), pulling release images from the
    platform's registry with its login as a pull Secret."""
    try:
        from spruce.dynos.backends.kubernetes import (
            KubernetesBackend,
            KubernetesSettings,
            RegistryImages,
            RegistryLogin,
        )
    except ImportError:
        raise OSError(
            "--dyno-backend kubernetes needs the kubernetes Python package: "
            "pip install 'spruce[kubernetes]'"
        ) from None
    from spruce.compile.cnb.sandbox import HOST_PATHS, interpreter_roots

    regions = parse_kube_regions(settings.kube_regions)
    label = settings.kube_region_label

    def logins() -> list[RegistryLogin]:
        # every registry Fir images may come from: the platform's and each region's
        every = registry.every() if isinstance(registry, RegionalRegistries) else [registry]
        return [
            RegistryLogin(r.address, c.username, c.password)
            for r in every
            if (c := r.credentials) is not None
        ]

    # Spruce's base image binds the host's system dirs (spruce.compile.cnb.base).
    images = RegistryImages(logins=logins, host_paths=HOST_PATHS + interpreter_roots())
    tuned: dict[str, Any] = {
        k: tuple(v) if isinstance(v, list) else v for k, v in (kube_tuning or {}).items()
    }

    def backend(
        kubeconfig: Path | None, namespace: str, placement: Callable[[AppRuntime], dict[str, str]]
    ) -> KubernetesBackend:
        return KubernetesBackend(
            log_router,
            images,
            kubeconfig=kubeconfig,
            settings=KubernetesSettings(
                namespace=namespace, endpoint_host=settings.kube_endpoint_host, **tuned
            ),
            dyno_settings=dyno_settings,
            on_change=on_change,
            rendezvous=rendezvous,
            placement=placement,
            on_sample=on_sample,
        )

    main = backend(
        settings.kubeconfig,
        settings.kube_namespace,
        lambda app: node_labels(app, regions, label),
    )
    own = {r.region: r for r in regions.values() if r.kubeconfig is not None}
    if not own:
        return main
    return RegionBackends(
        main,
        {
            name: backend(
                r.kubeconfig,
                context_namespace(r.kubeconfig) or settings.kube_namespace,
                lambda app: {},
            )
            for name, r in own.items()
        },
    )


def context_namespace(kubeconfig: Path | None) -> str | None:
    """The namespace the kubeconfig's current context names, as kubectl reads it."""
    if kubeconfig is None:
        return None
    from kubernetes import config

    try:
        _, current = config.list_kube_config_contexts(str(kubeconfig))
    except Exception:
        return None
    ns = ((current or {}).get("context") or {}).get("namespace")
    return str(ns) if ns else None
