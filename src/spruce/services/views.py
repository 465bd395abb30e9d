"""What services return: frozen views of the platform's resources.

The API, the git endpoint, the CLI's local mode, MCP and the dashboard translate these into
their own shapes; none of them sees a store row. Secrets (config var values, add-on
config, private keys) appear only in the views whose whole purpose is to carry them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from .catalog import FeatureInfo
from .settings import AppSettings


@dataclass(frozen=True)
class ListRange:
    """One page of a listing, as a client's Range asks for it: ordered by `field`, from
    `start` (after it when `exclusive`), at most `limit` items."""

    field: str
    start: str | None = None
    exclusive: bool = False
    limit: int = 1000
    descending: bool = False


@dataclass(frozen=True)
class Ref:
    id: str
    name: str


@dataclass(frozen=True)
class UserView:
    id: str
    email: str
    name: str | None
    is_operator: bool
    created_at: dt.datetime
    updated_at: dt.datetime
    last_login: dt.datetime | None = None


@dataclass(frozen=True)
class FirImageSummary:
    """A Fir app's `base_image_name`, `buildpacks` and `current_build_architecture`."""

    base_image_name: str
    buildpacks: tuple[dict[str, str], ...]
    architecture: str


@dataclass(frozen=True)
class AppView:
    id: str
    name: str
    owner_id: str
    owner_email: str
    region: str
    stack: str
    build_stack: str
    generation: str
    maintenance: bool
    acm: bool
    released_at: dt.datetime | None
    buildpack_provided_description: str | None
    slug_size: int | None
    repo_size: int | None
    settings: AppSettings
    created_at: dt.datetime
    updated_at: dt.datetime
    web_url: str
    git_url: str
    default_hostname: str
    image: FirImageSummary | None = None
    """Fir apps: what the current release's image was built with (None before a build)."""
    team: Ref | None = None
    space: Ref | None = None
    """A space's app takes the space's team, region and generation."""

    @property
    def ref(self) -> Ref:
        return Ref(self.id, self.name)


@dataclass(frozen=True)
class ReleaseView:
    id: str
    app: Ref
    version: int
    description: str
    status: str
    slug_id: str | None
    user_id: str | None
    user_email: str | None
    addon_plan_names: tuple[str, ...]
    current: bool
    output_stream_url: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    oci_image_id: str | None = None
    """Fir releases run an OCI image (and have no slug)."""
    eligible_for_rollback: bool = False
    """Heroku's rule: a succeeded release can be rolled back to (`releases:rollback` with no
    version picks the second eligible one, newest first)."""


@dataclass(frozen=True)
class OciImageView:
    """Heroku's oci-image resource."""

    id: str
    app: Ref
    digest: str
    architecture: str
    base_image_name: str
    base_top_layer: str
    commit: str | None
    commit_description: str | None
    image_repo: str
    process_types: dict[str, dict[str, Any]]
    buildpacks: tuple[dict[str, str], ...]
    created_at: dt.datetime
    updated_at: dt.datetime

    @property
    def image(self) -> str:
        """registry/repository@digest, as the dyno backend pulls it."""
        return f"{self.image_repo}@{self.digest}"


@dataclass(frozen=True)
class SlugView:
    id: str
    app_id: str
    process_types: dict[str, str]
    commit: str | None
    commit_description: str | None
    buildpack_provided_description: str | None
    size: int | None
    checksum: str | None
    stack: str
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclass(frozen=True)
class FormationView:
    id: str
    app: Ref
    type: str
    quantity: int
    size: str
    command: str
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclass(frozen=True)
class FeatureView:
    info: FeatureInfo
    enabled: bool


@dataclass(frozen=True)
class CollaboratorView:
    id: str
    app: Ref
    user_id: str
    email: str
    role: str  # owner | collaborator
    permissions: tuple[str, ...]
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclass(frozen=True)
class BuildView:
    id: str
    app_id: str
    status: str
    user_id: str | None
    user_email: str | None
    source_blob: dict[str, Any]
    buildpacks: tuple[str, ...]
    slug_id: str | None
    release_id: str | None
    stack: str
    output_stream_url: str
    created_at: dt.datetime
    updated_at: dt.datetime
    oci_image_id: str | None = None


@dataclass(frozen=True)
class DomainView:
    id: str
    app: Ref
    hostname: str
    kind: str  # heroku | custom
    cname: str | None
    status: str
    acm_status: str | None
    acm_status_reason: str | None
    sni_endpoint: Ref | None
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclass(frozen=True)
class CertInfo:
    subject: str
    issuer: str
    cert_domains: tuple[str, ...]
    starts_at: dt.datetime
    expires_at: dt.datetime
    self_signed: bool


@dataclass(frozen=True)
class SniEndpointView:
    id: str
    app: Ref
    name: str
    certificate_chain: str
    domain_ids: tuple[str, ...]
    cert: CertInfo
    acm: bool
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclass(frozen=True)
class LogDrainView:
    id: str
    app: Ref
    url: str
    token: str
    addon_id: str | None
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclass(frozen=True)
class LogSessionView:
    id: str
    logplex_url: str
    created_at: dt.datetime


@dataclass(frozen=True)
class AddonServiceView:
    id: str
    name: str
    human_name: str
    plans: tuple[PlanView, ...]


@dataclass(frozen=True)
class PlanView:
    id: str
    name: str  # service:plan
    human_name: str
    service: Ref
    default: bool
    limits: dict[str, Any]


@dataclass(frozen=True)
class AddonView:
    id: str
    name: str
    app: Ref
    """The owning (billing) app."""
    service: Ref
    plan: Ref
    state: str
    config_var_names: tuple[str, ...]
    provider_id: str
    created_at: dt.datetime
    updated_at: dt.datetime
    web_url: str = ""
    """The add-on's dashboard page."""


@dataclass(frozen=True)
class AttachmentView:
    id: str
    name: str
    namespace: str | None
    app: Ref
    addon: Ref
    addon_app: Ref
    """The add-on's owning app."""
    addon_plan: Ref
    config_var_names: tuple[str, ...]
    created_at: dt.datetime
    updated_at: dt.datetime
    web_url: str = ""
    """The attached add-on's dashboard page."""


@dataclass(frozen=True)
class SetupBuild:
    id: str
    status: str
    output_stream_url: str


@dataclass(frozen=True)
class AppSetupView:
    id: str
    app: Ref | None
    status: str
    failure_message: str | None
    manifest_errors: tuple[str, ...]
    build: SetupBuild | None
    postdeploy_exit_code: int | None
    postdeploy_output: str | None
    resolved_success_url: str | None
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclass(frozen=True)
class DataConnection:
    """How a client connects for redis:cli / pg:psql (argv without secrets, env with them)."""

    argv: tuple[str, ...]
    env: dict[str, str]
    host: str
    port: int
    user: str | None = None
    database: str | None = None


@dataclass(frozen=True)
class AddonInfo:
    addon: str
    plan: str
    info: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    resource_url: str = ""
    """The add-on's own URL (config value `URL`): what the data API reports and the CLI
    matches against the app's config vars."""


@dataclass(frozen=True)
class SshKeyView:
    id: str
    email: str
    public_key: str
    fingerprint: str
    comment: str
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclass(frozen=True)
class AuthorizationView:
    """An OAuth authorization: one of the user's API keys. `token` is set only when the
    key was just made (create, regenerate): Spruce keeps no key in clear."""

    id: str
    description: str
    user: UserView
    created_at: dt.datetime
    updated_at: dt.datetime
    token: str | None = None
    expires_in: int | None = None


@dataclass(frozen=True)
class OAuthClientView:
    id: str
    name: str
    redirect_uri: str
    secret: str
    created_at: dt.datetime
    updated_at: dt.datetime
