"""Rule state, silences, finding labels: schema_version 2 of the release before Alembic.

Detector rule state, silences and maintenance windows; findings get labels and a
suppression reason.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "rule_state",
        sa.Column("rule", sa.String(), primary_key=True),
        sa.Column("group", sa.String(), primary_key=True),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("pending_since", TIMESTAMP, nullable=True),
        sa.Column("firing_since", TIMESTAMP, nullable=True),
        sa.Column("last_active_at", TIMESTAMP, nullable=True),
        sa.Column("flips", sa.JSON(), nullable=False),
        sa.Column("flapping", sa.Boolean(), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("evaluated_at", TIMESTAMP, nullable=True),
        sa.Column("finding_id", sa.Integer(), sa.ForeignKey("finding.id"), nullable=True),
    )

    op.create_table(
        "silence",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("matchers", sa.JSON(), nullable=False),
        sa.Column("starts_at", TIMESTAMP, nullable=False),
        sa.Column("ends_at", TIMESTAMP, nullable=True),
        sa.Column("recurrence", sa.JSON(), nullable=True),
        sa.Column("author", sa.String(), nullable=False),
        sa.Column("comment", sa.String(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("expired_at", TIMESTAMP, nullable=True),
        sa.Column("expired_by", sa.String(), nullable=True),
    )

    # Existing findings get no labels; a suppressed finding names its reason ("silence #3").
    op.add_column("finding", sa.Column("labels", sa.JSON(), nullable=False, server_default="{}"))
    op.add_column("finding", sa.Column("suppressed_by", sa.String(), nullable=True))
