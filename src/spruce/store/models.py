"""The platform's durable state, in Heroku's vocabulary.

Every table is keyed by a UUID string, as Heroku's resources are. Runtime state (which
processes run where) is not here: the dyno manager keeps its own files and rebuilds from
the formation; this store holds what a restart must not lose.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


def new_id() -> str:
    return str(uuid.uuid4())


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on every engine (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dt.datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class Timestamps:
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class User(Timestamps, Base):
    __tablename__ = "users"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(String(255), unique=True)
    name: Mapped[str | None] = mapped_column(String(255))
    is_operator: Mapped[bool] = mapped_column(Boolean, default=False)
    last_login: Mapped[dt.datetime | None] = mapped_column()


class ApiKey(Timestamps, Base):
    """An API key; only its SHA-256 is stored, never the key itself."""

    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(String(255), default="")
    last_used_at: Mapped[dt.datetime | None] = mapped_column()


class AccountFeature(Base):
    """An account-level feature (`heroku labs`) a user turned on or off."""

    __tablename__ = "account_features"
    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)


class SshKey(Timestamps, Base):
    """A public SSH key of a user (`heroku keys:add`)."""

    __tablename__ = "ssh_keys"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    public_key: Mapped[str] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(String(128))
    comment: Mapped[str] = mapped_column(String(255), default="")


class OAuthClient(Timestamps, Base):
    """An OAuth client a user registered (`heroku clients:create`); its secret sealed."""

    __tablename__ = "oauth_clients"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    redirect_uri: Mapped[str] = mapped_column(Text)
    secret_sealed: Mapped[str] = mapped_column(Text)


class AppTransfer(Timestamps, Base):
    """A request to give an app to another user (`heroku apps:transfer`)."""

    __tablename__ = "app_transfers"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    recipient_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    state: Mapped[str] = mapped_column(String(16), default="pending")


class PgRestore(Timestamps, Base):
    """A restore into a Postgres add-on (a transfer of Heroku's data API, `r001`)."""

    __tablename__ = "pg_restores"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    addon_id: Mapped[str] = mapped_column(String(36), index=True)
    num: Mapped[int] = mapped_column(Integer)
    from_name: Mapped[str] = mapped_column(String(255))
    to_name: Mapped[str] = mapped_column(String(255))
    source_bytes: Mapped[int] = mapped_column(Integer, default=0)
    finished_at: Mapped[dt.datetime | None] = mapped_column()
    succeeded: Mapped[bool] = mapped_column(Boolean, default=False)
    message: Mapped[str] = mapped_column(Text, default="")


class Team(Timestamps, Base):
    __tablename__ = "teams"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(64), unique=True)


class TeamMember(Timestamps, Base):
    __tablename__ = "team_members"
    __table_args__ = (UniqueConstraint("team_id", "user_id"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    team_id: Mapped[str] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16), default="member")  # admin | member


class Space(Timestamps, Base):
    """A private space: a team's network with a generation (cedar or fir) and a region."""

    __tablename__ = "spaces"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    team_id: Mapped[str] = mapped_column(ForeignKey("teams.id"), index=True)
    region: Mapped[str] = mapped_column(String(32))
    generation: Mapped[str] = mapped_column(String(16), default="cedar")
    shield: Mapped[bool] = mapped_column(Boolean, default=False)
    state: Mapped[str] = mapped_column(String(16), default="allocating")
    cidr: Mapped[str] = mapped_column(String(32), default="10.0.0.0/16")
    data_cidr: Mapped[str] = mapped_column(String(32), default="10.1.0.0/16")
    log_drain_url: Mapped[str | None] = mapped_column(Text)


class SpaceRuleset(Base):
    """One version of a space's inbound or outbound ruleset; the newest is current."""

    __tablename__ = "space_rulesets"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    space_id: Mapped[str] = mapped_column(ForeignKey("spaces.id", ondelete="CASCADE"), index=True)
    direction: Mapped[str] = mapped_column(String(8))  # inbound | outbound
    version: Mapped[int] = mapped_column(Integer, default=1)  # 1, 2, ... per direction
    rules: Mapped[list[Any]] = mapped_column(default=list)
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class App(Timestamps, Base):
    __tablename__ = "apps"
    # GET /apps pages by updated_at too (and PostgreSQL databases not collated C get an
    # index on the name's bytewise order: migration 0008).
    __table_args__ = (Index("ix_apps_updated_at", "updated_at", "id"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(30), unique=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    region: Mapped[str] = mapped_column(String(32), default="us")
    stack: Mapped[str] = mapped_column(String(32), default="heroku-24")
    build_stack: Mapped[str] = mapped_column(String(32), default="heroku-24")
    generation: Mapped[str] = mapped_column(String(16), default="cedar")
    maintenance: Mapped[bool] = mapped_column(Boolean, default=False)
    acm: Mapped[bool] = mapped_column(Boolean, default=False)
    # A locked team app refuses members who have not joined it (`heroku apps:lock`).
    locked: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # A team app's team, and the space it runs in (its generation and region follow it).
    team_id: Mapped[str | None] = mapped_column(
        ForeignKey("teams.id", ondelete="SET NULL"), index=True
    )
    space_id: Mapped[str | None] = mapped_column(ForeignKey("spaces.id"), index=True)
    released_at: Mapped[dt.datetime | None] = mapped_column()
    buildpack_provided_description: Mapped[str | None] = mapped_column(String(255))
    slug_size: Mapped[int | None] = mapped_column(Integer)
    repo_size: Mapped[int | None] = mapped_column(Integer)
    # Per-app settings that Heroku keeps internally (boot timeout, formation limit).
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Collaborator(Timestamps, Base):
    __tablename__ = "collaborators"
    __table_args__ = (UniqueConstraint("app_id", "user_id"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    permissions: Mapped[list[Any]] = mapped_column(default=list)


class ConfigVar(Base):
    __tablename__ = "config_vars"
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Slug(Timestamps, Base):
    __tablename__ = "slugs"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    checksum: Mapped[str | None] = mapped_column(String(80))
    size: Mapped[int | None] = mapped_column(Integer)
    path: Mapped[str | None] = mapped_column(Text)
    commit: Mapped[str | None] = mapped_column(String(64))
    commit_description: Mapped[str | None] = mapped_column(Text)
    buildpack_provided_description: Mapped[str | None] = mapped_column(String(255))
    process_types: Mapped[dict[str, Any]] = mapped_column(default=dict)
    stack: Mapped[str] = mapped_column(String(32), default="heroku-24")


class OciImage(Timestamps, Base):
    """A Fir app's built image (Heroku's oci-image resource): it lives in the registry by
    digest; this row is its metadata."""

    __tablename__ = "oci_images"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    digest: Mapped[str] = mapped_column(String(80), index=True)
    image_repo: Mapped[str] = mapped_column(Text)
    architecture: Mapped[str] = mapped_column(String(32), default="amd64")
    base_image_name: Mapped[str] = mapped_column(String(255), default="")
    base_top_layer: Mapped[str] = mapped_column(String(80), default="")
    commit: Mapped[str | None] = mapped_column(String(64))
    commit_description: Mapped[str | None] = mapped_column(Text)
    process_types: Mapped[dict[str, Any]] = mapped_column(default=dict)
    buildpacks: Mapped[list[Any]] = mapped_column(default=list)


class Release(Timestamps, Base):
    __tablename__ = "releases"
    __table_args__ = (UniqueConstraint("app_id", "version"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="succeeded")
    slug_id: Mapped[str | None] = mapped_column(ForeignKey("slugs.id"))
    oci_image_id: Mapped[str | None] = mapped_column(String(36))  # Fir: instead of a slug
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # Config snapshot: a rollback restores it, and dynos of this release read it.
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    addon_plan_names: Mapped[list[Any]] = mapped_column(default=list)
    output_path: Mapped[str | None] = mapped_column(Text)


class Build(Timestamps, Base):
    __tablename__ = "builds"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    source_blob: Mapped[dict[str, Any]] = mapped_column(default=dict)
    buildpacks: Mapped[list[Any]] = mapped_column(default=list)
    slug_id: Mapped[str | None] = mapped_column(ForeignKey("slugs.id"))
    oci_image_id: Mapped[str | None] = mapped_column(String(36))
    release_id: Mapped[str | None] = mapped_column(String(36))
    stack: Mapped[str] = mapped_column(String(32), default="heroku-24")
    output_path: Mapped[str | None] = mapped_column(Text)


class Formation(Timestamps, Base):
    __tablename__ = "formations"
    __table_args__ = (UniqueConstraint("app_id", "type"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    type: Mapped[str] = mapped_column(String(63))
    quantity: Mapped[int] = mapped_column(Integer, default=0)
    size: Mapped[str] = mapped_column(String(32), default="basic")
    command: Mapped[str] = mapped_column(Text, default="")


class AppFeature(Base):
    __tablename__ = "app_features"
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)


class BuildpackInstallation(Base):
    __tablename__ = "buildpack_installations"
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), primary_key=True)
    ordinal: Mapped[int] = mapped_column(Integer, primary_key=True)
    url: Mapped[str] = mapped_column(Text)


class Domain(Timestamps, Base):
    __tablename__ = "domains"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    hostname: Mapped[str] = mapped_column(String(255), unique=True)
    kind: Mapped[str] = mapped_column(String(16), default="custom")
    cname: Mapped[str | None] = mapped_column(String(255))
    sni_endpoint_id: Mapped[str | None] = mapped_column(String(36))
    status: Mapped[str] = mapped_column(String(32), default="succeeded")
    acm_status: Mapped[str | None] = mapped_column(String(32))
    acm_status_reason: Mapped[str | None] = mapped_column(Text)
    # ACM's retry state (services/acm_lifecycle.DomainAcm): consecutive failures, next check.
    acm_attempts: Mapped[int] = mapped_column(Integer, default=0)
    acm_next_check_at: Mapped[dt.datetime | None] = mapped_column()


class SniEndpoint(Timestamps, Base):
    __tablename__ = "sni_endpoints"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    certificate_chain: Mapped[str] = mapped_column(Text)
    private_key: Mapped[str] = mapped_column(Text)
    """PEM as uploaded; for an ACM certificate, sealed (services/sealing.py)."""
    acm: Mapped[bool] = mapped_column(Boolean, default=False)
    # Which of the app's ACM certificates this is (services/acm_lifecycle.certificate_group).
    acm_group: Mapped[str | None] = mapped_column(String(255))


class AcmAccount(Timestamps, Base):
    """ACM's account at one ACME directory, sealed (it holds the account's private key)."""

    __tablename__ = "acm_accounts"
    directory_url: Mapped[str] = mapped_column(String(1024), primary_key=True)
    sealed: Mapped[str] = mapped_column(Text)


class AcmOrder(Timestamps, Base):
    """An ACM certificate order in progress: the issuer's record, sealed (it holds the new
    certificate's private key), one per certificate group of an app."""

    __tablename__ = "acm_orders"
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), primary_key=True)
    group: Mapped[str] = mapped_column(String(255), primary_key=True)
    reason: Mapped[str] = mapped_column(String(32))
    sealed: Mapped[str] = mapped_column(Text)
    # The record's HTTP-01 tokens (token -> key authorization, public by nature): the router
    # answers them, and rebuilding its table must not need to open every record.
    http01: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Addon(Timestamps, Base):
    __tablename__ = "addons"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    service: Mapped[str] = mapped_column(String(64))
    plan: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(32), default="provisioning")
    state_reason: Mapped[str | None] = mapped_column(Text)
    # Provider-returned values (URL...); secret, never shown outside the app's config vars.
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    provider_id: Mapped[str | None] = mapped_column(String(64))


class AddonAttachment(Timestamps, Base):
    __tablename__ = "addon_attachments"
    __table_args__ = (UniqueConstraint("app_id", "name"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    addon_id: Mapped[str] = mapped_column(ForeignKey("addons.id", ondelete="CASCADE"), index=True)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    namespace: Mapped[str | None] = mapped_column(String(64))


class LogDrain(Timestamps, Base):
    __tablename__ = "log_drains"
    __table_args__ = (UniqueConstraint("app_id", "url"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(Text)
    token: Mapped[str] = mapped_column(String(64))
    addon_id: Mapped[str | None] = mapped_column(String(36))


class TelemetryDrain(Timestamps, Base):
    """Where an app's (or a space's) OpenTelemetry signals go (Fir). The exporter's headers
    often hold an API key: kept sealed (services/sealing.py)."""

    __tablename__ = "telemetry_drains"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    owner_type: Mapped[str] = mapped_column(String(16))  # app | space
    owner_id: Mapped[str] = mapped_column(String(36), index=True)
    app_id: Mapped[str | None] = mapped_column(
        ForeignKey("apps.id", ondelete="CASCADE"), index=True
    )
    signals: Mapped[list[Any]] = mapped_column(default=list)
    exporter_type: Mapped[str] = mapped_column(String(16))
    endpoint: Mapped[str] = mapped_column(Text)
    headers_sealed: Mapped[str] = mapped_column(Text)


class AppSetup(Timestamps, Base):
    """An app created from a source tarball and its app.json (POST /app-setups)."""

    __tablename__ = "app_setups"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    app_id: Mapped[str | None] = mapped_column(
        ForeignKey("apps.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(16), default="pending")
    failure_message: Mapped[str | None] = mapped_column(Text)
    manifest_errors: Mapped[list[Any]] = mapped_column(default=list)
    build_id: Mapped[str | None] = mapped_column(String(36))
    postdeploy_output: Mapped[str | None] = mapped_column(Text)
    postdeploy_exit_code: Mapped[int | None] = mapped_column(Integer)
    resolved_success_url: Mapped[str | None] = mapped_column(Text)


class Pipeline(Timestamps, Base):
    """A pipeline: apps of one generation in stages, owned by a user or a team."""

    __tablename__ = "pipelines"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(30), index=True)  # not unique, as on Heroku
    owner_type: Mapped[str] = mapped_column(String(8))  # user | team
    owner_id: Mapped[str] = mapped_column(String(36), index=True)
    generation: Mapped[str] = mapped_column(String(16), default="cedar")


class PipelineCoupling(Timestamps, Base):
    """An app's place in a pipeline: one pipeline per app."""

    __tablename__ = "pipeline_couplings"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    pipeline_id: Mapped[str] = mapped_column(
        ForeignKey("pipelines.id", ondelete="CASCADE"), index=True
    )
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), unique=True)
    stage: Mapped[str] = mapped_column(String(16))


class PipelinePromotion(Timestamps, Base):
    __tablename__ = "pipeline_promotions"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    pipeline_id: Mapped[str] = mapped_column(
        ForeignKey("pipelines.id", ondelete="CASCADE"), index=True
    )
    source_app_id: Mapped[str] = mapped_column(String(36))
    source_release_id: Mapped[str] = mapped_column(String(36))
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | completed


class PipelinePromotionTarget(Base):
    __tablename__ = "pipeline_promotion_targets"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    promotion_id: Mapped[str] = mapped_column(
        ForeignKey("pipeline_promotions.id", ondelete="CASCADE"), index=True
    )
    app_id: Mapped[str] = mapped_column(String(36))
    release_id: Mapped[str | None] = mapped_column(String(36))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    error_message: Mapped[str | None] = mapped_column(Text)
    ordinal: Mapped[int] = mapped_column(Integer, default=0)


class PipelineStageConfigVar(Base):
    """A config var of one stage of a pipeline (review apps get the review stage's)."""

    __tablename__ = "pipeline_stage_config_vars"
    pipeline_id: Mapped[str] = mapped_column(
        ForeignKey("pipelines.id", ondelete="CASCADE"), primary_key=True
    )
    stage: Mapped[str] = mapped_column(String(16), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class ReviewAppConfig(Timestamps, Base):
    """Review apps enabled on a pipeline, and how they behave."""

    __tablename__ = "review_app_configs"
    pipeline_id: Mapped[str] = mapped_column(
        ForeignKey("pipelines.id", ondelete="CASCADE"), primary_key=True
    )
    repo: Mapped[str | None] = mapped_column(String(255))
    automatic_review_apps: Mapped[bool] = mapped_column(Boolean, default=False)
    destroy_stale_apps: Mapped[bool] = mapped_column(Boolean, default=False)
    stale_days: Mapped[int] = mapped_column(Integer, default=5)
    wait_for_ci: Mapped[bool] = mapped_column(Boolean, default=False)
    base_name: Mapped[str | None] = mapped_column(String(30))
    deploy_target_type: Mapped[str | None] = mapped_column(String(8))  # region | space
    deploy_target_id: Mapped[str | None] = mapped_column(String(36))


class ReviewApp(Timestamps, Base):
    """An app made for a branch (or pull request) from a source tarball and app.json."""

    __tablename__ = "review_apps"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    pipeline_id: Mapped[str] = mapped_column(
        ForeignKey("pipelines.id", ondelete="CASCADE"), index=True
    )
    app_id: Mapped[str | None] = mapped_column(
        ForeignKey("apps.id", ondelete="SET NULL"), index=True
    )
    app_setup_id: Mapped[str | None] = mapped_column(String(36))
    branch: Mapped[str] = mapped_column(String(255))
    pr_number: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    error_status: Mapped[str | None] = mapped_column(String(64))
    message: Mapped[str | None] = mapped_column(Text)
    creator_id: Mapped[str | None] = mapped_column(String(36))
    wait_for_ci: Mapped[bool] = mapped_column(Boolean, default=False)
    fork_repo_id: Mapped[int | None] = mapped_column(Integer)
