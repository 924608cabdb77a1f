"""policy version: triggers on every table decisions read (the snapshot's invalidation)

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from alembic import op

from policy_service.storage.policy_version import drop_triggers, postgres_triggers, sqlite_triggers

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    for statement in postgres_triggers() if dialect == "postgresql" else sqlite_triggers():
        op.execute(statement)


def downgrade() -> None:
    for statement in drop_triggers(op.get_bind().dialect.name):
        op.execute(statement)
