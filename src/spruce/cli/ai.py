"""ai:* — Managed Inference and Agents, as Heroku's AI plugin (@heroku/plugin-ai) has them.

Platform API calls for the add-on (heroku-inference); the model itself is called on the
inference host named by the attachment's `<ALIAS>_URL`, with its `<ALIAS>_KEY`.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

import click
import httpx

from .base import app_option, cli, client
from .client import Client, CLIError
from .dynos import _ssl_context
from .output import action, done, key_values, print_json, styled_header, table

SERVICE = os.environ.get("HEROKU_INFERENCE_ADDON", "heroku-inference")
DOCS = "https://devcenter.heroku.com/articles/heroku-inference-cli-commands"


def _q(s: str) -> str:
    return quote(s, safe="")


class Resource:
    """A model resource as an app sees it: its attachment's URL, key and model."""

    def __init__(
        self, c: Client, attachment: dict[str, Any], plan: str, config: dict[str, str]
    ) -> None:
        self.attachment = attachment
        alias = attachment["name"]
        self.alias = alias
        self.addon_id = attachment["addon"]["id"]
        self.addon_name = attachment["addon"]["name"]
        self.url = config.get(f"{alias}_URL", "")
        self.key = config.get(f"{alias}_KEY", "")
        self.model_id = config.get(f"{alias}_MODEL_ID") or plan.partition(":")[2]
        if not self.url or not self.key:
            raise CLIError(
                f"Model resource {self.addon_name} isn't fully provisioned on "
                f"{attachment['app']['name']}."
            )
        self._ctx = _ssl_context(c)

    def http(self, timeout: float = 300) -> httpx.Client:
        return httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {self.key}"},
            verify=self._ctx,
            timeout=timeout,
        )

    def call(self, method: str, path: str, body: Any = None) -> Any:
        try:
            with self.http() as h:
                r = h.request(method, path, json=body)
        except httpx.HTTPError as e:
            raise CLIError(f"The inference host {self.url} could not be reached: {e}") from None
        if r.status_code >= 400:
            try:
                message = r.json().get("error", {}).get("message") or r.text
            except ValueError:
                message = r.text
            raise CLIError(f"HTTP Error {r.status_code} for {method} {self.url}{path}: {message}")
        return r.json()


def resolve(c: Client, app: str, identity: str) -> Resource:
    try:
        found = c.post(
            "/actions/addon-attachments/resolve", {"addon_attachment": identity, "app": app}
        )
    except CLIError:
        raise CLIError(
            f"We can't find a model resource called {identity} on {app}.\n"
            f"Use spruce ai:models:info --app {app} to see a list of model resources."
        ) from None
    addons = {a["addon"]["id"]: c.get(f"/addons/{_q(a['addon']['id'])}") for a in found}
    found = [a for a in found if addons[a["addon"]["id"]]["addon_service"]["name"] == SERVICE]
    if not found:
        raise CLIError(f"We can't find a model resource called {identity} on {app}.")
    if len(found) > 1:
        names = ", ".join(a["name"] for a in found)
        raise CLIError(
            f"Multiple model resources match {identity} on {app}: {names}.\n"
            "Specify the model resource by its alias instead."
        )
    att = found[0]
    plan = addons[att["addon"]["id"]]["plan"]["name"]
    return Resource(c, att, plan, c.get(f"/apps/{_q(att['app']['name'])}/config-vars"))


def _catalogue(c: Client) -> list[dict[str, Any]]:
    service = c.get(f"/addon-services/{_q(SERVICE)}")
    plans = c.get_all(f"/addon-services/{_q(service['id'])}/plans")
    return [p for p in plans if p["name"].partition(":")[2] != "standard"]


def _model_type(c: Client, model: str) -> str:
    for p in _catalogue(c):
        if p["name"].partition(":")[2] == model:
            return str(p.get("limits", {}).get("type", "text-to-text"))
    raise CLIError(f"Unsupported model type: {model} is not in this platform's catalogue.")


def _opts(opts: str | None, optfile: str | None) -> dict[str, Any]:
    text = Path(optfile).read_text() if optfile else opts
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError as e:
        raise CLIError(f"--opts/--optfile must be a JSON object: {e}") from None
    if not isinstance(value, dict):
        raise CLIError("--opts/--optfile must be a JSON object.")
    return value


@cli.command("ai:models:list")
def models_list() -> None:
    """List the models this platform offers (plans of heroku-inference)."""
    rows = [
        (p["name"].partition(":")[2], p.get("limits", {}).get("type", ""), "us")
        for p in _catalogue(client())
    ]
    table(rows, ["Model", "Type", "Supported regions"])


@cli.command("ai:models:create")
@click.argument("model")
@app_option
@click.option("--as", "as_name", help="alias of the model resource (its config var prefix)")
@click.option("--confirm", help="overwrite existing config vars or existing attachment")
def models_create(app: str, model: str, as_name: str | None, confirm: str | None) -> None:
    """Provision access to a model and set the app's <ALIAS>_URL, _KEY and _MODEL_ID."""
    c = client()
    body: dict[str, Any] = {"plan": {"name": f"{SERVICE}:{model}"}, "config": {}}
    if as_name:
        body["attachment"] = {"name": as_name}
    if confirm:
        body["confirm"] = confirm
    action(f"Creating {SERVICE}:{model} on {app}")
    addon = c.post(f"/apps/{_q(app)}/addons", body)
    done()
    click.echo(f"Resource name: {addon['name']}")
    if as_name:
        click.echo(f"Resource alias: {as_name.upper()}")
    click.echo(f"Use spruce config -a {app} to view model config vars associated with this app.")


@cli.command("ai:models:info")
@click.argument("resource", required=False)
@app_option
def models_info(app: str, resource: str | None) -> None:
    """The model resources of an app: model, readiness, speed, usage."""
    c = client()
    if resource:
        names = [resource]
    else:
        addons = c.get_all(f"/apps/{_q(app)}/addons")
        names = [a["name"] for a in addons if a["addon_service"]["name"] == SERVICE]
        if not names:
            raise CLIError(f"No model resources on {app}.")
    for name in names:
        r = resolve(c, app, name)
        info = r.call("GET", f"/models/{_q(r.addon_id)}")
        usage = c.get(f"/addons/{_q(r.addon_id)}/actions/info").get("info", [])
        styled_header(str(info.get("model_id", r.model_id)))
        pairs: list[tuple[str, Any]] = [
            ("Avg Performance", info.get("avg_performance", "")),
            ("Base Model ID", info.get("model_id", r.model_id)),
            ("Model Alias", r.alias),
            ("Model Resource ID", r.addon_id),
            ("Ready", info.get("ready", "")),
        ]
        pairs += [(i["name"], i["values"][0]) for i in usage if i["name"].startswith("Usage")]
        key_values(pairs)
        click.echo()


@cli.command("ai:models:attach")
@click.argument("resource")
@click.option("-s", "--source-app", required=True, help="the app that owns the model resource")
@click.option("-t", "--target-app", required=True, help="the app to attach it to")
@click.option("--as", "as_name", help="alias in the target app")
@click.option("--confirm", help="overwrite an existing alias")
def models_attach(
    resource: str, source_app: str, target_app: str, as_name: str | None, confirm: str | None
) -> None:
    """Attach a model resource to another app (its dynos become an agent's targets)."""
    c = client()
    r = resolve(c, source_app, resource)
    body: dict[str, Any] = {"addon": {"name": r.addon_name}, "app": {"name": target_app}}
    if as_name:
        body["name"] = as_name
    if confirm:
        body["confirm"] = confirm
    action(f"Attaching {r.addon_name} to {target_app}")
    att = c.post("/addon-attachments", body)
    done()
    click.echo(f"Model alias: {att['name']}")


@cli.command("ai:models:detach")
@click.argument("alias")
@app_option
def models_detach(app: str, alias: str) -> None:
    """Detach a model resource from an app (its config vars go)."""
    c = client()
    try:
        att = c.get(f"/apps/{_q(app)}/addon-attachments/{_q(alias)}")
    except CLIError:
        raise CLIError(f"We can't find the model alias {alias}. Check your spelling.") from None
    action(f"Detaching {att['name']} from {app}")
    c.delete(f"/addon-attachments/{_q(att['id'])}")
    done()


@cli.command("ai:models:destroy")
@click.argument("resource")
@app_option
@click.option("-c", "--confirm", help="the app's name, to confirm")
@click.option("-f", "--force", is_flag=True, help="also when attached to other apps")
def models_destroy(app: str, resource: str, confirm: str | None, force: bool) -> None:
    """Destroy a model resource: its key stops working."""
    if confirm != app:
        raise CLIError(f"Confirm destroying the model resource by passing --confirm {app}.")
    c = client()
    r = resolve(c, app, resource)
    action(f"Destroying {r.addon_name}")
    c.delete(f"/apps/{_q(app)}/addons/{_q(r.addon_id)}", {"force": force})
    done()


@cli.command("ai:models:call")
@click.argument("resource", default="INFERENCE")
@app_option
@click.option("-p", "--prompt", help="the user message (chat), text (embeddings) or prompt")
@click.option("--opts", help="request fields as JSON")
@click.option("--optfile", type=click.Path(exists=True, dir_okay=False))
@click.option("-m", "--model", help="the model (plans without a fixed model)")
@click.option("-j", "--json", "as_json", is_flag=True, help="print the whole response")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="write images here")
def models_call(
    app: str,
    resource: str,
    prompt: str | None,
    opts: str | None,
    optfile: str | None,
    model: str | None,
    as_json: bool,
    output: str | None,
) -> None:
    """Call a model: a chat completion, embeddings or an image, by the model's type."""
    if not prompt and not opts and not optfile:
        raise CLIError("You must provide either --prompt, --optfile, or --opts.")
    c = client()
    r = resolve(c, app, resource)
    model_id = model or r.model_id
    if not model_id:
        raise CLIError("You must provide the --model flag to specify which model to invoke.")
    body = _opts(opts, optfile)
    kind = _model_type(c, model_id)
    if kind == "text-to-embedding":
        result = r.call("POST", "/v1/embeddings", {**body, "input": prompt, "model": model_id})
        text = ",".join(str(v) for v in result["data"][0]["embedding"])
    elif kind == "text-to-image":
        result = r.call(
            "POST", "/v1/images/generations", {**body, "prompt": prompt, "model": model_id}
        )
        image = result["data"][0].get("b64_json", "")
        if output and image:
            Path(output).write_bytes(base64.b64decode(image))
            text = f"Image written to {output}"
        else:
            text = image
    else:
        messages = [
            *body.pop("messages", []),
            *([{"role": "user", "content": prompt}] * bool(prompt)),
        ]
        result = r.call(
            "POST", "/v1/chat/completions", {**body, "messages": messages, "model": model_id}
        )
        text = result["choices"][0]["message"].get("content") or ""
    if as_json:
        print_json(result)
    else:
        click.echo(text)


@cli.command("ai:agents:call")
@click.argument("resource", default="INFERENCE")
@app_option
@click.option("-p", "--prompt", help="the user message")
@click.option("--messages", help="the messages as a JSON list")
@click.option("--opts", help="more request fields as JSON (tools, ...)")
@click.option("--optfile", type=click.Path(exists=True, dir_okay=False))
@click.option("-j", "--json", "as_json", is_flag=True, help="print each event's JSON")
def agents_call(
    app: str,
    resource: str,
    prompt: str | None,
    messages: str | None,
    opts: str | None,
    optfile: str | None,
    as_json: bool,
) -> None:
    """Run an agent: the model calls tools (commands in one-off dynos, MCP servers)."""
    if not prompt and not messages:
        raise CLIError("You must provide either --prompt or --messages.")
    c = client()
    r = resolve(c, app, resource)
    msgs = json.loads(messages) if messages else [{"role": "user", "content": prompt}]
    body = {**_opts(opts, optfile), "messages": msgs, "model": r.model_id}
    try:
        with (
            r.http() as h,
            h.stream(
                "POST", "/v1/agents/heroku", json=body, headers={"Accept": "text/event-stream"}
            ) as resp,
        ):
            if resp.status_code >= 400:
                resp.read()
                raise CLIError(f"HTTP Error {resp.status_code}: {resp.text}")
            for line in resp.iter_lines():
                if not line.startswith("data:") or line[5:].strip() == "[DONE]":
                    continue
                event = json.loads(line[5:])
                if as_json:
                    click.echo(json.dumps(event))
                    continue
                for choice in event.get("choices", []):
                    content = choice.get("message", {}).get("content")
                    if content:
                        click.echo(content)
    except httpx.HTTPError as e:
        raise CLIError(f"The agent call failed: {e}") from None


@cli.command("ai:tools:list")
@click.argument("resource", default="INFERENCE")
@app_option
@click.option("--json", "as_json", is_flag=True)
def tools_list(app: str, resource: str, as_json: bool) -> None:
    """The MCP tools registered with a model resource (process types named mcp*)."""
    c = client()
    servers = resolve(c, app, resource).call("GET", "/v1/mcp/servers")
    tools = [t for s in servers for t in s.get("tools", [])]
    if as_json:
        print_json(tools)
    elif not tools:
        click.echo("No AI tools are currently available for this app")
    else:
        table(
            [(t["namespaced_name"], t.get("description", "")) for t in tools],
            ["Tool", "Description"],
        )


@cli.command("ai:mcp")
@click.argument("resource", default="INFERENCE")
@app_option
@click.option("--json", "as_json", is_flag=True)
def mcp_url(app: str, resource: str, as_json: bool) -> None:
    """The MCP toolkit's URL: one Streamable-HTTP endpoint over the registered servers."""
    url = resolve(client(), app, resource).url + "/mcp"
    if as_json:
        print_json({"mcp_url": url})
    else:
        click.echo(url)


@cli.command("ai:docs")
def docs() -> None:
    """Where the documentation is."""
    click.echo(os.environ.get("HEROKU_AI_DOCS_URL", DOCS))
    click.echo("This platform's own guide: docs/inference.md in Spruce's source.")
