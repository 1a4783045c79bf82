"""Several workers sharing the ledger: where and which run each observation was, per-location
threshold state, the fleet's workers and the samples they send.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("observation", sa.Column("location", sa.String(), nullable=True))
    op.add_column("observation", sa.Column("slot_key", sa.String(), nullable=True))
    op.create_index("uq_observation_slot", "observation", ["target", "slot_key"], unique=True)
    op.create_table(
        "location_state",
        sa.Column("target", sa.String(), primary_key=True),
        sa.Column("location", sa.String(), primary_key=True),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("consecutive_successes", sa.Integer(), nullable=False),
        sa.Column("failing", sa.Boolean(), nullable=False),
        sa.Column("last_ok", sa.Boolean(), nullable=True),
        sa.Column("last_error", sa.String(), nullable=True),
        sa.Column("last_observed_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "fleet_worker",
        sa.Column("name", sa.String(), primary_key=True),
        sa.Column("location", sa.String(), nullable=False),
        sa.Column("host", sa.String(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("house", sa.Boolean(), nullable=False),
        sa.Column("buckets", sa.Integer(), nullable=False),
        sa.Column("targets", sa.Integer(), nullable=False),
        sa.Column("probes_per_second", sa.Float(), nullable=False),
        sa.Column("lag_p99_seconds", sa.Float(), nullable=False),
        sa.Column("policy_digest", sa.String(), nullable=False),
        sa.Column("dead_finding_id", sa.Integer(), sa.ForeignKey("finding.id"), nullable=True),
    )
    op.create_index("ix_fleet_worker_heartbeat_at", "fleet_worker", ["heartbeat_at"])
    op.create_table(
        "sample_batch",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("worker", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("sample_batch")
    op.drop_index("ix_fleet_worker_heartbeat_at", "fleet_worker")
    op.drop_table("fleet_worker")
    op.drop_table("location_state")
    op.drop_index("uq_observation_slot", "observation")
    with op.batch_alter_table("observation") as batch:
        batch.drop_column("slot_key")
        batch.drop_column("location")
