"""OCI images: reproducible layers, manifests and configs, a distribution client, unpacking."""

from .distribution import RegistryClient, RegistryCredentials, RegistryError
from .image import (
    MEDIA_CONFIG,
    MEDIA_LAYER_GZIP,
    MEDIA_MANIFEST,
    Descriptor,
    ImageConfig,
    ImageFormatError,
    Manifest,
    canonical_json,
    sha256_digest,
)
from .layer import NORMALIZED_MTIME, LayerBlob, LayerError, LayerWriter, diff_id_of
from .reference import ImageRef, ReferenceError, parse_challenge

__all__ = [
    "MEDIA_CONFIG", "MEDIA_LAYER_GZIP", "MEDIA_MANIFEST", "NORMALIZED_MTIME", "Descriptor",
    "ImageConfig", "ImageFormatError", "ImageRef", "LayerBlob", "LayerError", "LayerWriter",
    "Manifest", "ReferenceError", "RegistryClient", "RegistryCredentials", "RegistryError",
    "canonical_json", "diff_id_of", "parse_challenge", "sha256_digest",
]  # fmt: skip
