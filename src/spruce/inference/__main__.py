"""`python -m spruce.inference serve --config FILE [--models FILE]`: the inference server."""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
import sys
from pathlib import Path

from .catalog import CatalogError, load_catalog
from .config import ConfigError, ServerConfig, load_config
from .link import PlatformLink


def _sockets(cfg: ServerConfig) -> list[socket.socket]:
    out = []
    for host, port in cfg.listen:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # accepted connections inherit it: without, small SSE chunks and responses wait
        # for the peer's delayed ACK (~40 ms a request here)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            s.close()
            hint = " (ports below 1024 need root)" if port < 1024 else ""
            raise SystemExit(f"cannot listen on {host}:{port}: {e.strerror}{hint}") from None
        s.listen(512)
        s.set_inheritable(True)
        out.append(s)
    return out


async def serve(cfg: ServerConfig, link: PlatformLink, models: Path | None) -> None:
    import uvicorn

    from .agents import AgentRunner
    from .mcp_bridge import McpHub
    from .server import build_app
    from .service import InferenceService
    from .tools import HerokuTools

    specs = load_catalog(models or cfg.models)
    service = InferenceService(link, specs, cfg.cache_dir, cfg.max_waiting, cfg.key_cache_seconds)
    sockets = _sockets(cfg)
    await service.start()
    hub = McpHub(link)
    app = build_app(service, hub, AgentRunner(service, hub, HerokuTools(link)))
    config = uvicorn.Config(
        app,
        ssl_certfile=str(cfg.certificate),
        ssl_keyfile=str(cfg.private_key),
        log_level=cfg.log_level,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=10,
    )
    try:
        for host, port in cfg.listen:
            print(f"inference: serving https://{host}:{port} ({len(specs)} models)", flush=True)
        await uvicorn.Server(config).serve(sockets=sockets)
    finally:
        await service.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m spruce.inference")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="serve the inference API")
    p.add_argument("--config", required=True, type=Path)
    p.add_argument("--models", type=Path, help="the model catalogue (overrides the config's)")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.config)
        if args.models:
            load_catalog(args.models)  # fail before binding anything
    except (ConfigError, CatalogError, OSError) as e:
        print(f"inference: {e}", file=sys.stderr)
        return 2
    logging.basicConfig(level=cfg.log_level.upper(), format="inference: %(levelname)s %(message)s")
    from .linkwire import RemoteLink

    try:
        asyncio.run(serve(cfg, RemoteLink(cfg.link), args.models))
    except CatalogError as e:
        print(f"inference: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
