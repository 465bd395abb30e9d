"""pipelines: couplings, promotions and their targets, review apps and their config

Revision ID: 0007
Revises: 0006
"""

import datetime as dt

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def _stamps() -> list[sa.Column[dt.datetime]]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "pipelines",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=30), nullable=False),
        sa.Column("owner_type", sa.String(length=8), nullable=False),
        sa.Column("owner_id", sa.String(length=36), nullable=False),
        sa.Column("generation", sa.String(length=16), nullable=False),
        *_stamps(),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_pipelines_name", "pipelines", ["name"])
    op.create_index("ix_pipelines_owner_id", "pipelines", ["owner_id"])
    op.create_table(
        "pipeline_couplings",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("pipeline_id", sa.String(length=36), nullable=False),
        sa.Column("app_id", sa.String(length=36), nullable=False),
        sa.Column("stage", sa.String(length=16), nullable=False),
        *_stamps(),
        sa.ForeignKeyConstraint(["pipeline_id"], ["pipelines.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("app_id"),
    )
    op.create_index("ix_pipeline_couplings_pipeline_id", "pipeline_couplings", ["pipeline_id"])
    op.create_table(
        "pipeline_promotions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("pipeline_id", sa.String(length=36), nullable=False),
        sa.Column("source_app_id", sa.String(length=36), nullable=False),
        sa.Column("source_release_id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        *_stamps(),
        sa.ForeignKeyConstraint(["pipeline_id"], ["pipelines.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_pipeline_promotions_pipeline_id", "pipeline_promotions", ["pipeline_id"])
    op.create_table(
        "pipeline_promotion_targets",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("promotion_id", sa.String(length=36), nullable=False),
        sa.Column("app_id", sa.String(length=36), nullable=False),
        sa.Column("release_id", sa.String(length=36), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["promotion_id"], ["pipeline_promotions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_pipeline_promotion_targets_promotion_id",
        "pipeline_promotion_targets",
        ["promotion_id"],
    )
    op.create_table(
        "review_app_configs",
        sa.Column("pipeline_id", sa.String(length=36), nullable=False),
        sa.Column("repo", sa.String(length=255), nullable=True),
        sa.Column("automatic_review_apps", sa.Boolean(), nullable=False),
        sa.Column("destroy_stale_apps", sa.Boolean(), nullable=False),
        sa.Column("stale_days", sa.Integer(), nullable=False),
        sa.Column("wait_for_ci", sa.Boolean(), nullable=False),
        sa.Column("base_name", sa.String(length=30), nullable=True),
        sa.Column("deploy_target_type", sa.String(length=8), nullable=True),
        sa.Column("deploy_target_id", sa.String(length=36), nullable=True),
        *_stamps(),
        sa.ForeignKeyConstraint(["pipeline_id"], ["pipelines.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("pipeline_id"),
    )
    op.create_table(
        "review_apps",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("pipeline_id", sa.String(length=36), nullable=False),
        sa.Column("app_id", sa.String(length=36), nullable=True),
        sa.Column("app_setup_id", sa.String(length=36), nullable=True),
        sa.Column("branch", sa.String(length=255), nullable=False),
        sa.Column("pr_number", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error_status", sa.String(length=64), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("creator_id", sa.String(length=36), nullable=True),
        sa.Column("wait_for_ci", sa.Boolean(), nullable=False),
        sa.Column("fork_repo_id", sa.Integer(), nullable=True),
        *_stamps(),
        sa.ForeignKeyConstraint(["pipeline_id"], ["pipelines.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_review_apps_pipeline_id", "review_apps", ["pipeline_id"])
    op.create_index("ix_review_apps_app_id", "review_apps", ["app_id"])


def downgrade() -> None:
    op.drop_table("review_apps")
    op.drop_table("review_app_configs")
    op.drop_table("pipeline_promotion_targets")
    op.drop_table("pipeline_promotions")
    op.drop_table("pipeline_couplings")
    op.drop_table("pipelines")
