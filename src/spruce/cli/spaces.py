"""spaces:*, trusted-ips:*, outbound-rules:*, teams and members:* (Heroku CLI v10 output)."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

import click

from .base import cli, client
from .client import Client, CLIError
from .output import action, done, key_values, print_json, styled_header, table, warn


def _q(s: str) -> str:
    return quote(s, safe="")


def _space_arg(positional: str | None, flag: str | None) -> str:
    space = flag or positional
    if not space:
        raise CLIError("Space name required.")
    return space


def _space_lines(c: Client, space: dict[str, Any], with_nat: bool) -> list[tuple[str, Any]]:
    region = space["region"]
    lines: list[tuple[str, Any]] = [
        ("ID", space["id"]),
        ("Team", space["team"]["name"]),
        ("Region", region.get("description") or region["name"]),
        ("CIDR", space["cidr"]),
        ("Data CIDR", space["data_cidr"]),
        ("State", space["state"]),
        ("Shield", "on" if space["shield"] else "off"),
    ]
    if with_nat and space["state"] == "allocated":
        try:
            nat = c.get(f"/spaces/{_q(space['name'])}/nat")
        except CLIError:
            nat = None
        if nat is not None:
            ips = ", ".join(nat["sources"]) if nat["state"] == "enabled" else nat["state"]
            lines.append(("Outbound IPs", ips))
    lines += [("Generation", space["generation"]["name"]), ("Created at", space["created_at"])]
    return lines


def _get_space(c: Client, name: str) -> dict[str, Any]:
    space: dict[str, Any] = c.request(
        "GET", f"/spaces/{_q(name)}", headers={"Accept-Expansion": "region"}
    )
    return space


@cli.command("spaces")
@click.option("-t", "--team", help="team to use")
@click.option("--json", "as_json", is_flag=True, help="output in json format")
def spaces_list(team: str | None, as_json: bool) -> None:
    """List available spaces."""
    spaces = client().get_all("/spaces")
    if team:
        spaces = [s for s in spaces if s["team"]["name"] == team]
    spaces.sort(key=lambda s: s["name"])
    if as_json:
        print_json(spaces)
        return
    if not spaces:
        raise CLIError(f"No spaces in {team}." if team else "You do not have access to any spaces.")
    table(
        [
            [
                s["name"],
                s["team"]["name"],
                s["region"]["name"],
                s["state"],
                s["generation"]["name"],
                s["created_at"],
            ]
            for s in spaces
        ],
        ["Name", "Team", "Region", "State", "Generation", "Created At"],
    )


@cli.command("spaces:create")
@click.argument("name", required=False)
@click.option("-s", "--space", "space_flag", help="name of space to create")
@click.option("-t", "--team", required=True, help="team to use")
@click.option("--region", help="region name")
@click.option("--cidr", help="RFC-1918 CIDR the space will use")
@click.option("--data-cidr", help="RFC-1918 CIDR used by Heroku Data resources for the space")
@click.option(
    "--generation",
    type=click.Choice(["cedar", "fir"]),
    default="cedar",
    show_default=True,
    help="generation for the space",
)
def spaces_create(
    name: str | None,
    space_flag: str | None,
    team: str,
    region: str | None,
    cidr: str | None,
    data_cidr: str | None,
    generation: str,
) -> None:
    """Create a new space."""
    space_name = _space_arg(name, space_flag)
    body: dict[str, Any] = {"name": space_name, "team": team, "generation": generation}
    for key, value in (("region", region), ("cidr", cidr), ("data_cidr", data_cidr)):
        if value:
            body[key] = value
    c = client()
    action(f"Creating space ⬡ {space_name} in team {team}", err=True)
    space = c.post("/spaces", body)
    done()
    warn("Use spruce spaces:wait to track allocation.")
    styled_header(f"⬡ {space['name']}")
    key_values(_space_lines(c, space, with_nat=False))


@cli.command("spaces:info")
@click.argument("name", required=False)
@click.option("-s", "--space", "space_flag", help="space to get info of")
@click.option("--json", "as_json", is_flag=True, help="output in json format")
def spaces_info(name: str | None, space_flag: str | None, as_json: bool) -> None:
    """Show space info."""
    c = client()
    space = _get_space(c, _space_arg(name, space_flag))
    _print_info(c, space, as_json)


def _print_info(c: Client, space: dict[str, Any], as_json: bool) -> None:
    if as_json:
        lines = dict(_space_lines(c, space, with_nat=True))
        if "Outbound IPs" in lines:
            space = {**space, "outbound_ips": lines["Outbound IPs"]}
        print_json(space)
        return
    styled_header(f"⬡ {space['name']}")
    key_values(_space_lines(c, space, with_nat=True))


@cli.command("spaces:wait")
@click.argument("name", required=False)
@click.option("-s", "--space", "space_flag", help="space to wait for")
@click.option("-i", "--interval", type=int, default=30, show_default=True, help="seconds")
@click.option("-t", "--timeout", type=int, default=25 * 60, show_default=True, help="seconds")
@click.option("--json", "as_json", is_flag=True, help="output in json format")
def spaces_wait(
    name: str | None, space_flag: str | None, interval: int, timeout: int, as_json: bool
) -> None:
    """Wait for a space to be created."""
    space_name = _space_arg(name, space_flag)
    c = client()
    action(f"Waiting for space ⬡ {space_name} to allocate", err=True)
    deadline = time.monotonic() + timeout
    space = _get_space(c, space_name)
    while space["state"] == "allocating":
        if time.monotonic() > deadline:
            raise CLIError("Timeout waiting for space to become allocated.")
        time.sleep(max(interval, 1) if interval else 1)
        space = _get_space(c, space_name)
    done()
    _print_info(c, space, as_json)


@cli.command("spaces:rename")
@click.option("--from", "old", required=True, help="current name of space")
@click.option("--to", "new", required=True, help="desired name of space")
def spaces_rename(old: str, new: str) -> None:
    """Rename a space."""
    action(f"Renaming space from ⬡ {old} to ⬡ {new}", err=True)
    client().patch(f"/spaces/{_q(old)}", {"name": new})
    done()


@cli.command("spaces:destroy")
@click.argument("name", required=False)
@click.option("-s", "--space", "space_flag", help="space to destroy")
@click.option("--confirm", help="set to space name to bypass confirm prompt")
def spaces_destroy(name: str | None, space_flag: str | None, confirm: str | None) -> None:
    """Destroy a space."""
    space_name = _space_arg(name, space_flag)
    c = client()
    space = c.get(f"/spaces/{_q(space_name)}")
    ips = "IPv4 and IPv6" if space["generation"]["name"] == "fir" else "IPv4"
    if confirm != space_name:
        warn(
            f"Destructive Action\nThis command will destroy the space {space_name}\n"
            f"=== WARNING: Outbound {ips} IPs Will Be Reused\n"
            f"⚠️ Deleting this space frees up the following {ips} IPs for reuse."
        )
        typed = click.prompt(f"To proceed, type {space_name}", default="", show_default=False)
        if typed != space_name:
            raise CLIError(f"Confirmation {typed} did not match {space_name}. Aborted.")
    action(f"Destroying space ⬡ {space_name}", err=True)
    c.delete(f"/spaces/{_q(space_name)}")
    done()


# -- trusted IP ranges (inbound) and outbound rules ---------------------------------------
def _put_rules(c: Client, space: str, direction: str, rules: list[dict[str, Any]]) -> None:
    c.request("PUT", f"/spaces/{_q(space)}/{direction}-ruleset", {"rules": rules})


@cli.command("spaces:trusted-ips")
@click.option("-s", "--space", required=True, help="space to get inbound rules from")
@click.option("--json", "as_json", is_flag=True, help="output in json format")
def trusted_ips(space: str, as_json: bool) -> None:
    """List trusted IP ranges for a space."""
    ruleset = client().get(f"/spaces/{_q(space)}/inbound-ruleset")
    if as_json:
        print_json(ruleset)
        return
    if not ruleset["rules"]:
        styled_header(
            f"⬡ {space} has no trusted IP ranges. All inbound web requests to dynos are blocked."
        )
    else:
        styled_header("Trusted IP Ranges")
        for r in ruleset["rules"]:
            click.echo(r["source"] if r["action"] == "allow" else f"{r['source']} (deny)")
    _applied(ruleset)


def _applied(ruleset: dict[str, Any]) -> None:
    if ruleset.get("applied") is True:
        click.echo("Trusted IP rules are applied to this space.")


@cli.command("spaces:trusted-ips:add")
@click.argument("source")
@click.option("-s", "--space", required=True, help="space to add rule to")
def trusted_ips_add(source: str, space: str) -> None:
    """Add one range to the list of trusted IP ranges."""
    c = client()
    rules = c.get(f"/spaces/{_q(space)}/inbound-ruleset")["rules"]
    if any(r["source"] == source for r in rules):
        raise CLIError(f"A rule already exists for {source}.")
    rules.append({"source": source, "action": "allow"})
    _put_rules(c, space, "inbound", rules)
    click.echo(f"Added {source} to trusted IP ranges on ⬡ {space}")
    _applied(c.get(f"/spaces/{_q(space)}/inbound-ruleset"))


@cli.command("spaces:trusted-ips:remove")
@click.argument("source")
@click.option("-s", "--space", required=True, help="space to remove rule from")
def trusted_ips_remove(source: str, space: str) -> None:
    """Remove a range from the list of trusted IP ranges."""
    c = client()
    rules = c.get(f"/spaces/{_q(space)}/inbound-ruleset")["rules"]
    if not rules:
        raise CLIError("No IP ranges are configured. Nothing to do.")
    kept = [r for r in rules if r["source"] != source]
    if len(kept) == len(rules):
        raise CLIError(f"No IP range matching {source} was found.")
    _put_rules(c, space, "inbound", kept)
    click.echo(f"Removed {source} from trusted IP ranges on ⬡ {space}")
    _applied(c.get(f"/spaces/{_q(space)}/inbound-ruleset"))


@cli.command("outbound-rules")
@click.option("-s", "--space", required=True, help="space to get outbound rules from")
@click.option("--json", "as_json", is_flag=True, help="output in json format")
def outbound_rules(space: str, as_json: bool) -> None:
    """List outbound rules for a space."""
    ruleset = client().get(f"/spaces/{_q(space)}/outbound-ruleset")
    if as_json:
        print_json(ruleset)
        return
    styled_header("Outbound Rules")
    rows = [
        [i + 1, r["target"], f"{r['from_port']} - {r['to_port']}", r["protocol"]]
        for i, r in enumerate(ruleset["rules"])
    ]
    table(rows, ["Rule Number", "Destination", "From Port", "Protocol"])


@cli.command("outbound-rules:add")
@click.option("-s", "--space", required=True, help="space to add rule to")
@click.option("--dest", required=True, help="target CIDR block dynos are allowed to reach")
@click.option("--protocol", default="tcp", show_default=True, help="tcp, udp, icmp or -1")
@click.option("--port", default="0-65535", show_default=True, help="a port or a range (80-443)")
def outbound_rules_add(space: str, dest: str, protocol: str, port: str) -> None:
    """Add outbound network rules to a space."""
    lo, _, hi = port.partition("-")
    try:
        ports = int(lo), int(hi or lo)
    except ValueError:
        raise CLIError(f"--port takes a port or a range like 80-443, not {port!r}.") from None
    c = client()
    rules = c.get(f"/spaces/{_q(space)}/outbound-ruleset")["rules"]
    rules.append({"target": dest, "from_port": ports[0], "to_port": ports[1], "protocol": protocol})
    _put_rules(c, space, "outbound", rules)
    click.echo(f"Added rule to the Outbound Rules of {space}")


@cli.command("outbound-rules:remove")
@click.argument("rule_number", type=int)
@click.option("-s", "--space", required=True, help="space to remove rule from")
def outbound_rules_remove(rule_number: int, space: str) -> None:
    """Remove an outbound rule (by its number in outbound-rules)."""
    c = client()
    rules = c.get(f"/spaces/{_q(space)}/outbound-ruleset")["rules"]
    if not 1 <= rule_number <= len(rules):
        raise CLIError(f"There is no rule {rule_number} in the Outbound Rules of {space}.")
    del rules[rule_number - 1]
    _put_rules(c, space, "outbound", rules)
    click.echo(f"Removed Rule {rule_number} from Outbound Rules on {space}")


# -- teams --------------------------------------------------------------------------------
@cli.command("teams")
@click.option("--json", "as_json", is_flag=True, help="output in json format")
def teams_list(as_json: bool) -> None:
    """List the teams that you are a member of."""
    teams = client().get_all("/teams")
    if as_json:
        print_json(teams)
        return
    if not teams:
        click.echo("You are not a member of any teams.")
        return
    table([[t["name"], t["role"] or ""] for t in teams], ["Team", "Role"])


@cli.command("teams:create")
@click.argument("name")
def teams_create(name: str) -> None:
    """Create a team (you become its admin)."""
    action(f"Creating team {name}", err=True)
    client().post("/teams", {"name": name})
    done()


@cli.command("members")
@click.option("-t", "--team", required=True, help="team to use")
@click.option("-r", "--role", help="filter by role")
@click.option("--json", "as_json", is_flag=True, help="output in json format")
def members_list(team: str, role: str | None, as_json: bool) -> None:
    """List members of a team."""
    members = client().get_all(f"/teams/{_q(team)}/members")
    if role:
        members = [m for m in members if m["role"] == role]
    if as_json:
        print_json(members)
        return
    if not members:
        click.echo(f"No members in {team}" + (f" with role {role}" if role else ""))
        return
    table([[m["email"], m["role"]] for m in members], ["Email", "Role"])


@cli.command("members:add")
@click.argument("email")
@click.option("-t", "--team", required=True, help="team to use")
@click.option("-r", "--role", default="member", show_default=True, help="admin or member")
def members_add(email: str, team: str, role: str) -> None:
    """Add a user to a team (or change their role)."""
    action(f"Adding {email} to {team} as {role}", err=True)
    client().request("PUT", f"/teams/{_q(team)}/members", {"email": email, "role": role})
    done()


@cli.command("members:remove")
@click.argument("email")
@click.option("-t", "--team", required=True, help="team to use")
def members_remove(email: str, team: str) -> None:
    """Remove a user from a team."""
    action(f"Removing {email} from {team}", err=True)
    client().delete(f"/teams/{_q(team)}/members/{_q(email)}")
    done()
