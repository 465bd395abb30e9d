"""Cloud Native Buildpacks on Fir: Spruce's CNB platform (the lifecycle), its built-in CNBs,
image export to an OCI registry, and the launcher and unpacking that run images as dynos.

Public interface:
  run_build(CnbBuildRequest, emit) -> CnbBuildResult   (raises BuildFailed / BuildTimeout)
  pull_image(client, ref, cache_root) -> UnpackedImage; launch_argv(...)  (see .launch)
"""

from .runner import CnbBuildRequest, CnbBuildResult, run_build

__all__ = ["CnbBuildRequest", "CnbBuildResult", "run_build"]
