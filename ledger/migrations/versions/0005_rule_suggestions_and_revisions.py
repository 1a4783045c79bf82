"""Rule suggestions learned from history, the revisions of learned rules, and the operator's
feedback on findings.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "rule_suggestion",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("replaces", sa.String(), nullable=True),
        sa.Column("service", sa.String(), nullable=True),
        sa.Column("rule", sa.JSON(), nullable=False),
        sa.Column("why", sa.String(), nullable=False),
        sa.Column("provenance", sa.JSON(), nullable=False),
        sa.Column("backtest", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("decided_by", sa.String(), nullable=True),
        sa.Column("decided_at", TIMESTAMP, nullable=True),
        sa.Column("reason", sa.String(), nullable=True),
    )
    op.create_index("ix_rule_suggestion_name", "rule_suggestion", ["name"])
    op.create_index("ix_rule_suggestion_status", "rule_suggestion", ["status"])
    op.create_table(
        "rule_revision",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("rule", sa.JSON(), nullable=True),
        sa.Column("suggestion_id", sa.Integer(), sa.ForeignKey("rule_suggestion.id"), nullable=True),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("at", TIMESTAMP, nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("backtest", sa.JSON(), nullable=False),
        sa.UniqueConstraint("name", "revision"),
    )
    op.create_index("ix_rule_revision_name", "rule_revision", ["name"])
    op.create_table(
        "finding_feedback",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("finding_id", sa.Integer(), sa.ForeignKey("finding.id"), nullable=False),
        sa.Column("verdict", sa.String(), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("at", TIMESTAMP, nullable=False),
        sa.Column("reason", sa.String(), nullable=True),
    )
    op.create_index("ix_finding_feedback_finding_id", "finding_feedback", ["finding_id"])
