"""Long build steps say they are still running: the tool runner of the Python buildpacks (and
of the Node.js buildpack, which uses the same one) prints a line after a few silent seconds."""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

from spruce.compile.buildpacks import BUILTIN_DIR


def _python_lang() -> ModuleType:
    # The buildpacks import their sibling shared modules from lib/ (or shared/ in the tree).
    if str(BUILTIN_DIR / "shared") not in sys.path:
        sys.path.insert(0, str(BUILTIN_DIR / "shared"))
    spec = importlib.util.spec_from_file_location(
        "python_lang_under_test", BUILTIN_DIR / "shared" / "python_lang.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


lang = _python_lang()


class Captured(lang.Log):  # type: ignore[misc, name-defined]
    def __init__(self) -> None:
        self.lines: list[str] = []

    def detail(self, message: str) -> None:
        self.lines.append(message)

    def die(self, message: str) -> None:
        self.lines.append("DIE " + message)
        raise SystemExit(1)


def test_a_silent_tool_gets_heartbeat_lines(tmp_path: Path) -> None:
    log = Captured()
    script = "import time; print('first', flush=True); time.sleep(1.5); print('last')"
    lang.run([sys.executable, "-c", script], dict(os.environ), str(tmp_path), log, heartbeat=0.4)
    assert log.lines[0] == "first" and log.lines[-1] == "last"
    beats = [line for line in log.lines if line.startswith("... still running")]
    assert len(beats) >= 2, log.lines
    assert re.fullmatch(r"\.\.\. still running python3?[\d.]* -c .* \(\d+s\)", beats[0]), beats[0]


def test_a_chatty_tool_gets_none(tmp_path: Path) -> None:
    log = Captured()
    script = "import time\nfor i in range(6):\n    print(i, flush=True); time.sleep(0.1)"
    lang.run([sys.executable, "-c", script], dict(os.environ), str(tmp_path), log, heartbeat=0.4)
    assert log.lines == [str(i) for i in range(6)]


def test_a_failing_tool_still_stops_the_build(tmp_path: Path) -> None:
    log = Captured()
    with pytest.raises(SystemExit):
        lang.run([sys.executable, "-c", "raise SystemExit(3)"], {}, str(tmp_path), log)
    assert log.lines[-1].startswith("DIE `python") and "(exit status 3)" in log.lines[-1]
