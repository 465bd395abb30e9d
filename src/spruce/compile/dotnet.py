"""The .NET buildpack's rules, importable as `spruce.compile.dotnet`.

The code lives in buildpacks/shared/dotnet_rules.py, which staging copies into the classic and
CNB .NET buildpacks' lib/ (stdlib only); this module loads that file for the rest of Spruce.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_PATH = Path(__file__).parent / "buildpacks" / "shared" / "dotnet_rules.py"
_spec = importlib.util.spec_from_file_location("spruce.compile._dotnet_rules", _PATH)
assert _spec is not None and _spec.loader is not None
_rules = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = _rules
_spec.loader.exec_module(_rules)

DotnetError = _rules.DotnetError
Project = _rules.Project
SdkVersion = _rules.SdkVersion
SUPPORTED_SDKS = _rules.SUPPORTED_SDKS
choose_sdk = _rules.choose_sdk
find_projects = _rules.find_projects
installed_sdks = _rules.installed_sdks
process_type_name = _rules.process_type_name
process_types = _rules.process_types
sdk_for_framework = _rules.sdk_for_framework
select_sdk = _rules.select_sdk

__all__ = [
    "SUPPORTED_SDKS", "DotnetError", "Project", "SdkVersion", "choose_sdk", "find_projects",
    "installed_sdks", "process_type_name", "process_types", "sdk_for_framework", "select_sdk",
]  # fmt: skip
