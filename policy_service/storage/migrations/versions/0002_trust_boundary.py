"""trust boundary: service identities, append-only audit completions, console sessions

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import policy_service.storage.models

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "service_identities",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("scopes", sa.String(length=200), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", policy_service.storage.models.UTCDateTime(), nullable=False),
        sa.Column("revoked_at", policy_service.storage.models.UTCDateTime(), nullable=True),
        sa.Column("last_used_at", policy_service.storage.models.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_identities")),
        sa.UniqueConstraint("name", name=op.f("uq_service_identities_name")),
    )
    op.create_table(
        "console_sessions",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("principal_kind", sa.String(length=16), nullable=False),
        sa.Column("principal_id", sa.String(length=64), nullable=False),
        sa.Column("org_slug", sa.String(length=63), nullable=False),
        sa.Column("created_at", policy_service.storage.models.UTCDateTime(), nullable=False),
        sa.Column("expires_at", policy_service.storage.models.UTCDateTime(), nullable=False),
        sa.Column("revoked_at", policy_service.storage.models.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_console_sessions")),
    )
    with op.batch_alter_table("audit_request_logs") as batch_op:
        batch_op.add_column(sa.Column("completes", sa.String(length=32), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("service_id", sa.String(length=32), nullable=False, server_default=""))
    op.create_index(
        "uq_audit_completes",
        "audit_request_logs",
        ["completes"],
        unique=True,
        sqlite_where=sa.text("completes != ''"),
        postgresql_where=sa.text("completes != ''"),
    )
    with op.batch_alter_table("audit_digests") as batch_op:
        batch_op.add_column(sa.Column("signature", sa.String(length=64), nullable=False, server_default=""))
    with op.batch_alter_table("approvals") as batch_op:
        batch_op.add_column(sa.Column("arguments_exact", sa.Text(), nullable=False, server_default=""))
    with op.batch_alter_table("toolkits") as batch_op:
        batch_op.add_column(
            sa.Column("new_tool_permission", sa.String(length=16), nullable=False, server_default="needs_approval")
        )


def downgrade() -> None:
    with op.batch_alter_table("toolkits") as batch_op:
        batch_op.drop_column("new_tool_permission")
    with op.batch_alter_table("approvals") as batch_op:
        batch_op.drop_column("arguments_exact")
    with op.batch_alter_table("audit_digests") as batch_op:
        batch_op.drop_column("signature")
    op.drop_index("uq_audit_completes", table_name="audit_request_logs")
    with op.batch_alter_table("audit_request_logs") as batch_op:
        batch_op.drop_column("service_id")
        batch_op.drop_column("completes")
    op.drop_table("console_sessions")
    op.drop_table("service_identities")
