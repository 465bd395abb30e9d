"""A real Kubernetes cluster on this machine, built from Debian's own source (tests, docs)."""

from spruce.kube.binaries import VERSION, ClusterUnavailable, ensure_binaries
from spruce.kube.cluster import Cluster, ClusterConfig, Teardown
from spruce.kube.images import BUSYBOX_IMAGE, PAUSE_IMAGE

__all__ = [
    "BUSYBOX_IMAGE",
    "PAUSE_IMAGE",
    "VERSION",
    "Cluster",
    "ClusterConfig",
    "ClusterUnavailable",
    "Teardown",
    "ensure_binaries",
]
