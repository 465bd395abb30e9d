"""team app permissions and pipeline stages: apps.locked (`heroku apps:lock`) and a
pipeline stage's config vars (`/pipelines/{id}/stage/{stage}/config-vars`)

Revision ID: 0011
Revises: 0009 (0010 is the regions branch's: once both are merged, this revises 0010)
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("apps", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("locked", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        "pipeline_stage_config_vars",
        sa.Column("pipeline_id", sa.String(length=36), nullable=False),
        sa.Column("stage", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["pipeline_id"], ["pipelines.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("pipeline_id", "stage", "key"),
    )


def downgrade() -> None:
    op.drop_table("pipeline_stage_config_vars")
    with op.batch_alter_table("apps", schema=None) as batch_op:
        batch_op.drop_column("locked")
