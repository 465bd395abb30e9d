"""The Kubernetes dyno backend: dynos as Deployments, Pods and Jobs on a cluster."""

from spruce.dynos.backends.kubernetes.backend import KubernetesBackend
from spruce.dynos.backends.kubernetes.images import (
    HostSlugImages,
    ImageRef,
    ImageSource,
    RegistryImages,
    RegistryLogin,
)
from spruce.dynos.backends.kubernetes.manifests import KubernetesSettings
from spruce.dynos.backends.kubernetes.validation import validate_app

__all__ = [
    "HostSlugImages",
    "ImageRef",
    "ImageSource",
    "KubernetesBackend",
    "KubernetesSettings",
    "RegistryImages",
    "RegistryLogin",
    "validate_app",
]
