"""Builds: classic buildpacks turn an app's source into a slug.

Public interface (see docs/deploy.md for the user's side):
  run_build(BuildRequest, output) -> BuildResult   (raises BuildFailed / BuildTimeout)
  extract_source_tarball(archive, dest), unpack_slug(slug, dest)   (raise SourceArchiveError)
  parse_procfile(text)
"""

from spruce.services.model import BuildFailed, BuildRequest, BuildResult

from .archive import SourceArchiveError, extract_source_tarball, sha256_checksum, unpack_slug
from .buildpacks import DETECTION_ORDER, BuildpackError
from .classic import ClassicBuildRunner
from .procfile import ProcfileError, parse_procfile
from .runner import BuildTimeout, run_build
from .users import ensure_build_user

__all__ = [
    "DETECTION_ORDER", "BuildFailed", "ClassicBuildRunner", "BuildRequest", "BuildResult", "BuildTimeout",
    "BuildpackError", "ProcfileError", "SourceArchiveError", "ensure_build_user",
    "extract_source_tarball", "parse_procfile", "run_build",
    "sha256_checksum", "unpack_slug",
]  # fmt: skip
