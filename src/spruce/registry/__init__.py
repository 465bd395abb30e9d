"""The OCI registry Fir images are pushed to: a supervised docker-registry, or an operator's."""

from .server import RegistryServer, RegistryTLS, RegistryUnavailable, find_registry_binary

__all__ = ["RegistryServer", "RegistryTLS", "RegistryUnavailable", "find_registry_binary"]
