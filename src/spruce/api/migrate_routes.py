"""`POST /apps/{app}/actions/migrate {"space", "name"?}`: Spruce's own Cedar to Fir move
(services/migrations.py). The source is the Cedar app's pushed code, exported by the git
endpoint; the request ends when the Fir app serves and the domains have moved."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.routing import Route

from spruce.services.errors import InvalidParams

from .http import Ctx, endpoint

ExportSource = Callable[[str, Path], Awaitable[Path]]


def migrate_route(export: ExportSource, work_dir: Path) -> Route:
    async def migrate(ctx: Ctx) -> Any:
        services = ctx.services
        migration = await ctx.off_loop(
            services.migrations.prepare,
            ctx.actor,
            ctx.params["app"],
            ctx.field("space"),
            ctx.field("name"),
        )
        work_dir.mkdir(parents=True, exist_ok=True)
        workdir = Path(tempfile.mkdtemp(prefix="migrate-", dir=work_dir))
        try:
            try:
                source = await export(migration.cedar.name, workdir / "src")
            except Exception as e:  # noqa: BLE001 - no source: the Fir app stays, unbuilt
                raise InvalidParams(str(e)) from None
            done = await services.migrations.complete(
                ctx.actor, migration, source, lambda line: None
            )
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        ctx.status = 201
        return {
            "app": {"id": done.cedar.id, "name": done.cedar.name},
            "fir_app": {"id": done.fir.id, "name": done.fir.name},
            "config_vars": list(done.copied_config),
            "attachments": list(done.attachments),
            "features": list(done.features),
            "domains": list(done.domains),
        }

    return Route("/apps/{app}/actions/migrate", endpoint(migrate), methods=["POST"])
