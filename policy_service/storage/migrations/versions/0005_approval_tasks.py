"""approval tasks: 2025-11-25 tasks waiting on approvals, with their kept results

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import policy_service.storage.models

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "approval_tasks",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("approval_id", sa.String(length=32), nullable=False),
        sa.Column("principal_kind", sa.String(length=16), nullable=False),
        sa.Column("principal_id", sa.String(length=64), nullable=False),
        sa.Column("toolkit_id", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("result_status", sa.String(length=16), nullable=False),
        sa.Column("result_json", sa.Text(), nullable=False),
        sa.Column("result_call_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", policy_service.storage.models.UTCDateTime(), nullable=False),
        sa.Column("updated_at", policy_service.storage.models.UTCDateTime(), nullable=False),
        sa.Column("expires_at", policy_service.storage.models.UTCDateTime(), nullable=False),
        sa.CheckConstraint("status IN ('live', 'cancelled')", name=op.f("ck_approval_tasks_status")),
        sa.ForeignKeyConstraint(
            ["approval_id"], ["approvals.id"], name=op.f("fk_approval_tasks_approval_id_approvals"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["toolkit_id"], ["toolkits.id"], name=op.f("fk_approval_tasks_toolkit_id_toolkits"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_approval_tasks")),
    )
    op.create_index("ix_approval_tasks_owner", "approval_tasks", ["principal_id", "toolkit_id", "created_at"])
    op.create_index("ix_approval_tasks_expires_at", "approval_tasks", ["expires_at"])
    op.create_index(op.f("ix_approval_tasks_approval_id"), "approval_tasks", ["approval_id"])


def downgrade() -> None:
    op.drop_table("approval_tasks")
