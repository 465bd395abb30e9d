"""Rules of Heroku's .NET buildpack that Spruce's dotnet buildpack follows (stdlib only).

* Which projects an app has (a root solution file lists them; else the one root project file).
* Process type names: the AssemblyName (else the project file's stem), lower-cased, each run
  of `-`, `.`, `_` or space turned into one `-`, other characters dropped, trimmed of `-`, at
  most 63 characters. A lone web project is `web`.
* SDK selection from global.json (`sdk.version` + `sdk.rollForward`, with the .NET SDK's
  roll-forward policies) or, without it, the newest supported SDK of the target framework.
"""

from __future__ import annotations

import json
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

SUPPORTED_SDKS = ("8.0.115", "8.0.311", "8.0.408", "9.0.105", "9.0.203")
PROJECT_EXTENSIONS = (".csproj", ".fsproj", ".vbproj")
ROLL_FORWARD = (
    "patch", "feature", "minor", "major", "latestPatch", "latestFeature", "latestMinor",
    "latestMajor", "disable",
)  # fmt: skip


class DotnetError(ValueError):
    """A user-facing problem with the app's .NET files."""


@dataclass(frozen=True)
class SdkVersion:
    major: int
    minor: int
    band: int  # feature band: 1 for 8.0.1xx
    patch: int  # the last two digits

    @classmethod
    def parse(cls, text: str) -> SdkVersion:
        match = re.fullmatch(r"(\d+)\.(\d+)\.(\d)(\d\d)(?:-[0-9A-Za-z.-]+)?", text.strip())
        if not match:
            raise DotnetError(f"{text!r} is not a .NET SDK version (like 8.0.408)")
        major, minor, band, patch = (int(g) for g in match.groups())
        return cls(major, minor, band, patch)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.band}{self.patch:02d}"

    @property
    def key(self) -> tuple[int, int, int, int]:
        return (self.major, self.minor, self.band, self.patch)


def process_type_name(name: str) -> str:
    """Heroku's process type name for a project or assembly name."""
    lowered = name.lower()
    kept = re.sub(r"[^a-z0-9\-._ ]", "", lowered)
    dashed = re.sub(r"[\-._ ]+", "-", kept).strip("-")
    return dashed[:63].rstrip("-")


def select_sdk(
    requested: str, roll_forward: str | None = None, available: tuple[str, ...] = SUPPORTED_SDKS
) -> str:
    """Pick an SDK for global.json's sdk.version with the SDK's rollForward policies.

    Without rollForward the .NET default, `patch`, applies.
    """
    policy = roll_forward or "patch"
    if policy not in ROLL_FORWARD:
        raise DotnetError(
            f"global.json sdk.rollForward {policy!r} is not one of: {', '.join(ROLL_FORWARD)}"
        )
    want = SdkVersion.parse(requested)
    versions = sorted((SdkVersion.parse(v) for v in available), key=lambda v: v.key)
    at_least = [v for v in versions if v.key >= want.key]

    def newest(pred: object) -> SdkVersion | None:
        matches = [v for v in at_least if pred(v)]  # type: ignore[operator]
        return matches[-1] if matches else None

    def oldest_band_newest_patch(pred: object) -> SdkVersion | None:
        matches = [v for v in at_least if pred(v)]  # type: ignore[operator]
        if not matches:
            return None
        first = matches[0]
        return [
            v
            for v in matches
            if (v.major, v.minor, v.band) == (first.major, first.minor, first.band)
        ][-1]

    same_band = lambda v: (v.major, v.minor, v.band) == (want.major, want.minor, want.band)  # noqa: E731
    same_minor = lambda v: (v.major, v.minor) == (want.major, want.minor)  # noqa: E731
    same_major = lambda v: v.major == want.major  # noqa: E731
    exact = next((v for v in versions if v.key == want.key), None)
    chosen: SdkVersion | None
    if policy == "disable":
        chosen = exact
    elif policy == "latestPatch":
        chosen = newest(same_band)
    elif policy == "latestFeature":
        chosen = newest(same_minor)
    elif policy == "latestMinor":
        chosen = newest(same_major)
    elif policy == "latestMajor":
        chosen = newest(lambda v: True)
    else:
        # patch/feature/minor/major: the requested version if present, else roll forward to the
        # newest patch of the nearest feature band allowed by the policy.
        chosen = exact or newest(same_band)
        if chosen is None and policy in ("feature", "minor", "major"):
            chosen = oldest_band_newest_patch(same_minor)
        if chosen is None and policy in ("minor", "major"):
            chosen = oldest_band_newest_patch(same_major)
        if chosen is None and policy == "major":
            chosen = oldest_band_newest_patch(lambda v: True)
    if chosen is None:
        raise DotnetError(
            f"no supported .NET SDK satisfies global.json version {requested} with "
            f"rollForward {policy}; supported SDKs: {', '.join(available)}"
        )
    return str(chosen)


def sdk_for_framework(framework: str, available: tuple[str, ...] = SUPPORTED_SDKS) -> str:
    """The newest supported SDK for a target framework such as net8.0."""
    match = re.fullmatch(r"net(\d+)\.(\d+)(?:-[a-z]+[0-9.]*)?", framework.strip())
    if not match:
        raise DotnetError(f"target framework {framework!r} is not supported (net8.0 or net9.0)")
    major, minor = int(match.group(1)), int(match.group(2))
    fitting = [
        SdkVersion.parse(v)
        for v in available
        if SdkVersion.parse(v).major == major and SdkVersion.parse(v).minor == minor
    ]
    if not fitting:
        raise DotnetError(
            f"target framework {framework} needs a .NET {major}.{minor} SDK; supported SDKs: "
            f"{', '.join(available)}"
        )
    return str(max(fitting, key=lambda v: v.key))


@dataclass
class Project:
    path: str  # relative to the app root, with /
    sdk: str  # the <Project Sdk="..."> attribute
    assembly_name: str
    output_type: str
    target_frameworks: list[str] = field(default_factory=list)

    @property
    def kind(self) -> str:
        """web, worker, console or library."""
        if self.sdk == "Microsoft.NET.Sdk.Web":
            return "web"
        if self.sdk == "Microsoft.NET.Sdk.Worker":
            return "worker"
        if self.output_type.lower() in ("exe", "winexe"):
            return "console"
        return "library"

    @property
    def directory(self) -> str:
        return os.path.dirname(self.path) or "."


def parse_project(app_dir: str, rel_path: str) -> Project:
    full = os.path.join(app_dir, rel_path)
    try:
        root = ET.parse(full).getroot()
    except (ET.ParseError, OSError) as exc:
        raise DotnetError(f"cannot read project file {rel_path}: {exc}") from exc
    props: dict[str, str] = {}
    for group in root.iter():
        tag = group.tag.split("}")[-1]
        if tag in ("AssemblyName", "OutputType", "TargetFramework", "TargetFrameworks"):
            if group.text and group.text.strip():
                props.setdefault(tag, group.text.strip())
    sdk = root.get("Sdk", "")
    stem = os.path.splitext(os.path.basename(rel_path))[0]
    frameworks = props.get("TargetFrameworks", props.get("TargetFramework", ""))
    output_type = props.get("OutputType", "")
    if not output_type and sdk in ("Microsoft.NET.Sdk.Web", "Microsoft.NET.Sdk.Worker"):
        output_type = "Exe"
    return Project(
        path=rel_path,
        sdk=sdk,
        assembly_name=props.get("AssemblyName", stem),
        output_type=output_type or "Library",
        target_frameworks=[f for f in frameworks.split(";") if f],
    )


_SLN_PROJECT = re.compile(r'^Project\("\{[^}]*\}"\)\s*=\s*"[^"]*",\s*"([^"]+)"', re.MULTILINE)


def find_projects(app_dir: str) -> list[Project]:
    """Projects of the app: those listed by the root solution, else the root project file."""
    entries = sorted(os.listdir(app_dir))
    solutions = [e for e in entries if e.endswith(".sln")]
    projects = [e for e in entries if e.endswith(PROJECT_EXTENSIONS)]
    if len(solutions) > 1:
        raise DotnetError(f"more than one solution file at the app root: {', '.join(solutions)}")
    if solutions:
        with open(os.path.join(app_dir, solutions[0]), encoding="utf-8-sig") as fh:
            listed = _SLN_PROJECT.findall(fh.read())
        rels = [p.replace("\\", "/") for p in listed if p.endswith(PROJECT_EXTENSIONS)]
        missing = [p for p in rels if not os.path.isfile(os.path.join(app_dir, p))]
        if missing:
            raise DotnetError(f"{solutions[0]} lists missing project files: {', '.join(missing)}")
        if not rels:
            raise DotnetError(f"{solutions[0]} lists no project files")
        return [parse_project(app_dir, p) for p in rels]
    if len(projects) > 1:
        raise DotnetError(
            f"more than one project file at the app root ({', '.join(projects)}); "
            "add a solution file (.sln) that lists the projects"
        )
    if not projects:
        raise DotnetError("no .sln, .csproj, .fsproj or .vbproj file at the app root")
    return [parse_project(app_dir, projects[0])]


def process_types(projects: list[Project]) -> dict[str, str]:
    """Process types for executable projects, named by Heroku's rule."""
    runnable = [p for p in projects if p.kind in ("web", "worker", "console")]
    webs = [p for p in runnable if p.kind == "web"]
    types: dict[str, str] = {}
    for project in runnable:
        if project.kind == "web" and len(webs) == 1:
            name = "web"
        else:
            name = process_type_name(project.assembly_name)
        if not name:
            continue
        command = f"cd {project.directory}/bin/publish; ./{project.assembly_name}"
        if project.kind == "web":
            command += " --urls http://*:$PORT"
        types.setdefault(name, command)
    return types


def choose_sdk(app_dir: str, projects: list[Project]) -> tuple[str, str]:
    """(sdk version, why) from global.json or the projects' target frameworks."""
    global_json = os.path.join(app_dir, "global.json")
    if os.path.isfile(global_json):
        try:
            with open(global_json, encoding="utf-8-sig") as fh:
                data = json.load(fh)
        except (ValueError, OSError) as exc:
            raise DotnetError(f"global.json is not valid JSON: {exc}") from exc
        sdk = data.get("sdk") if isinstance(data, dict) else None
        if isinstance(sdk, dict) and isinstance(sdk.get("version"), str):
            roll = sdk.get("rollForward")
            if roll is not None and not isinstance(roll, str):
                raise DotnetError("global.json sdk.rollForward must be a string")
            return select_sdk(sdk["version"], roll), "global.json"
    frameworks = [f for p in projects for f in p.target_frameworks]
    if not frameworks:
        raise DotnetError("no global.json sdk.version and no TargetFramework in the projects")
    sdks = [sdk_for_framework(f) for f in frameworks]
    best = max(sdks, key=lambda v: SdkVersion.parse(v).key)
    return best, f"target framework {', '.join(sorted(set(frameworks)))}"


def installed_sdks(dotnet_root: str | None = None) -> list[str]:
    """SDK versions installed under DOTNET_ROOT (or next to `dotnet` on PATH)."""
    roots = [dotnet_root] if dotnet_root else []
    for env_name in ("SPRUCE_DOTNET_ROOT", "DOTNET_ROOT"):
        if os.environ.get(env_name):
            roots.append(os.environ[env_name])
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        exe = os.path.join(directory, "dotnet")
        if directory and os.path.isfile(exe):
            roots.append(os.path.dirname(os.path.realpath(exe)))
    roots.extend(["/usr/share/dotnet", "/usr/lib/dotnet", "/opt/dotnet"])
    found: list[str] = []
    for root in roots:
        sdk_dir = os.path.join(root, "sdk")
        if os.path.isdir(sdk_dir):
            found.extend(v for v in os.listdir(sdk_dir) if re.fullmatch(r"\d+\.\d+\.\d+", v))
    return sorted(set(found))


def missing_sdk_message(sdk: str, installed: list[str]) -> str | None:
    """The build error when `sdk` is not installed (the same words on Cedar and Fir)."""
    if sdk in installed:
        return None
    return (
        f".NET SDK {sdk} is required but is not installed on this platform.\n"
        f"Installed .NET SDKs: {', '.join(installed) or 'none'}"
    )


def dotnet_executable(sdk: str) -> str:
    """The `dotnet` of the installation that holds `sdk` (else `dotnet` on PATH)."""
    for root in (
        os.environ.get("SPRUCE_DOTNET_ROOT"),
        os.environ.get("DOTNET_ROOT"),
        "/usr/share/dotnet",
        "/usr/lib/dotnet",
        "/opt/dotnet",
    ):
        if root and os.path.isdir(os.path.join(root, "sdk", sdk)):
            return os.path.join(root, "dotnet")
    return "dotnet"


def publish_argv(dotnet: str, project: Project, app_dir: str) -> tuple[list[str], str]:
    """`dotnet publish` of one project into <project dir>/bin/publish (argv, output dir)."""
    out = os.path.join(app_dir, project.directory, "bin", "publish")
    return [dotnet, "publish", project.path, "--configuration", "Release", "--output", out], out
