"""Smart-HTTP git endpoint: `git push` builds and deploys, `git clone` gets the app's code.

Wiring it to builds (what the control plane does)::

    async def on_push(ctx: PushContext, output: Callable[[str], None]) -> bool:
        source = await ctx.export(workdir / "source")          # the pushed tree
        try:
            result = await run_build(BuildRequest(source_dir=source, ...,
                                                  source_version=ctx.new_sha), output)
        except BuildFailed:
            return False                                        # push rejected, ref unchanged
        output("-----> Launching...")                           # create the release here
        return True

    git_app = GitServer(repos_dir, authenticate, authorize, on_push)
    # serve it with uvicorn directly, or Mount("/", app=git_app) in Starlette;
    # call `await git_app.close()` at shutdown when it is not the lifespan owner.
"""

from .export import ExportError, export_tree
from .server import DEPLOY_REFS, ZERO_SHA, GitAccessError, GitServer, PushContext

__all__ = [
    "DEPLOY_REFS", "ZERO_SHA", "ExportError", "GitAccessError", "GitServer", "PushContext",
    "export_tree",
]  # fmt: skip
