"""policy versions per org (permissions as code) and the deciding rule on audit rows

Revision ID: 0005
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import policy_service.storage.models

revision = "0005"
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


def downgrade() -> None:
    with op.batch_alter_table("audit_request_logs") as batch_op:
        batch_op.drop_column("rule")
    op.drop_table("policy_versions")
