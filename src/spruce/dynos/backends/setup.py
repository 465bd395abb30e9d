"""Building the Kubernetes dyno backend from `spruce up`'s settings (for Platform.build).

Kept apart from the backend's package so that the platform imports the `kubernetes` client
only when --dyno-backend kubernetes asks for it.
"""

from __future__ import annotations

from collections.abc import Callable

from spruce.config import Settings
from spruce.dynos.backends.generations import Backend
from spruce.dynos.model import DynoSettings
from spruce.dynos.rendezvous import RendezvousServer
from spruce.logs import LogRouter
from spruce.registry import Registry
from spruce.services.model import AppRuntime


def make_kubernetes_backend(
    settings: Settings,
    registry: Registry,
    log_router: LogRouter,
    dyno_settings: DynoSettings,
    on_change: Callable[[str], None],
    rendezvous: RendezvousServer,
) -> Backend:
    """Fir apps' dynos as workloads on the cluster of --kubeconfig, pulling release images
    from the platform's registry with its login as a pull Secret."""
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

    label = settings.kube_region_label

    def placement(app: AppRuntime) -> dict[str, str]:
        return {label: app.region} if label and app.region else {}

    def login() -> RegistryLogin | None:
        creds = registry.credentials
        return RegistryLogin(registry.address, creds.username, creds.password) if creds else None

    return KubernetesBackend(
        log_router,
        # Spruce's base image binds the host's system dirs (spruce.compile.cnb.base).
        RegistryImages(login=login, host_paths=HOST_PATHS + interpreter_roots()),
        kubeconfig=settings.kubeconfig,
        settings=KubernetesSettings(
            namespace=settings.kube_namespace, endpoint_host=settings.kube_endpoint_host
        ),
        dyno_settings=dyno_settings,
        on_change=on_change,
        rendezvous=rendezvous,
        placement=placement,
    )
