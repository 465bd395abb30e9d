"""Operator commands that act on a home: up, users:create, login, auth:whoami, repl."""

from __future__ import annotations

import asyncio
import os
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from spruce.config import AcmeOptions, Endpoints, Settings, default_home
from spruce.startup import StartupReport

from .base import UnknownCommand, cli, run
from .client import Client, CLIError, credentials_path, save_credentials
from .output import action, done, error, warn


def _home(home: str | None) -> Path:
    return Path(home).expanduser() if home else default_home()


def _echo(line: str) -> None:
    click.echo(line)
    sys.stdout.flush()


def _announce(report: StartupReport) -> Callable[[Endpoints], None]:
    def announce(ep: Endpoints) -> None:
        report.finish()
        _print_endpoints(ep)

    return announce


def _print_endpoints(ep: Endpoints) -> None:
    click.echo(f"  API:          {ep.api_url}")
    click.echo(f"  Router HTTP:  {ep.router_http_url}")
    click.echo(f"  Router HTTPS: {ep.router_https_url}")
    click.echo(f"  Git:          {ep.git_url}")
    if ep.inference_url:
        click.echo(f"  Inference:    {ep.inference_url} (starts with the first model resource)")
    click.echo(f"  Apps answer at <app>.{ep.app_domain}")
    click.echo(f"  API key:      {ep.api_key}")
    click.echo("Press Ctrl-C to stop.")
    sys.stdout.flush()


@cli.command("up")
@click.option("--home", help="state directory (default $SPRUCE_HOME or ~/.spruce)")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    envvar="SPRUCE_HOST",
    help="address to listen on",
)
@click.option(
    "--api-port",
    type=int,
    default=5000,
    show_default=True,
    envvar="SPRUCE_API_PORT",
    help="0 picks a free port",
)
@click.option("--http-port", type=int, default=8080, show_default=True, envvar="SPRUCE_HTTP_PORT")
@click.option("--https-port", type=int, default=8443, show_default=True, envvar="SPRUCE_HTTPS_PORT")
@click.option("--git-port", type=int, default=8022, show_default=True, envvar="SPRUCE_GIT_PORT")
@click.option(
    "--domain",
    default="localhost",
    show_default=True,
    envvar="SPRUCE_DOMAIN",
    help="apps answer at <app>.<domain>",
)
@click.option(
    "--router-workers",
    type=int,
    default=0,
    envvar="SPRUCE_ROUTER_WORKERS",
    help="router processes (default: one per core)",
)
@click.option(
    "--api-workers",
    type=int,
    default=None,
    envvar="SPRUCE_API_WORKERS",
    help="API processes answering reads, the main one the rest (default: 0 on 1-2 cores,"
    " else half the cores, at most 4)",
)
@click.option("--acme-directory", help="ACME directory URL for ACM (default: the internal CA)")
@click.option("--acme-email", help="contact e-mail of the ACME account")
@click.option("--acme-ca-bundle", help="CA bundle to trust the ACME directory's TLS with")
@click.option(
    "--acme-dns",
    envvar="SPRUCE_ACME_DNS",  # the TSIG secret need not be on the command line
    help="DNS-01 for wildcard domains: rfc2136://KEYNAME:SECRET@HOST:PORT/ZONE?alg=hmac-sha256"
    " (or $SPRUCE_ACME_DNS)",
)
@click.option("--acme-resolver", multiple=True, help="IP[:PORT] of a resolver for ACM's DNS checks")
@click.option(
    "--acme-caa-identity", multiple=True, help="the CA's CAA domain, if its directory names none"
)
@click.option(
    "--acme-renew-before",
    default="30d",
    show_default=True,
    help="renew ACM certificates this long before they expire (30d, 12h, 90m)",
)
@click.option(
    "--registry",
    "registry_url",
    help="an OCI registry URL for Fir images (default: Spruce runs its own docker-registry)",
)
@click.option("--registry-username", help="user for --registry")
@click.option(
    "--registry-password",
    envvar="SPRUCE_REGISTRY_PASSWORD",
    show_envvar=True,
    help="password for --registry (better in the environment than on the command line)",
)
@click.option(
    "--registry-ca",
    type=click.Path(exists=True, dir_okay=False),
    help="CA bundle (PEM) to verify --registry with",
)
@click.option(
    "--dyno-backend",
    type=click.Choice(["local", "kubernetes"]),
    default="local",
    show_default=True,
    envvar="SPRUCE_DYNO_BACKEND",
    help="where Fir apps' dynos run (Cedar apps' always run here)",
)
@click.option(
    "--kubeconfig",
    type=click.Path(dir_okay=False),
    help="the cluster for --dyno-backend kubernetes (default: $KUBECONFIG)",
)
@click.option(
    "--namespace",
    "kube_namespace",
    default="spruce",
    show_default=True,
    help="the Kubernetes namespace Spruce's workloads go in",
)
@click.option(
    "--kube-endpoint-host",
    help="route to this address instead of the pods' IPs (nodes that run on this host)",
)
@click.option(
    "--kube-region-label",
    help="run each app's dynos on nodes whose LABEL is the app's region "
    "(e.g. topology.kubernetes.io/region)",
)
@click.option(
    "--kube-region",
    "kube_regions",
    multiple=True,
    metavar="REGION=SPEC",
    help="where a region's dynos run: REGION=label:KEY=VALUE (nodes of --kubeconfig with "
    "that label) or REGION=kubeconfig:PATH (a cluster of its own); repeatable",
)
@click.option(
    "--inference-host",
    envvar="SPRUCE_INFERENCE_HOST",
    help="host:port of the managed inference host (default: a free loopback port); "
    "Heroku's AI plugin needs port 443 of an IP, e.g. 127.0.0.3:443 (as root)",
)
@click.option(
    "--data-host",
    envvar="SPRUCE_DATA_HOST",
    help="host:port where the API also answers over HTTPS (TLS from the internal CA), "
    "e.g. 127.0.0.2:443 (as root): the data API's download links (pg:backups:url, "
    "pg:backups:download) point there",
)
@click.option(
    "--exec-host",
    envvar="SPRUCE_EXEC_HOST",
    help="an IP address for Heroku Exec (heroku ps:exec, ps:copy, ps:forward, ps:socks), "
    "a loopback address such as 127.0.0.5 (as root): the exec manager on its port 443, "
    "SSH on its port 80",
)
@click.option(
    "--models",
    "models_file",
    type=click.Path(exists=True, dir_okay=False),
    help="the model catalogue for heroku-inference (default: the two local models)",
)
@click.option(
    "--heroku-git-names",
    is_flag=True,
    help="give apps' git_url as https://heroku@HOST/<app>.git (Heroku's VS Code extension)",
)
@click.option(
    "--region",
    "regions",
    multiple=True,
    help="a region for spaces, NAME or NAME=DESCRIPTION (repeatable; default: local)",
)
def up(
    home: str | None,
    host: str,
    api_port: int,
    http_port: int,
    https_port: int,
    git_port: int,
    domain: str,
    router_workers: int,
    api_workers: int | None,
    acme_directory: str | None,
    acme_email: str | None,
    acme_ca_bundle: str | None,
    acme_dns: str | None,
    acme_resolver: tuple[str, ...],
    acme_caa_identity: tuple[str, ...],
    acme_renew_before: str,
    registry_url: str | None,
    registry_username: str | None,
    registry_password: str | None,
    registry_ca: str | None,
    dyno_backend: str,
    kubeconfig: str | None,
    kube_namespace: str,
    kube_endpoint_host: str | None,
    kube_region_label: str | None,
    kube_regions: tuple[str, ...],
    regions: tuple[str, ...],
    inference_host: str | None,
    data_host: str | None,
    exec_host: str | None,
    models_file: str | None,
    heroku_git_names: bool,
) -> None:
    """Start the platform in the foreground."""
    from spruce.api.workers import default_count as default_api_workers
    from spruce.certs.acm_setup import AcmeSetupError, check

    if api_workers is not None and api_workers < 0:
        raise CLIError("--api-workers must be 0 or more.")
    from spruce.platform import HomeInUse, run_platform

    acme = AcmeOptions(
        directory=acme_directory,
        email=acme_email,
        ca_bundle=str(Path(acme_ca_bundle).expanduser().resolve()) if acme_ca_bundle else None,
        dns=acme_dns,
        resolvers=acme_resolver,
        caa_identities=acme_caa_identity,
        renew_before=_duration(acme_renew_before, "--acme-renew-before"),
    )
    try:
        check(acme)
    except AcmeSetupError as e:
        raise CLIError(str(e)) from None

    from spruce.services.errors import InvalidParams
    from spruce.services.regions import Regions, parse_region_option

    try:
        Regions(tuple(parse_region_option(r) for r in regions))
    except InvalidParams as e:
        raise CLIError(f"--region: {e.message}") from None
    from spruce.dynos.backends.regions import KubeRegionError, parse_kube_regions

    try:
        parse_kube_regions(kube_regions)
    except KubeRegionError as e:
        raise CLIError(f"--kube-region: {e}.") from None
    settings = Settings(
        home=_home(home),
        host=host,
        api_port=api_port,
        http_port=http_port,
        https_port=https_port,
        git_port=git_port,
        domain=domain.strip(".").lower(),
        router_workers=router_workers or (os.cpu_count() or 1),
        api_workers=default_api_workers() if api_workers is None else api_workers,
        acme=acme,
        registry_url=registry_url,
        registry_username=registry_username,
        registry_password=registry_password,
        registry_ca=Path(registry_ca) if registry_ca else None,
        dyno_backend=dyno_backend,
        kubeconfig=_kubeconfig(kubeconfig) if dyno_backend == "kubernetes" else None,
        kube_namespace=kube_namespace,
        kube_endpoint_host=kube_endpoint_host,
        kube_region_label=kube_region_label,
        kube_regions=kube_regions,
        regions=regions,
        inference_host=inference_host,
        data_host=data_host,
        exec_host=exec_host,
        models_file=Path(models_file).resolve() if models_file else None,
        heroku_git_names=heroku_git_names,
    )

    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is a dependency
        runner = asyncio.run
    report = StartupReport(_echo)
    report.begin(str(settings.home))
    try:
        runner(run_platform(settings, announce=_announce(report), progress=report))
    except HomeInUse as e:
        raise CLIError(str(e)) from None
    except OSError as e:
        raise CLIError(f"Spruce could not start: {e}") from None


def _kubeconfig(given: str | None) -> Path:
    """--kubeconfig, else the first file $KUBECONFIG names, as kubectl reads it."""
    first = (os.environ.get("KUBECONFIG") or "").split(os.pathsep)[0]
    if not (given or first):
        raise CLIError("--dyno-backend kubernetes needs --kubeconfig PATH (or $KUBECONFIG).")
    path = Path(given or first).expanduser().resolve()
    if not path.is_file():
        raise CLIError(f"The kubeconfig {path} does not exist.")
    return path


def _duration(text: str, option: str) -> float:
    """`30d`, `12h`, `90m`, `45s` (or bare seconds) -> seconds."""
    units = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    value = text.strip().lower()
    scale = units.get(value[-1:], 0)
    number = value[:-1] if scale else value
    try:
        seconds = float(number) * (scale or 1)
    except ValueError:
        raise CLIError(f"{option} takes a duration like 30d, 12h or 90m, not {text!r}") from None
    if seconds <= 0:
        raise CLIError(f"{option} must be positive")
    return seconds


@cli.command("users:create")
@click.argument("email")
@click.option("--name", help="the user's name")
@click.option("--home", help="state directory of the platform")
def users_create(email: str, name: str | None, home: str | None) -> None:
    """Create a user on this installation and print its API key (operators only)."""
    from spruce.services.accounts import Accounts
    from spruce.services.errors import ServiceError
    from spruce.store.db import Store

    h = _home(home)
    if not (h / "spruce.db").exists() and not os.environ.get("SPRUCE_DATABASE_URL"):
        raise CLIError(f"No Spruce installation at {h}. Run `spruce up --home {h}` first.")
    store = Store.open(h)
    try:
        _, key = Accounts(store).create_user(email, name=name)
    except ServiceError as e:
        raise CLIError(e.message) from None
    finally:
        store.dispose()
    click.echo(f"Created user {email.lower()}.")
    click.echo(f"API key: {key}")


@cli.command("login")
@click.option("--api-url", help="the platform's API URL (default: the local platform)")
@click.option("--api-key", help="your API key (prompted when missing)")
@click.option("--home", help="log in to the platform running on this home")
def login(api_url: str | None, api_key: str | None, home: str | None) -> None:
    """Store the API URL and key that later commands use."""
    ep_path = _home(home) / "endpoints.json"
    if (not api_url or not api_key) and ep_path.exists():
        ep = Endpoints.read(ep_path)
        api_url = api_url or ep.api_url
        api_key = api_key or (ep.api_key if not api_url or api_url == ep.api_url else None)
    if not api_url:
        raise CLIError("Give --api-url (no local platform is running).")
    if not api_key:
        api_key = click.prompt("API key", hide_input=True)
    account = Client(api_url, api_key).get("/account")
    path = save_credentials(api_url, api_key)
    click.echo(f"Logged in as {account['email']} (credentials in {path})")


@cli.command("auth:logout")
def logout() -> None:
    """Clear the login stored by `spruce login`."""
    action("Logging out")
    credentials_path().unlink(missing_ok=True)
    done()
    if os.environ.get("SPRUCE_API_KEY"):
        warn("SPRUCE_API_KEY is set in this shell: commands still use it.")
    elif (default_home() / "endpoints.json").exists():
        warn(
            f"Commands still use the key of the platform running on {default_home()} "
            "(its endpoints.json) while it runs."
        )


@cli.command("help")
@click.argument("command", nargs=-1)
@click.pass_context
def help_(ctx: click.Context, command: tuple[str, ...]) -> None:
    """Display help for spruce, a topic or a command."""
    root = ctx.parent
    assert root is not None
    group = root.command
    assert isinstance(group, click.Group)
    if not command:
        click.echo(group.get_help(root))
        return
    name = command[0]
    found = group.get_command(root, name)
    topic = sorted(n for n in group.list_commands(root) if n.startswith(name + ":"))
    if found is None and not topic:
        raise UnknownCommand(name, group.list_commands(root))
    if found is not None:
        click.echo(found.get_help(click.Context(found, info_name=name, parent=root)))
    if topic:
        click.echo()
        click.echo(f"Commands in {name}:")
        width = max(len(n) for n in topic)
        for n in topic:
            sub = group.commands[n]
            if not sub.hidden:
                click.echo(f"  {n.ljust(width)}  {sub.get_short_help_str(70)}")


@cli.command("auth:whoami")
def whoami() -> None:
    """Display the current logged in user."""
    click.echo(Client().get("/account")["email"])


@cli.command("repl")
def repl() -> None:
    """A prompt that runs spruce commands without restarting the process."""
    interactive = sys.stdin.isatty()
    while True:
        try:
            line = input("spruce > " if interactive else "")
        except EOFError:
            break
        line = line.strip()
        if not line:
            continue
        if line in ("exit", "quit", ".exit"):
            break
        try:
            args = shlex.split(line)
        except ValueError as e:
            error(str(e))
            continue
        if args and args[0] in ("spruce", "heroku"):
            args = args[1:]
        run(args)
        sys.stdout.flush()


def _system_ca_bundle() -> str:
    import ssl

    paths = ssl.get_default_verify_paths()
    for candidate in (
        paths.cafile,
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
    ):
        if candidate and Path(candidate).exists():
            return Path(candidate).read_text()
    return ""


@cli.command("heroku-env")
@click.option("--home", help="state directory of the running platform")
def heroku_env(home: str | None) -> None:
    """Print the environment that points Heroku's CLI at this platform (eval "$(spruce heroku-env)")."""
    import shlex
    from urllib.parse import urlparse

    h = _home(home)
    ep_path = h / "endpoints.json"
    if not ep_path.exists():
        raise CLIError(
            f"No running Spruce on {h} (no endpoints.json). Start it with `spruce up --home {h}`."
        )
    ep = Endpoints.read(ep_path)
    # Node and git each take one CA file: the system's roots plus Spruce's internal CA.
    bundle = h / "heroku-ca-bundle.pem"
    bundle.write_text(_system_ca_bundle().rstrip("\n") + "\n" + Path(ep.ca_bundle).read_text())
    git = urlparse(ep.git_url)
    env = {
        "HEROKU_HOST": ep.api_url,
        "HEROKU_PARTICLEBOARD_URL": ep.api_url,
        "HEROKU_API_KEY": ep.api_key,
        "HEROKU_GIT_HOST": git.netloc,
        # pg:* and redis:* send the data API's requests to this host with HEROKU_HOST's
        # protocol and port (@heroku-cli/command keeps them; only the hostname changes):
        # the API serves /client/v11, /postgres/v0 and /redis/v0 itself. --data-host adds
        # an HTTPS listener for the links the data API hands out (pg:backups:download
        # fetches them with https only).
        "HEROKU_DATA_HOST": urlparse(ep.api_url).hostname or "127.0.0.1",
        "NODE_EXTRA_CA_CERTS": str(bundle),
        "GIT_SSL_CAINFO": str(bundle),
        "DISABLE_TELEMETRY": "true",
        "HEROKU_SKIP_NEW_VERSION_CHECK": "true",
        "HEROKU_DISABLE_AUTOUPDATE": "1",
        "NO_PROXY": "127.0.0.1,localhost",
    }
    inference = urlparse(ep.inference_url)
    if inference.hostname and inference.port is None:
        # Heroku's AI plugin fixes https and port 443: only then can it reach this host
        env["HEROKU_INFERENCE_HOST"] = inference.hostname
    if ep.exec_url:
        # ps:exec, ps:copy, ps:forward and ps:socks ask this exec manager (over https)
        env["HEROKU_EXEC_URL"] = ep.exec_url
    for k, v in env.items():
        click.echo(f"export {k}={shlex.quote(v)}")
