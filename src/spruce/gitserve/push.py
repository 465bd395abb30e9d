"""`git push` -> build -> release: the git endpoint as a thin adapter over services."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from spruce.services import Services
from spruce.services.errors import Forbidden, NotFound, ServiceError, Unauthorized
from spruce.services.model import BuildStatus, SourceError

from .export import ExportError
from .history import RepoOf
from .server import GitAccessError, GitServer, Output, PushContext


def make_git_server(services: Services, repos: Path | RepoOf) -> GitServer:
    async def authenticate(password: str) -> Any:
        try:
            return services.accounts.authenticate(password)
        except Unauthorized:
            return None

    async def authorize(user: Any, app_name: str) -> None:
        try:
            services.apps.get(user, app_name, need="deploy")
        except NotFound:
            raise GitAccessError(f"Couldn't find that app: {app_name}.", 404) from None
        except Forbidden as e:
            raise GitAccessError(e.message, 403) from None

    async def on_push(push: PushContext, output: Output) -> bool:
        builds = services.builds
        workdir: Path | None = None
        try:
            app = services.apps.get(push.user, push.app_name, need="deploy")
            # the pushed tree is the app's data: on its region's root for a space's app
            workdir = Path(tempfile.mkdtemp(prefix="push-", dir=builds.data_root(app.id) / "work"))
            source = await push.export(workdir / "src")
            build = builds.create_pending(
                push.user, app.id, {"url": f"git:{push.new_sha}", "version": push.new_sha}
            )
            result = await builds.run(push.user, build, source, output)
            return result.status == BuildStatus.SUCCEEDED
        except SourceError as e:  # what was pushed cannot be built from (unsafe links...)
            output(f" !     Push rejected: the pushed tree cannot be used: {e}")
            return False
        except (ServiceError, ExportError) as e:
            output(f" !     Push rejected: {getattr(e, 'message', None) or e}")
            return False
        finally:
            if workdir is not None:
                shutil.rmtree(workdir, ignore_errors=True)

    return GitServer(repos, authenticate, authorize, on_push)
