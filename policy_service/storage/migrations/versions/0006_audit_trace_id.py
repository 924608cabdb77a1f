"""audit rows carry the OpenTelemetry trace id of the request that wrote them

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A constant default: instant on Postgres 11+, no table rebuild on SQLite. Rows written
    # before this migration keep '' and so keep their digest hashes (see audit/chain.py).
    op.add_column("audit_request_logs", sa.Column("trace_id", sa.String(length=32), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("audit_request_logs") as batch_op:
        batch_op.drop_column("trace_id")
