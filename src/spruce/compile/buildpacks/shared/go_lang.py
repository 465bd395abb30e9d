"""Rules of Heroku's Go buildpack that Spruce's heroku/go follows (python3 stdlib only).

* An app is a Go module: `go.mod` at the root.
* The Go version: the `GOVERSION` config var, else a `// +heroku goVersion go1.22` comment in
  go.mod, else its `go 1.22` directive. Spruce builds with the platform's Go (apt package
  golang-go, or another `go` first on PATH): a module asking for a newer minor release than
  the installed one fails the build; an older one builds with the newer Go (Go's
  compatibility promise), said in the output.
* What is built: the `GO_INSTALL_PACKAGE_SPEC` config var, else the `// +heroku install ...`
  comment in go.mod, else `.`; `go install -tags heroku` puts the binaries in `bin/`.
* `vendor/modules.txt` present: `-mod=vendor`, no network. Otherwise modules are downloaded
  through GOPROXY (network needed) into the build cache.
* The default `web` process is the binary named after the module path's last element.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from lang_support import BuildError, version_tuple


@dataclass
class GoMod:
    module: str
    go: str = ""  # the `go` directive, like 1.22 or 1.22.3
    heroku_go_version: str = ""  # `// +heroku goVersion go1.22`
    install: list[str] = field(default_factory=list)  # `// +heroku install ./cmd/...`
    toolchain: str = ""  # the `toolchain go1.22.3` directive


def read_go_mod(app_dir: str) -> GoMod:
    path = os.path.join(app_dir, "go.mod")
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise BuildError(f"cannot read go.mod: {exc.strerror or exc}") from exc
    module = re.search(r'^\s*module\s+"?([^\s"]+)"?', text, re.MULTILINE)
    if module is None:
        raise BuildError("go.mod has no `module` line: it is not a Go module file")
    mod = GoMod(module=module.group(1))
    go = re.search(r"^\s*go\s+(\d+(?:\.\d+){1,2})\s*$", text, re.MULTILINE)
    if go:
        mod.go = go.group(1)
    toolchain = re.search(r"^\s*toolchain\s+(\S+)", text, re.MULTILINE)
    if toolchain:
        mod.toolchain = toolchain.group(1)
    for line in text.splitlines():
        comment = re.match(r"\s*//\s*\+heroku\s+(\w+)\s*(.*)$", line)
        if not comment:
            continue
        key, value = comment.group(1), comment.group(2).strip()
        if key == "goVersion" and value:
            mod.heroku_go_version = value
        elif key == "install" and value:
            mod.install = value.split()
    return mod


def wanted_version(mod: GoMod, config: dict[str, str]) -> tuple[str, str]:
    """(version like go1.22, where it came from)."""
    if config.get("GOVERSION", "").strip():
        return _go_name(config["GOVERSION"]), "the GOVERSION config var"
    if mod.heroku_go_version:
        return _go_name(mod.heroku_go_version), "go.mod's // +heroku goVersion"
    if mod.go:
        return _go_name(mod.go), "go.mod's go directive"
    return "", "no version in go.mod"


def _go_name(version: str) -> str:
    version = version.strip()
    return version if version.startswith("go") else "go" + version


def check_version(wanted: str, installed: str) -> str | None:
    """None when `installed` (like go1.19.8) serves `wanted` exactly; a note when it serves
    it otherwise; BuildError when it cannot."""
    have = version_tuple(installed)
    if not wanted:
        return f"go.mod names no Go version: using the platform's {installed}"
    want = version_tuple(wanted)
    if len(want) < 2 or not have:
        raise BuildError(f"{wanted!r} is not a Go version (like go1.22 or go1.22.3)")
    if have[:2] < want[:2]:
        raise BuildError(
            f"This app needs Go {wanted.removeprefix('go')} but the platform's Go is "
            f"{installed.removeprefix('go')}.\n"
            "The platform operator installs a newer Go (golang-go from a newer distribution "
            "release, or any Go first on PATH),\nor lower the go directive in go.mod."
        )
    if have[:2] > want[:2]:
        return f"{wanted} requested: building with the platform's newer {installed}"
    if len(want) > 2 and have != want:
        return f"{wanted} requested: the platform has {installed} of the same minor release"
    return None


def packages(mod: GoMod, config: dict[str, str]) -> list[str]:
    spec = config.get("GO_INSTALL_PACKAGE_SPEC", "").split()
    return spec or mod.install or ["."]


def vendored(app_dir: str) -> bool:
    return os.path.isfile(os.path.join(app_dir, "vendor", "modules.txt"))


def binary_name(module: str) -> str:
    """The name `go install` gives the main package at the module root."""
    parts = [p for p in module.split("/") if p]
    if len(parts) > 1 and re.fullmatch(r"v\d+", parts[-1]):
        parts.pop()
    return parts[-1] if parts else module


def install_argv(go: str, pkgs: list[str], vendor: bool, config: dict[str, str]) -> list[str]:
    argv = [go, "install", "-v", "-tags", "heroku"]
    argv.append("-mod=vendor" if vendor else "-modcacherw")
    symbol, value = config.get("GO_LINKER_SYMBOL", ""), config.get("GO_LINKER_VALUE", "")
    if symbol and value:
        argv += ["-ldflags", f"-X {symbol}={value}"]
    return argv + pkgs


def build_env(build_dir: str, cache_dir: str, vendor: bool) -> dict[str, str]:
    env = {
        "GOBIN": os.path.join(build_dir, "bin"),
        "GOPATH": os.path.join(cache_dir, "go-path"),
        "GOCACHE": os.path.join(cache_dir, "go-build"),
        "GOTOOLCHAIN": "local",  # never download another toolchain (Go 1.21+)
    }
    if vendor:
        env["GOFLAGS"] = "-mod=vendor"
        env["GOPROXY"] = "off"
    return env


def default_process_types(build_dir: str) -> dict[str, str]:
    try:
        mod = read_go_mod(build_dir)
    except BuildError:
        return {}
    name = binary_name(mod.module)
    if os.path.isfile(os.path.join(build_dir, "bin", name)):
        return {"web": name}
    return {}
