"""app.json: the manifest applied when an app is created from a repository.

`parse_app_json` validates the parts Spruce uses (name, description, env, formation, addons,
buildpacks, scripts, environments, stack) and reports every problem with its path, e.g.
`env.SECRET_KEY.generator: must be "secret"`. `resolve_env` turns the env section plus the
values a user supplied into config vars.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

_VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PROCESS_TYPE = re.compile(r"^[a-zA-Z0-9_-]+$")


class AppJsonError(ValueError):
    """app.json is unusable; `errors` lists each problem as `path: message`."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__("app.json is invalid:\n  " + "\n  ".join(errors))


@dataclass
class EnvVarSpec:
    description: str | None = None
    value: str | None = None
    required: bool = True
    generator: str | None = None  # only "secret"


@dataclass
class FormationSpec:
    quantity: int = 1
    size: str | None = None


@dataclass
class AddonSpec:
    plan: str  # "heroku-postgresql" or "heroku-postgresql:essential-0"
    as_name: str | None = None  # attachment name ("as")
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class AppManifest:
    name: str | None = None
    description: str | None = None
    keywords: list[str] = field(default_factory=list)
    website: str | None = None
    repository: str | None = None
    logo: str | None = None
    success_url: str | None = None
    env: dict[str, EnvVarSpec] = field(default_factory=dict)
    formation: dict[str, FormationSpec] = field(default_factory=dict)
    addons: list[AddonSpec] = field(default_factory=list)
    buildpacks: list[str] = field(default_factory=list)  # the urls, in order
    scripts: dict[str, str] = field(default_factory=dict)  # postdeploy, pr-predestroy
    environments: dict[str, Any] = field(default_factory=dict)
    stack: str | None = None


def _opt_str(data: dict[str, Any], key: str, path: str, errors: list[str]) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        errors.append(f"{path}{key}: must be a string")
        return None
    return value


def _parse_env(raw: Any, errors: list[str]) -> dict[str, EnvVarSpec]:
    if not isinstance(raw, dict):
        errors.append("env: must be an object of VAR: {description, value, required, generator}")
        return {}
    env: dict[str, EnvVarSpec] = {}
    for name, spec in raw.items():
        path = f"env.{name}"
        if not _VAR_NAME.match(name):
            errors.append(f"{path}: not a valid config var name")
            continue
        if isinstance(spec, str):  # shorthand: "VAR": "value"
            env[name] = EnvVarSpec(value=spec)
            continue
        if not isinstance(spec, dict):
            errors.append(f"{path}: must be a string or an object")
            continue
        unknown = set(spec) - {"description", "value", "required", "generator"}
        if unknown:
            errors.append(f"{path}: unknown keys {', '.join(sorted(unknown))}")
        value = spec.get("value")
        if value is not None and not isinstance(value, str):
            errors.append(f"{path}.value: must be a string")
            value = None
        required = spec.get("required", True)
        if not isinstance(required, bool):
            errors.append(f"{path}.required: must be true or false")
            required = True
        generator = spec.get("generator")
        if generator is not None and generator != "secret":
            errors.append(f'{path}.generator: must be "secret"')
            generator = None
        env[name] = EnvVarSpec(
            description=_opt_str(spec, "description", path + ".", errors),
            value=value,
            required=required,
            generator=generator,
        )
    return env


def _parse_formation(raw: Any, errors: list[str]) -> dict[str, FormationSpec]:
    if not isinstance(raw, dict):
        errors.append("formation: must be an object of process type: {quantity, size}")
        return {}
    formation: dict[str, FormationSpec] = {}
    for ptype, spec in raw.items():
        path = f"formation.{ptype}"
        if not _PROCESS_TYPE.match(ptype):
            errors.append(f"{path}: not a valid process type name")
            continue
        if not isinstance(spec, dict):
            errors.append(f"{path}: must be an object with quantity and/or size")
            continue
        quantity = spec.get("quantity", 1)
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 0:
            errors.append(f"{path}.quantity: must be a whole number >= 0")
            quantity = 1
        formation[ptype] = FormationSpec(
            quantity=quantity, size=_opt_str(spec, "size", path + ".", errors)
        )
    return formation


def _parse_addons(raw: Any, errors: list[str]) -> list[AddonSpec]:
    if not isinstance(raw, list):
        errors.append('addons: must be a list of "service:plan" strings or {plan, as, options}')
        return []
    addons = []
    for i, item in enumerate(raw):
        path = f"addons[{i}]"
        if isinstance(item, str) and item:
            addons.append(AddonSpec(plan=item))
        elif isinstance(item, dict) and isinstance(item.get("plan"), str) and item["plan"]:
            options = item.get("options", {})
            if not isinstance(options, dict):
                errors.append(f"{path}.options: must be an object")
                options = {}
            addons.append(
                AddonSpec(
                    plan=item["plan"],
                    as_name=_opt_str(item, "as", path + ".", errors),
                    options=options,
                )
            )
        else:
            errors.append(f"{path}: must be a plan string or an object with a plan")
    return addons


def _parse_buildpacks(raw: Any, errors: list[str]) -> list[str]:
    if not isinstance(raw, list):
        errors.append("buildpacks: must be a list of {url}")
        return []
    urls = []
    for i, item in enumerate(raw):
        if isinstance(item, dict) and isinstance(item.get("url"), str) and item["url"].strip():
            urls.append(item["url"].strip())
        else:
            errors.append(f"buildpacks[{i}]: must be an object with a url")
    return urls


def _parse_scripts(raw: Any, errors: list[str]) -> dict[str, str]:
    if not isinstance(raw, dict):
        errors.append("scripts: must be an object such as {postdeploy: COMMAND}")
        return {}
    scripts = {}
    for name, value in raw.items():
        if isinstance(value, dict) and isinstance(value.get("command"), str):
            value = value["command"]  # {"command": ..., "size": ...} form
        if not isinstance(value, str):
            errors.append(f"scripts.{name}: must be a command string")
            continue
        scripts[name] = value
    return scripts


ENVIRONMENT_KEYS = ("env", "formation", "addons", "buildpacks", "scripts", "stack")


def _in_environment(data: dict[str, Any], environment: str) -> dict[str, Any]:
    """app.json as one environment sees it (Heroku's `environments.review`, `.test`): the
    environment's env vars and formation entries are merged over the top level's, its
    addons, buildpacks, scripts and stack replace them."""
    envs = data.get("environments")
    section = envs.get(environment) if isinstance(envs, dict) else None
    if section is None:
        return data
    if not isinstance(section, dict):
        raise AppJsonError([f"environments.{environment}: must be an object"])
    merged = dict(data)
    for key in ENVIRONMENT_KEYS:
        if key not in section:
            continue
        base, over = data.get(key), section[key]
        if key in ("env", "formation") and isinstance(base, dict) and isinstance(over, dict):
            merged[key] = {**base, **over}
        else:
            merged[key] = over
    return merged


def parse_app_json(text: str, environment: str | None = None) -> AppManifest:
    """Parse and validate app.json text; raise AppJsonError listing every problem. With
    `environment` (e.g. "review"), that section of `environments` applies on top."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AppJsonError(
            [f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"]
        ) from exc
    if not isinstance(data, dict):
        raise AppJsonError(["the top level must be a JSON object"])
    if environment is not None:
        data = _in_environment(data, environment)
    errors: list[str] = []
    manifest = AppManifest(
        name=_opt_str(data, "name", "", errors),
        description=_opt_str(data, "description", "", errors),
        website=_opt_str(data, "website", "", errors),
        repository=_opt_str(data, "repository", "", errors),
        logo=_opt_str(data, "logo", "", errors),
        success_url=_opt_str(data, "success_url", "", errors),
        stack=_opt_str(data, "stack", "", errors),
    )
    keywords = data.get("keywords", [])
    if isinstance(keywords, list) and all(isinstance(k, str) for k in keywords):
        manifest.keywords = keywords
    else:
        errors.append("keywords: must be a list of strings")
    if "env" in data:
        manifest.env = _parse_env(data["env"], errors)
    if "formation" in data:
        manifest.formation = _parse_formation(data["formation"], errors)
    if "addons" in data:
        manifest.addons = _parse_addons(data["addons"], errors)
    if "buildpacks" in data:
        manifest.buildpacks = _parse_buildpacks(data["buildpacks"], errors)
    if "scripts" in data:
        manifest.scripts = _parse_scripts(data["scripts"], errors)
    environments = data.get("environments", {})
    if isinstance(environments, dict):
        manifest.environments = environments
    else:
        errors.append("environments: must be an object")
    if errors:
        raise AppJsonError(errors)
    return manifest


def generate_secret() -> str:
    """What `generator: secret` produces: 64 random hex characters."""
    return secrets.token_hex(32)


def resolve_env(manifest: AppManifest, given: dict[str, str]) -> dict[str, str]:
    """Config vars for a new app: given values win, then generators, then defaults.

    Raises AppJsonError naming every required variable that has no value (values themselves
    are never included in messages).
    """
    resolved: dict[str, str] = {}
    missing = []
    for name, spec in manifest.env.items():
        if name in given and given[name] != "":
            resolved[name] = given[name]
        elif spec.generator == "secret":
            resolved[name] = generate_secret()
        elif spec.value is not None:
            resolved[name] = spec.value
        elif spec.required:
            hint = f" ({spec.description})" if spec.description else ""
            missing.append(f"env.{name}: required config var has no value{hint}")
    if missing:
        raise AppJsonError(missing)
    for name, value in given.items():
        if name not in manifest.env:
            if not _VAR_NAME.match(name):
                raise AppJsonError([f"{name}: not a valid config var name"])
            resolved[name] = value
    return resolved
