"""teams, their members, spaces (with a generation and a region) and spaces' rulesets;
apps may belong to a team and run in a space

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _stamps() -> list[sa.Column[object]]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "teams",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        *_stamps(),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "team_members",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("team_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        *_stamps(),
        sa.ForeignKeyConstraint(["team_id"], ["teams.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("team_id", "user_id"),
    )
    op.create_index("ix_team_members_team_id", "team_members", ["team_id"])
    op.create_index("ix_team_members_user_id", "team_members", ["user_id"])
    op.create_table(
        "spaces",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("team_id", sa.String(length=36), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("generation", sa.String(length=16), nullable=False),
        sa.Column("shield", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("cidr", sa.String(length=32), nullable=False),
        sa.Column("data_cidr", sa.String(length=32), nullable=False),
        sa.Column("log_drain_url", sa.Text(), nullable=True),
        *_stamps(),
        sa.ForeignKeyConstraint(["team_id"], ["teams.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_index("ix_spaces_team_id", "spaces", ["team_id"])
    op.create_table(
        "space_rulesets",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("space_id", sa.String(length=36), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["space_id"], ["spaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_space_rulesets_space_id", "space_rulesets", ["space_id"])
    with op.batch_alter_table("apps") as batch:
        batch.add_column(sa.Column("team_id", sa.String(length=36), nullable=True))
        batch.add_column(sa.Column("space_id", sa.String(length=36), nullable=True))
        batch.create_index("ix_apps_team_id", ["team_id"])
        batch.create_index("ix_apps_space_id", ["space_id"])
        batch.create_foreign_key(
            "fk_apps_team_id", "teams", ["team_id"], ["id"], ondelete="SET NULL"
        )
        batch.create_foreign_key("fk_apps_space_id", "spaces", ["space_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("apps") as batch:
        batch.drop_constraint("fk_apps_space_id", type_="foreignkey")
        batch.drop_constraint("fk_apps_team_id", type_="foreignkey")
        batch.drop_index("ix_apps_space_id")
        batch.drop_index("ix_apps_team_id")
        batch.drop_column("space_id")
        batch.drop_column("team_id")
    op.drop_table("space_rulesets")
    op.drop_table("spaces")
    op.drop_table("team_members")
    op.drop_table("teams")
