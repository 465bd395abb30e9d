"""telemetry drains: where Fir apps' OpenTelemetry signals go

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "telemetry_drains",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("owner_type", sa.String(length=16), nullable=False),
        sa.Column("owner_id", sa.String(length=36), nullable=False),
        sa.Column("app_id", sa.String(length=36), nullable=True),
        sa.Column("signals", sa.JSON(), nullable=False),
        sa.Column("exporter_type", sa.String(length=16), nullable=False),
        sa.Column("endpoint", sa.Text(), nullable=False),
        sa.Column("headers_sealed", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("telemetry_drains", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_telemetry_drains_owner_id"), ["owner_id"])
        batch_op.create_index(batch_op.f("ix_telemetry_drains_app_id"), ["app_id"])


def downgrade() -> None:
    with op.batch_alter_table("telemetry_drains", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_telemetry_drains_app_id"))
        batch_op.drop_index(batch_op.f("ix_telemetry_drains_owner_id"))
    op.drop_table("telemetry_drains")
