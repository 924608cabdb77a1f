"""verified custom domains are proven again: when each was last checked, since when its proof is missing

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from policy_service.storage.models import UTCDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("org_domains") as batch_op:
        batch_op.add_column(sa.Column("checked_at", UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("failing_since", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("org_domains") as batch_op:
        batch_op.drop_column("failing_since")
        batch_op.drop_column("checked_at")
