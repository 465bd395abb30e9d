"""Smart-HTTP git endpoint: `git push` builds and deploys, `git clone` gets the app's code.

`push.make_git_server(services, repos)` wires it to services: a push becomes a build
whose output streams into the push; a failed build rejects it and leaves the ref unchanged.
"""

from .export import ExportError, export_tree
from .server import DEPLOY_REFS, ZERO_SHA, GitAccessError, GitServer, PushContext

__all__ = [
    "DEPLOY_REFS", "ZERO_SHA", "ExportError", "GitAccessError", "GitServer", "PushContext",
    "export_tree",
]  # fmt: skip
