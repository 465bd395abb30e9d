"""Smart-HTTP git endpoint: `git push` builds and deploys, `git clone` gets the app's code."""

from .export import ExportError, export_tree
from .server import DEPLOY_REFS, ZERO_SHA, GitAccessError, GitServer, PushContext

__all__ = [
    "DEPLOY_REFS", "ZERO_SHA", "ExportError", "GitAccessError", "GitServer", "PushContext",
    "export_tree",
]  # fmt: skip
