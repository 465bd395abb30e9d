"""oci images: Fir releases run an OCI image instead of a slug

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "oci_images",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("app_id", sa.String(length=36), nullable=False),
        sa.Column("digest", sa.String(length=80), nullable=False),
        sa.Column("image_repo", sa.Text(), nullable=False),
        sa.Column("architecture", sa.String(length=32), nullable=False),
        sa.Column("base_image_name", sa.String(length=255), nullable=False),
        sa.Column("base_top_layer", sa.String(length=80), nullable=False),
        sa.Column("commit", sa.String(length=64), nullable=True),
        sa.Column("commit_description", sa.Text(), nullable=True),
        sa.Column("process_types", sa.JSON(), nullable=False),
        sa.Column("buildpacks", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("oci_images", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_oci_images_app_id"), ["app_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_oci_images_digest"), ["digest"], unique=False)
    with op.batch_alter_table("releases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("oci_image_id", sa.String(length=36), nullable=True))
    with op.batch_alter_table("builds", schema=None) as batch_op:
        batch_op.add_column(sa.Column("oci_image_id", sa.String(length=36), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("builds", schema=None) as batch_op:
        batch_op.drop_column("oci_image_id")
    with op.batch_alter_table("releases", schema=None) as batch_op:
        batch_op.drop_column("oci_image_id")
    with op.batch_alter_table("oci_images", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_oci_images_digest"))
        batch_op.drop_index(batch_op.f("ix_oci_images_app_id"))
    op.drop_table("oci_images")
