"""Long build steps say they are still running: the Python buildpacks' tool runner and the
Node.js buildpack's npm steps print a line after a few silent seconds."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from spruce.compile.buildpacks import BUILTIN_DIR


def _python_lang() -> ModuleType:
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


def _nodejs_heartbeat() -> str:
    text = (BUILTIN_DIR / "nodejs" / "bin" / "compile").read_text()
    match = re.search(r"^with_heartbeat\(\) \{.*?^\}$", text, re.S | re.M)
    assert match, "with_heartbeat is gone from the nodejs buildpack"
    return match.group(0)


def test_nodejs_steps_print_while_they_run() -> None:
    script = f"set -euo pipefail\n{_nodejs_heartbeat()}\nwith_heartbeat sleep 1.3\necho done\n"
    out = subprocess.run(
        ["bash", "-c", script], env=dict(os.environ, HEARTBEAT_SECONDS="0.4"),
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[-1] == "done"
    assert sum(line.startswith("       ... still running sleep 1.3 (") for line in lines) >= 2
    failed = subprocess.run(
        ["bash", "-c", f"{_nodejs_heartbeat()}\nwith_heartbeat false || echo rc=$?"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert failed.stdout.strip() == "rc=1"
