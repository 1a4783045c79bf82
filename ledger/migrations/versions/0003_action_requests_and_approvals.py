"""Action requests and approvals: schema_version 3 of the release before Alembic.

Remediation: action requests (proposal, decision, run, verification) and spent approval
tokens.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "action_request",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("incident_id", sa.Integer(), sa.ForeignKey("incident.id"), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("risk", sa.String(), nullable=False),
        sa.Column("runner", sa.String(), nullable=False),
        sa.Column("plan", sa.String(), nullable=False),
        sa.Column("needs_approval", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("proposed_by", sa.String(), nullable=False),
        sa.Column("proposed_at", TIMESTAMP, nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.Column("gate", sa.JSON(), nullable=False),
        sa.Column("decided_by", sa.String(), nullable=True),
        sa.Column("decided_at", TIMESTAMP, nullable=True),
        sa.Column("decision_reason", sa.String(), nullable=True),
        sa.Column("approval_id", sa.String(), nullable=True),
        sa.Column("approval_token", sa.String(), nullable=True),
        sa.Column("approval_expires_at", TIMESTAMP, nullable=True),
        sa.Column("started_at", TIMESTAMP, nullable=True),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
        sa.Column("output", sa.String(), nullable=True),
        sa.Column("verification", sa.String(), nullable=True),
    )
    op.create_index("ix_action_request_incident_id", "action_request", ["incident_id"])
    op.create_index("ix_action_request_action", "action_request", ["action"])
    op.create_index("ix_action_request_status", "action_request", ["status"])

    op.create_table(
        "approval_use",
        sa.Column("approval_id", sa.String(), primary_key=True),
        sa.Column("request_id", sa.Integer(), sa.ForeignKey("action_request.id"), nullable=False),
        sa.Column("used_at", TIMESTAMP, nullable=False),
    )
