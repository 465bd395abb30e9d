"""MCP resources (apps and their releases) and prompts (deploy a folder, a crashing app)."""

from __future__ import annotations

import json
import re
from typing import Any

import mcp_types as types

from spruce.api import views
from spruce.services import Services
from spruce.services.errors import InvalidParams
from spruce.services.views import AppView, UserView

APP_URI = re.compile(r"^spruce://apps/([^/]+)(/releases)?$")

TEMPLATES = [
    types.ResourceTemplate(
        name="app",
        uri_template="spruce://apps/{app}",
        description="An app: its settings, URLs and owner (the Platform API's app).",
        mime_type="application/json",
    ),
    types.ResourceTemplate(
        name="releases",
        uri_template="spruce://apps/{app}/releases",
        description="An app's releases, newest first.",
        mime_type="application/json",
    ),
]


def app_resources(apps: list[AppView]) -> list[types.Resource]:
    out: list[types.Resource] = []
    for app in apps:
        out.append(
            types.Resource(
                name=app.name,
                uri=f"spruce://apps/{app.name}",
                description=f"The app {app.name}",
                mime_type="application/json",
            )
        )
        out.append(
            types.Resource(
                name=f"{app.name} releases",
                uri=f"spruce://apps/{app.name}/releases",
                description=f"Releases of {app.name}",
                mime_type="application/json",
            )
        )
    return out


def read_resource(services: Services, actor: UserView, uri: str) -> str:
    m = APP_URI.match(str(uri))
    if not m:
        raise InvalidParams(f"Unknown resource {uri}: use spruce://apps/APP[/releases].")
    app = services.apps.get(actor, m.group(1))
    if m.group(2):
        rels = services.releases.list(app.id)
        return json.dumps([views.release_json(r) for r in reversed(rels)], indent=1)
    return json.dumps(views.app_json(app), indent=1)


def _arg(name: str, description: str, required: bool = True) -> types.PromptArgument:
    return types.PromptArgument(name=name, description=description, required=required)


PROMPTS = [
    types.Prompt(
        name="deploy-folder",
        description="Deploy a folder to a Spruce app, then check it runs.",
        arguments=[
            _arg("folder", "Absolute path of the folder to deploy."),
            _arg("app", "App name (created if it does not exist)."),
        ],
    ),
    types.Prompt(
        name="why-is-my-app-crashing",
        description="Find out why an app's dynos crash: its logs, dynos and releases.",
        arguments=[_arg("app", "App name.")],
    ),
]


def _user(text: str) -> types.PromptMessage:
    return types.PromptMessage(role="user", content=types.TextContent(text=text))


def get_prompt(name: str, args: dict[str, Any]) -> types.GetPromptResult:
    if name == "deploy-folder":
        folder, app = args.get("folder", "."), args.get("app", "")
        text = (
            f"Deploy the folder {folder} to the Spruce app {app}.\n"
            "1. Look at the folder to see what it is (a Procfile, requirements.txt, "
            "package.json ...) and write an app.json for it (name, env, formation, addons).\n"
            f"2. Call deploy_to_heroku with name={app!r}, rootUri={folder!r} and appJson.\n"
            "3. When it succeeds, call ps_list to see its dynos come up, and get_app_logs to "
            "check it started cleanly; if not, read the build output and fix what it says."
        )
        return types.GetPromptResult(description="Deploy a folder", messages=[_user(text)])
    if name == "why-is-my-app-crashing":
        app = args.get("app", "")
        text = (
            f"The Spruce app {app} is crashing. Find out why:\n"
            f"1. ps_list app={app!r}: which dynos are crashed, and since when.\n"
            f"2. get_app_logs app={app!r}: look for heroku[...] lines with error codes (H10 "
            "app crashed, R10 boot timeout, R14 memory) and the app's own tracebacks just "
            "before them.\n"
            f"3. list_releases app={app!r}: did a recent release or config change start it? "
            "If so, compare with the release before it (and consider rollback).\n"
            "Explain the cause in two or three sentences and propose the fix."
        )
        return types.GetPromptResult(description="Why is my app crashing", messages=[_user(text)])
    raise InvalidParams(f"Unknown prompt {name!r}.")
