"""indexes for listings at scale: apps by updated_at, and by name in bytewise order on
PostgreSQL databases whose collation is not C

`GET /apps` pages by name (the default), id or updated_at (issue 23). On PostgreSQL the
name order is bytewise (`COLLATE "C"`, as SQLite's and as the Range's Next-Range), which the
unique index on `name` serves only when the database's own collation is C.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def _bytewise_collation(bind: sa.engine.Connection) -> bool:
    collation = bind.execute(
        sa.text("SELECT datcollate FROM pg_database WHERE datname = current_database()")
    ).scalar()
    return str(collation) in ("C", "POSIX")


def upgrade() -> None:
    with op.batch_alter_table("apps", schema=None) as batch_op:
        batch_op.create_index("ix_apps_updated_at", ["updated_at", "id"])
    bind = op.get_bind()
    if bind.dialect.name == "postgresql" and not _bytewise_collation(bind):
        op.execute('CREATE INDEX ix_apps_name_bytewise ON apps (name COLLATE "C", id)')


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_apps_name_bytewise")
    with op.batch_alter_table("apps", schema=None) as batch_op:
        batch_op.drop_index("ix_apps_updated_at")
