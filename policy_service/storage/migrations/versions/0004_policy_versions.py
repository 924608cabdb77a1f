"""policy versions per org (permissions as code), the deciding rule on audit rows, approval
policies (n-of-m votes, windows)

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import policy_service.storage.models

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "policy_versions",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("org_id", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("document_json", sa.Text(), nullable=False),
        sa.Column("changes_json", sa.Text(), nullable=False),
        sa.Column("applied_by", sa.String(length=320), nullable=False),
        sa.Column("applied_at", policy_service.storage.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_policy_versions_org_id_organizations"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policy_versions")),
        sa.UniqueConstraint("org_id", "version", name=op.f("uq_policy_versions_org_id_version")),
    )
    with op.batch_alter_table("audit_request_logs") as batch_op:
        batch_op.add_column(sa.Column("rule", sa.String(length=200), nullable=False, server_default=""))
    with op.batch_alter_table("approvals") as batch_op:
        batch_op.add_column(sa.Column("required_approvals", sa.Integer(), nullable=False, server_default="1"))
        batch_op.add_column(sa.Column("approvals_count", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("policy_json", sa.Text(), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("window_when", sa.Text(), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("window_until", policy_service.storage.models.UTCDateTime(), nullable=True))
    op.create_table(
        "approval_votes",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("approval_id", sa.String(length=32), nullable=False),
        sa.Column("voter_key", sa.String(length=100), nullable=False),
        sa.Column("voter_display", sa.String(length=320), nullable=False),
        sa.Column("created_at", policy_service.storage.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["approval_id"], ["approvals.id"], name=op.f("fk_approval_votes_approval_id_approvals"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_approval_votes")),
        sa.UniqueConstraint("approval_id", "voter_key", name=op.f("uq_approval_votes_approval_id_voter_key")),
    )


def downgrade() -> None:
    op.drop_table("approval_votes")
    with op.batch_alter_table("approvals") as batch_op:
        for column in ("window_until", "window_when", "policy_json", "approvals_count", "required_approvals"):
            batch_op.drop_column(column)
    with op.batch_alter_table("audit_request_logs") as batch_op:
        batch_op.drop_column("rule")
    op.drop_table("policy_versions")
