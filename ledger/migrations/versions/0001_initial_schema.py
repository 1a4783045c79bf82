"""Initial schema: schema_version 1 of the release before Alembic.

Probe observations, each target's threshold state, log cursors, findings (before labels and
suppression), incidents with their timeline and evidence, Alertmanager alert episodes and
pushed payloads: what ``SQLModel.metadata.create_all`` made of ledger/tables.py then.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "observation",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("target", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("service", sa.String(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(), nullable=True),
        sa.Column("checks", sa.JSON(), nullable=False),
        sa.Column("values", sa.JSON(), nullable=False),
    )
    op.create_index("ix_observation_target", "observation", ["target"])
    op.create_index("ix_observation_started_at", "observation", ["started_at"])

    op.create_table(
        "incident",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("title", sa.String(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("severity", sa.String(), nullable=False),
        sa.Column("service", sa.String(), nullable=False),
        sa.Column("correlation_key", sa.String(), nullable=False),
        sa.Column("opened_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.Column("last_seen_at", TIMESTAMP, nullable=False),
        sa.Column("resolved_at", TIMESTAMP, nullable=True),
        sa.Column("finding_count", sa.Integer(), nullable=False),
    )
    op.create_index("ix_incident_state", "incident", ["state"])
    op.create_index("ix_incident_service", "incident", ["service"])
    # At most one open incident per correlation key: repeats can never duplicate it.
    op.create_index("uq_incident_open_key", "incident", ["correlation_key"], unique=True,
                    sqlite_where=sa.text("resolved_at IS NULL"), postgresql_where=sa.text("resolved_at IS NULL"))

    op.create_table(
        "finding",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("rule", sa.String(), nullable=False),
        sa.Column("target", sa.String(), nullable=False),
        sa.Column("service", sa.String(), nullable=False),
        sa.Column("severity", sa.String(), nullable=False),
        sa.Column("summary", sa.String(), nullable=False),
        sa.Column("correlation_key", sa.String(), nullable=False),
        sa.Column("first_seen", TIMESTAMP, nullable=False),
        sa.Column("last_seen", TIMESTAMP, nullable=False),
        sa.Column("occurrences", sa.Integer(), nullable=False),
        sa.Column("recovered_at", TIMESTAMP, nullable=True),
        sa.Column("incident_id", sa.Integer(), sa.ForeignKey("incident.id"), nullable=True),
    )
    op.create_index("ix_finding_target", "finding", ["target"])
    op.create_index("ix_finding_correlation_key", "finding", ["correlation_key"])
    op.create_index("ix_finding_incident_id", "finding", ["incident_id"])

    op.create_table(
        "target_state",
        sa.Column("target", sa.String(), primary_key=True),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("consecutive_successes", sa.Integer(), nullable=False),
        sa.Column("last_ok", sa.Boolean(), nullable=True),
        sa.Column("last_observed_at", TIMESTAMP, nullable=True),
        sa.Column("active_finding_id", sa.Integer(), sa.ForeignKey("finding.id"), nullable=True),
    )

    op.create_table(
        "log_cursor",
        sa.Column("target", sa.String(), primary_key=True),
        sa.Column("path", sa.String(), nullable=False),
        sa.Column("inode", sa.String(), nullable=True),
        sa.Column("offset", sa.BigInteger(), nullable=False),  # byte offsets and Loki nanoseconds
        sa.Column("updated_at", TIMESTAMP, nullable=False),
    )

    op.create_table(
        "timeline_entry",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("incident_id", sa.Integer(), sa.ForeignKey("incident.id"), nullable=False),
        sa.Column("at", TIMESTAMP, nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("from_state", sa.String(), nullable=True),
        sa.Column("to_state", sa.String(), nullable=True),
        sa.Column("message", sa.String(), nullable=False),
    )
    op.create_index("ix_timeline_entry_incident_id", "timeline_entry", ["incident_id"])

    op.create_table(
        "evidence",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("incident_id", sa.Integer(), sa.ForeignKey("incident.id"), nullable=False),
        sa.Column("finding_id", sa.Integer(), sa.ForeignKey("finding.id"), nullable=True),
        sa.Column("observation_id", sa.Integer(), sa.ForeignKey("observation.id"), nullable=True),
        sa.Column("at", TIMESTAMP, nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("summary", sa.String(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
    )
    op.create_index("ix_evidence_incident_id", "evidence", ["incident_id"])

    op.create_table(
        "alert",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("fingerprint", sa.String(), nullable=False),
        sa.Column("starts_at", TIMESTAMP, nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("ends_at", TIMESTAMP, nullable=True),
        sa.Column("alertname", sa.String(), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("annotations", sa.JSON(), nullable=False),
        sa.Column("generator_url", sa.String(), nullable=True),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("origin", sa.String(), nullable=False),
        sa.Column("first_received", TIMESTAMP, nullable=False),
        sa.Column("last_received", TIMESTAMP, nullable=False),
        sa.Column("deliveries", sa.Integer(), nullable=False),
        sa.Column("finding_id", sa.Integer(), sa.ForeignKey("finding.id"), nullable=True),
        sa.Column("raw", sa.JSON(), nullable=False),
        sa.UniqueConstraint("fingerprint", "starts_at", name="uq_alert_episode"),
    )
    op.create_index("ix_alert_fingerprint", "alert", ["fingerprint"])
    op.create_index("ix_alert_origin", "alert", ["origin"])

    op.create_table(
        "ingest_payload",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("received_at", TIMESTAMP, nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("accepted", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(), nullable=True),
        sa.Column("alerts", sa.Integer(), nullable=False),
        sa.Column("body", sa.String(), nullable=False),
    )
    op.create_index("ix_ingest_payload_received_at", "ingest_payload", ["received_at"])
