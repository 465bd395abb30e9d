"""Node.js rules shared by the classic heroku/nodejs buildpack and the heroku/nodejs CNB
(python3 stdlib only): the default web process and how dependencies are installed."""

from __future__ import annotations

import json
import os


def package_json(app_dir: str) -> dict[str, object]:
    try:
        with open(os.path.join(app_dir, "package.json"), encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def has_script(app_dir: str, name: str) -> bool:
    scripts = package_json(app_dir).get("scripts")
    return isinstance(scripts, dict) and bool(scripts.get(name))


def default_web_command(app_dir: str) -> str | None:
    """`npm start` with a start script, else `node server.js` / `node index.js` if present."""
    if has_script(app_dir, "start"):
        return "npm start"
    for name in ("server.js", "index.js"):
        if os.path.isfile(os.path.join(app_dir, name)):
            return f"node {name}"
    return None


def install_plan(app_dir: str) -> list[tuple[str, list[str]]]:
    """(description, argv) steps: install from the lock file, build script, prune dev deps."""

    def has(name: str) -> bool:
        return os.path.isfile(os.path.join(app_dir, name))

    if has("pnpm-lock.yaml"):
        steps = [
            (
                "Installing node modules (pnpm-lock.yaml)",
                ["corepack", "pnpm", "install", "--frozen-lockfile"],
            )
        ]
    elif has("yarn.lock"):
        steps = [
            (
                "Installing node modules (yarn.lock)",
                ["corepack", "yarn", "install", "--frozen-lockfile"],
            )
        ]
    elif has("package-lock.json") or has("npm-shrinkwrap.json"):
        steps = [("Installing node modules (package-lock.json)", ["npm", "ci", "--include=dev"])]
    else:
        steps = [("Installing node modules (package.json)", ["npm", "install", "--include=dev"])]
    if has_script(app_dir, "build"):
        steps.append(("Running build", ["npm", "run", "build"]))
    steps.append(("Pruning devDependencies", ["npm", "prune", "--omit=dev"]))
    return steps


NPM_ENV = {
    "npm_config_update_notifier": "false",
    "npm_config_fund": "false",
    "npm_config_audit": "false",
}
