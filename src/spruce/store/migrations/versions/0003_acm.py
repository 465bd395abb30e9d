"""ACM: domains' retry state, which ACM certificate an SNI endpoint is, accounts and orders

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("domains") as batch:
        batch.add_column(
            sa.Column("acm_attempts", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("acm_next_check_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("sni_endpoints") as batch:
        batch.add_column(sa.Column("acm_group", sa.String(length=255), nullable=True))
    op.create_table(
        "acm_accounts",
        sa.Column("directory_url", sa.String(length=1024), nullable=False),
        sa.Column("sealed", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("directory_url"),
    )
    op.create_table(
        "acm_orders",
        sa.Column("app_id", sa.String(length=36), nullable=False),
        sa.Column("group", sa.String(length=255), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("sealed", sa.Text(), nullable=False),
        sa.Column("http01", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("app_id", "group"),
    )


def downgrade() -> None:
    op.drop_table("acm_orders")
    op.drop_table("acm_accounts")
    with op.batch_alter_table("sni_endpoints") as batch:
        batch.drop_column("acm_group")
    with op.batch_alter_table("domains") as batch:
        batch.drop_column("acm_next_check_at")
        batch.drop_column("acm_attempts")
