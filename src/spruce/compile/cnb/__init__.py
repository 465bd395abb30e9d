"""Cloud Native Buildpacks on Fir: Spruce's CNB platform (the lifecycle), its built-in CNBs,
image export to an OCI registry, and the launcher and unpacking that run images as dynos.

Public interface (docs/fir-builds.md):
  run_build(CnbBuildRequest, emit) -> CnbBuildResult   (raises BuildFailed / BuildTimeout)
  prepare_launch(UnpackedImage, dyno_env, process_type=, command=, workspace=, uid=) -> ImageLaunch
  (pull_image lives in spruce.compile.oci.unpack)
"""

from .launch import ImageLaunch, host_paths, launcher_argv, prepare_launch
from .runner import CnbBuildRequest, CnbBuildResult, run_build

__all__ = [
    "CnbBuildRequest", "CnbBuildResult", "ImageLaunch", "host_paths", "launcher_argv",
    "prepare_launch", "run_build",
]  # fmt: skip
