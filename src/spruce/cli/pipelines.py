"""pipelines:* and reviewapps:* (Heroku CLI's verbs), and pipelines:diff over Spruce's git."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

import click
import httpx

from .base import app_option, cli, client
from .client import Client, CLIError
from .output import action, done, key_values, print_json, styled_header, table, warn

STAGES = ("development", "staging", "production")
ALL_STAGES = ("test", "review", "development", "staging", "production")
_SUFFIXES = (
    (("-dev", "-development", "-uat", "-tst", "-test", "-qa"), "development"),
    (("-stg", "-staging"), "staging"),
    (("-prd", "-prod", "-production", "-admin", "-demo"), "production"),
)


def _q(s: str) -> str:
    return quote(s, safe="")


def infer(app: str) -> tuple[str, str]:
    """Pipeline name and stage guessed from an app name, as Heroku's CLI guesses them."""
    for suffixes, stage in _SUFFIXES:
        for suffix in suffixes:
            if app.endswith(suffix) and len(app) > len(suffix):
                return app[: -len(suffix)], stage
    return app, "production"


def find_pipeline(c: Client, ident: str) -> dict[str, Any]:
    """A pipeline by id or name; a name shared by several is refused with their ids."""
    found: list[dict[str, Any]] = c.get(f"/pipelines?eq[name]={_q(ident)}")
    if not found:
        try:
            pipeline: dict[str, Any] = c.get(f"/pipelines/{_q(ident)}")
            return pipeline
        except CLIError:
            raise CLIError("Pipeline not found") from None
    if len(found) > 1:
        ids = ", ".join(p["id"] for p in found)
        raise CLIError(f"There are several pipelines named {ident}: use one of their ids ({ids}).")
    return found[0]


def pipeline_apps(c: Client, pipeline_id: str) -> list[dict[str, Any]]:
    couplings = c.get(f"/pipelines/{pipeline_id}/pipeline-couplings")
    by_app = {x["app"]["id"]: x for x in couplings}
    apps = c.post("/filters/apps", {"in": {"id": list(by_app)}}) if by_app else []
    return [a | {"stage": by_app[a["id"]]["stage"]} for a in apps]


def _owner(c: Client, pipeline: dict[str, Any]) -> str:
    owner = pipeline.get("owner") or {}
    if owner.get("type") == "team":
        try:
            return f"{c.get('/teams/' + _q(owner['id']))['name']} (team)"
        except CLIError:
            return str(owner.get("id"))
    me = c.get("/account")
    return str(me["email"]) if me["id"] == owner.get("id") else str(owner.get("id"))


@cli.command("pipelines")
@click.option("--json", "as_json", is_flag=True, help="output in json format")
def pipelines_list(as_json: bool) -> None:
    """List pipelines you have access to."""
    pipelines = client().get_all("/pipelines")
    if as_json:
        print_json(pipelines)
        return
    styled_header("My Pipelines")
    for p in sorted(pipelines, key=lambda p: p["name"]):
        click.echo(p["name"])


@cli.command("pipelines:create")
@click.argument("name", required=False)
@app_option
@click.option("-s", "--stage", type=click.Choice(STAGES), help="stage of first app in pipeline")
@click.option("-t", "--team", help="the team which will own the apps")
def pipelines_create(name: str | None, app: str, stage: str | None, team: str | None) -> None:
    """Create a new pipeline with APP as its first app."""
    guess_name, guess_stage = infer(app)
    name, stage = name or guess_name, stage or guess_stage
    c = client()
    owner_id = c.get(f"/teams/{_q(team)}")["id"] if team else c.get("/account")["id"]
    generation = c.get(f"/apps/{_q(app)}")["generation"]["name"]
    action(f"Creating {name} pipeline", err=True)
    body = {
        "name": name,
        "owner": {"id": owner_id, "type": "team" if team else "user"},
        "generation": {"name": generation},
    }
    pipeline = c.post("/pipelines", body)
    done()
    action(f"Adding ⬢ {app} to {pipeline['name']} pipeline as {stage}", err=True)
    c.post("/pipeline-couplings", {"app": app, "pipeline": pipeline["id"], "stage": stage})
    done()


@cli.command("pipelines:add")
@click.argument("pipeline")
@app_option
@click.option("-s", "--stage", type=click.Choice(ALL_STAGES), help="stage of app")
def pipelines_add(pipeline: str, app: str, stage: str | None) -> None:
    """Add this app to a pipeline."""
    c = client()
    p = find_pipeline(c, pipeline)
    stage = stage or infer(app)[1]
    action(f"Adding ⬢ {app} to {p['name']} pipeline as {stage}", err=True)
    c.post("/pipeline-couplings", {"app": app, "pipeline": p["id"], "stage": stage})
    done()


@cli.command("pipelines:remove")
@app_option
def pipelines_remove(app: str) -> None:
    """Remove this app from its pipeline."""
    c = client()
    coupling = c.get(f"/apps/{_q(app)}/pipeline-couplings")
    action(f"Removing ⬢ {app}", err=True)
    c.delete(f"/pipeline-couplings/{coupling['id']}")
    done()


@cli.command("pipelines:update")
@app_option
@click.option("-s", "--stage", required=True, type=click.Choice(ALL_STAGES), help="new stage")
def pipelines_update(app: str, stage: str) -> None:
    """Update the app's stage in its pipeline."""
    c = client()
    coupling = c.get(f"/apps/{_q(app)}/pipeline-couplings")
    action(f"Changing ⬢ {app} to {stage}", err=True)
    c.patch(f"/pipeline-couplings/{coupling['id']}", {"stage": stage})
    done()


@cli.command("pipelines:rename")
@click.argument("pipeline")
@click.argument("name")
def pipelines_rename(pipeline: str, name: str) -> None:
    """Rename a pipeline."""
    c = client()
    p = find_pipeline(c, pipeline)
    action(f"Renaming {p['name']} pipeline to {name}", err=True)
    c.patch(f"/pipelines/{p['id']}", {"name": name})
    done()


@cli.command("pipelines:destroy")
@click.argument("pipeline")
def pipelines_destroy(pipeline: str) -> None:
    """Destroy a pipeline (its apps stay)."""
    c = client()
    p = find_pipeline(c, pipeline)
    action(f"Destroying {p['name']} pipeline", err=True)
    c.delete(f"/pipelines/{p['id']}")
    done()


@cli.command("pipelines:transfer")
@click.argument("owner")
@click.option("-p", "--pipeline", required=True, help="name of pipeline")
def pipelines_transfer(owner: str, pipeline: str) -> None:
    """Transfer ownership of a pipeline to you (an email) or a team."""
    c = client()
    p = find_pipeline(c, pipeline)
    if "@" in owner:
        new_owner = {"id": c.get("/account")["id"], "type": "user"}
    else:
        new_owner = {"id": c.get(f"/teams/{_q(owner)}")["id"], "type": "team"}
    action(f"Transferring {p['name']} pipeline to the {owner} account", err=True)
    c.post("/pipeline-transfers", {"pipeline": {"id": p["id"]}, "new_owner": new_owner})
    done()


@cli.command("pipelines:info")
@click.argument("pipeline")
@click.option("--json", "as_json", is_flag=True, help="output in json format")
def pipelines_info(pipeline: str, as_json: bool) -> None:
    """Show the apps of a pipeline by stage."""
    c = client()
    p = find_pipeline(c, pipeline)
    apps = pipeline_apps(c, p["id"])
    if as_json:
        print_json({"pipeline": p, "apps": apps})
        return
    styled_header(p["name"])
    click.echo(f"owner: {_owner(c, p)}")
    click.echo(f"generation: {p['generation']['name']}")
    click.echo("")
    order = {s: i for i, s in enumerate(("development", "review", "staging", "production"))}
    apps.sort(key=lambda a: (order.get(a["stage"], 9), a["name"]))
    table([[a["name"], a["stage"]] for a in apps], ["App name", "Stage"])


def _stream(url: str) -> None:
    for _ in range(100):
        try:
            with httpx.stream("GET", url, timeout=httpx.Timeout(30, read=None)) as resp:
                if resp.status_code >= 400:
                    time.sleep(1)
                    continue
                for chunk in resp.iter_text():
                    click.echo(chunk, nl=False)
                return
        except httpx.HTTPError:
            time.sleep(1)
    warn("stream release output not available")


@cli.command("pipelines:promote")
@app_option
@click.option("-t", "--to", "to", help="comma separated list of apps to promote to")
def pipelines_promote(app: str, to: str | None) -> None:
    """Promote the app's latest release to the next stage's apps (or to --to apps)."""
    c = client()
    click.echo("Fetching app info...")
    coupling = c.get(f"/apps/{_q(app)}/pipeline-couplings")
    pipeline = coupling["pipeline"]
    click.echo(f"Fetching apps from {pipeline['name']}...")
    apps = pipeline_apps(c, pipeline["id"])
    if to:
        targets = []
        for name in [n for n in to.split(",") if n]:
            if name == app:
                raise CLIError(
                    f"Cannot promote from an app to itself: {name}. Specify a different target app."
                )
            found = [a for a in apps if name in (a["name"], a["id"])]
            if not found:
                raise CLIError(f"Cannot find app ⬢ {name}")
            targets.append(found[0])
        label = f"Starting promotion to apps: {to}"
    else:
        stage = coupling["stage"]
        if stage not in STAGES[:-1]:
            raise CLIError(f"Cannot promote {app} from '{stage}' stage")
        target_stage = STAGES[STAGES.index(stage) + 1]
        targets = [a for a in apps if a["stage"] == target_stage]
        if not targets:
            raise CLIError(
                f"Cannot promote from ⬢ {app} as there are no downstream apps in "
                f"{target_stage} stage"
            )
        label = f"Starting promotion to {target_stage}"
    click.echo(f"{label}...")
    promotion = c.post(
        "/pipeline-promotions",
        {
            "pipeline": {"id": pipeline["id"]},
            "source": {"app": {"id": coupling["app"]["id"]}},
            "targets": [{"app": {"id": t["id"]}} for t in targets],
        },
    )
    click.echo("Waiting for promotion to complete...")
    path = f"/pipeline-promotions/{promotion['id']}/promotion-targets"
    results = c.get(path)
    while any(r["status"] == "pending" for r in results):
        if len(results) == 1 and results[0]["release"]:
            release = c.get(
                f"/apps/{results[0]['app']['id']}/releases/{results[0]['release']['id']}"
            )
            if release.get("output_stream_url"):
                click.echo("Running release command...")
                _stream(release["output_stream_url"])
            break
        time.sleep(1)
        results = c.get(path)
    while any(r["status"] == "pending" for r in results):
        time.sleep(1)
        results = c.get(path)
    names = {a["id"]: a["name"] for a in apps}
    lines = []
    for r in results:
        detail = r["status"] + (f" ({r['error_message']})" if r["status"] == "failed" else "")
        lines.append((names.get(r["app"]["id"], r["app"]["id"]), detail))
    if all(r["status"] == "succeeded" for r in results):
        click.echo("\nPromotion successful")
        key_values(lines)
        return
    key_values(lines)
    raise CLIError("Promotion to some apps failed")


@cli.command("pipelines:diff")
@app_option
def pipelines_diff(app: str) -> None:
    """Compare the app's released commit with its downstream apps' (in Spruce's git)."""
    c = client()
    diff = c.get(f"/apps/{_q(app)}/pipeline-diff")
    for entry in diff["comparisons"]:
        click.echo("")
        if entry["status"] in ("ahead", "behind"):
            styled_header(entry["message"])
            table(
                [[x["sha"][:7], x["date"], x["author"], x["message"]] for x in entry["commits"]],
                ["SHA", "Date", "Author", "Message"],
            )
        else:
            click.echo(entry["message"])


# -- review apps -----------------------------------------------------------------------------
def _settings_body(flags: dict[str, bool | None]) -> dict[str, bool]:
    return {k: v for k, v in flags.items() if v is not None}


@cli.command("reviewapps:enable")
@click.option("-p", "--pipeline", required=True, help="name of pipeline")
@click.option("--autodeploy", is_flag=True, help="autodeploy the review app")
@click.option("--autodestroy", is_flag=True, help="autodestroy stale review apps")
@click.option("--stale-days", type=click.IntRange(1, 30), help="days before a review app is stale")
def reviewapps_enable(
    pipeline: str, autodeploy: bool, autodestroy: bool, stale_days: int | None
) -> None:
    """Enable review apps on a pipeline."""
    c = client()
    p = find_pipeline(c, pipeline)
    body: dict[str, Any] = _settings_body(
        {
            "automatic_review_apps": True if autodeploy else None,
            "destroy_stale_apps": True if autodestroy else None,
        }
    )
    if stale_days is not None:
        body["stale_days"] = stale_days
    action("Configuring pipeline", err=True)
    c.post(f"/pipelines/{p['id']}/review-app-config", body)
    done()


@cli.command("reviewapps:disable")
@click.option("-p", "--pipeline", required=True, help="name of pipeline")
def reviewapps_disable(pipeline: str) -> None:
    """Disable review apps on a pipeline."""
    c = client()
    p = find_pipeline(c, pipeline)
    action("Configuring pipeline", err=True)
    c.delete(f"/pipelines/{p['id']}/review-app-config")
    done()


@cli.command("reviewapps")
@click.option("-p", "--pipeline", required=True, help="name of pipeline")
def reviewapps_list(pipeline: str) -> None:
    """List a pipeline's review apps."""
    c = client()
    p = find_pipeline(c, pipeline)
    rows = c.get(f"/pipelines/{p['id']}/review-apps")
    table(
        [
            [(r["app"] or {}).get("name", ""), r["branch"], r["pr_number"] or "", r["status"]]
            for r in rows
        ],
        ["App", "Branch", "PR", "Status"],
    )


@cli.command("reviewapps:create")
@click.option("-p", "--pipeline", required=True, help="name of pipeline")
@click.option("-b", "--branch", required=True, help="branch to create the review app from")
@click.option("--source-url", help="a source tarball URL (default: the branch in Spruce's git)")
@click.option("--pr", "pr_number", type=int, help="pull request number")
@click.option("--wait", is_flag=True, help="wait until the review app is created")
def reviewapps_create(
    pipeline: str, branch: str, source_url: str | None, pr_number: int | None, wait: bool
) -> None:
    """Create a review app from a branch of the pipeline's git repository (or a tarball)."""
    c = client()
    p = find_pipeline(c, pipeline)
    body: dict[str, Any] = {
        "branch": branch,
        "pipeline": p["id"],
        "source_blob": {"url": source_url or "resolve", "version": None},
    }
    if pr_number is not None:
        body["pr_number"] = pr_number
    action(f"Creating review app from {branch}", err=True)
    r = c.post("/review-apps", body)
    done()
    while wait and r["status"] in ("pending", "creating"):
        time.sleep(2)
        r = c.get(f"/review-apps/{r['id']}")
    name = (r["app"] or {}).get("name", "")
    if r["status"] == "errored":
        raise CLIError(r["message"] or "Failed to create the review app.")
    key_values([("App", name), ("Status", r["status"])])


@cli.command("reviewapps:destroy")
@app_option
def reviewapps_destroy(app: str) -> None:
    """Destroy a review app."""
    c = client()
    r = c.get(f"/apps/{_q(app)}/review-app")
    action(f"Destroying review app ⬢ {app}", err=True)
    c.delete(f"/review-apps/{r['id']}")
    done()
