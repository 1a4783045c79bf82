"""Notification channels: the outbox and its delivery attempts, the notification log of route
groups, buttons sent to channels, the answers that came back and where reading them stopped; who acknowledged an
incident, and when.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("incident", sa.Column("acknowledged_at", TIMESTAMP, nullable=True))
    op.add_column("incident", sa.Column("acknowledged_by", sa.String(), nullable=True))
    op.create_table(
        "notification",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("key", sa.String(), nullable=False, unique=True),
        sa.Column("channel", sa.String(), nullable=False),
        sa.Column("category", sa.String(), nullable=False),
        sa.Column("incident_id", sa.Integer(), sa.ForeignKey("incident.id"), nullable=True),
        sa.Column("request_id", sa.Integer(), sa.ForeignKey("action_request.id"), nullable=True),
        sa.Column("route", sa.String(), nullable=True),
        sa.Column("fallbacks", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(), nullable=True),
        sa.Column("at", TIMESTAMP, nullable=False),
        sa.Column("next_attempt_at", TIMESTAMP, nullable=False),
        sa.Column("sent_at", TIMESTAMP, nullable=True),
        sa.Column("digest", sa.String(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("fallback_of", sa.Integer(), sa.ForeignKey("notification.id"), nullable=True),
        sa.Column("read_at", TIMESTAMP, nullable=True),
    )
    op.create_index("ix_notification_channel", "notification", ["channel"])
    op.create_index("ix_notification_incident_id", "notification", ["incident_id"])
    op.create_index("ix_notification_status", "notification", ["status"])
    op.create_index("ix_notification_at", "notification", ["at"])
    op.create_table(
        "delivery_attempt",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("notification_id", sa.Integer(), sa.ForeignKey("notification.id"), nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
        sa.Column("ok", sa.Boolean(), nullable=True),
        sa.Column("error", sa.String(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=True),
    )
    op.create_index("ix_delivery_attempt_notification_id", "delivery_attempt", ["notification_id"])
    op.create_table(
        "notification_group",
        sa.Column("route", sa.String(), primary_key=True),
        sa.Column("group_key", sa.String(), primary_key=True),
        sa.Column("first_at", TIMESTAMP, nullable=False),
        sa.Column("notified_at", TIMESTAMP, nullable=True),
        sa.Column("firing", sa.JSON(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
    )
    op.create_table(
        "channel_prompt",
        sa.Column("nonce", sa.String(), primary_key=True),
        sa.Column("channel", sa.String(), nullable=False),
        sa.Column("purpose", sa.String(), nullable=False),
        sa.Column("request_id", sa.Integer(), sa.ForeignKey("action_request.id"), nullable=True),
        sa.Column("incident_id", sa.Integer(), sa.ForeignKey("incident.id"), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.Column("answered_at", TIMESTAMP, nullable=True),
        sa.Column("answered_by", sa.String(), nullable=True),
        sa.Column("answer", sa.String(), nullable=True),
    )
    op.create_table(
        "channel_cursor",
        sa.Column("channel", sa.String(), primary_key=True),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
    )
    op.create_table(
        "channel_answer",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", TIMESTAMP, nullable=False),
        sa.Column("channel", sa.String(), nullable=False),
        sa.Column("identity", sa.String(), nullable=False),
        sa.Column("operator", sa.String(), nullable=True),
        sa.Column("answer", sa.String(), nullable=False),
        sa.Column("nonce", sa.String(), nullable=True),
        sa.Column("outcome", sa.String(), nullable=False),
        sa.Column("detail", sa.String(), nullable=False),
    )
    op.create_index("ix_channel_answer_at", "channel_answer", ["at"])


def downgrade() -> None:
    for table in ("channel_answer", "channel_cursor", "channel_prompt", "notification_group", "delivery_attempt", "notification"):
        op.drop_table(table)
    op.drop_column("incident", "acknowledged_by")
    op.drop_column("incident", "acknowledged_at")
