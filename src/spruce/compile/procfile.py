"""Procfile parsing with Heroku's line rule, importable as `spruce.compile.procfile`.

The rules live in buildpacks/shared/procfile_rules.py (stdlib only) so the heroku/procfile CNB
uses the very same code; this module loads that file for the rest of Spruce.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_PATH = Path(__file__).parent / "buildpacks" / "shared" / "procfile_rules.py"
_spec = importlib.util.spec_from_file_location("spruce.compile._procfile_rules", _PATH)
assert _spec is not None and _spec.loader is not None
_rules = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = _rules
_spec.loader.exec_module(_rules)

ProcfileError = _rules.ProcfileError
parse_procfile = _rules.parse_procfile
cnb_process_type = _rules.cnb_process_type

__all__ = ["ProcfileError", "cnb_process_type", "parse_procfile"]
