"""Routing decisions, hypothesis runs: schema_version 4 of the release before Alembic.

Routing decisions of LLM calls and refinements of drafted hypotheses.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "routing_decision",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", TIMESTAMP, nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("origin", sa.String(), nullable=True),
        # Unnamed, as create_all made it (PostgreSQL names it routing_decision_external_key_key).
        sa.Column("external_key", sa.String(), nullable=True, unique=True),
        sa.Column("request_id", sa.String(), nullable=True),
        sa.Column("task", sa.String(), nullable=False),
        sa.Column("incident_id", sa.Integer(), sa.ForeignKey("incident.id"), nullable=True),
        sa.Column("category", sa.String(), nullable=True),
        sa.Column("route", sa.JSON(), nullable=False),
        sa.Column("expected", sa.String(), nullable=True),
        sa.Column("declared", sa.String(), nullable=True),
        sa.Column("actual", sa.String(), nullable=True),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("detail", sa.String(), nullable=False),
        sa.Column("attempts", sa.JSON(), nullable=False),
        sa.Column("privacy_refusals", sa.Integer(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("tokens", sa.Integer(), nullable=False),
        sa.Column("cost", sa.Float(), nullable=False),
    )
    op.create_index("ix_routing_decision_at", "routing_decision", ["at"])
    op.create_index("ix_routing_decision_task", "routing_decision", ["task"])
    op.create_index("ix_routing_decision_incident_id", "routing_decision", ["incident_id"])

    op.create_table(
        "hypothesis_run",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("incident_id", sa.Integer(), sa.ForeignKey("incident.id"), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("requested_by", sa.String(), nullable=False),
        sa.Column("requested_at", TIMESTAMP, nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=True),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
        sa.Column("evidence_key", sa.String(), nullable=True),
        sa.Column("draft", sa.JSON(), nullable=False),
        sa.Column("refinement", sa.JSON(), nullable=True),
        sa.Column("reason", sa.String(), nullable=True),
        sa.Column("decision_id", sa.Integer(), sa.ForeignKey("routing_decision.id"), nullable=True),
    )
    op.create_index("ix_hypothesis_run_incident_id", "hypothesis_run", ["incident_id"])
