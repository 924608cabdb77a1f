"""people (passwords, refresh tokens, key owners), catalogue items of every kind, custom domains

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import policy_service.storage.models

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch_op:
        batch_op.add_column(sa.Column("display_name", sa.String(length=200), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("password_hash", sa.String(length=255), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("disabled_at", policy_service.storage.models.UTCDateTime(), nullable=True))
    with op.batch_alter_table("api_keys") as batch_op:
        batch_op.add_column(sa.Column("owner_user_id", sa.String(length=32), nullable=True))
        batch_op.create_foreign_key(
            op.f("fk_api_keys_owner_user_id_users"), "users", ["owner_user_id"], ["id"], ondelete="SET NULL"
        )
    with op.batch_alter_table("tools") as batch_op:
        batch_op.add_column(sa.Column("kind", sa.String(length=24), nullable=False, server_default="tool"))
        batch_op.add_column(sa.Column("spec_json", sa.Text(), nullable=False, server_default=""))
        batch_op.alter_column("name", existing_type=sa.String(length=128), type_=sa.String(length=512))
        batch_op.drop_constraint("uq_tools_toolkit_id_name", type_="unique")
        batch_op.create_unique_constraint(op.f("uq_tools_toolkit_id_kind_name"), ["toolkit_id", "kind", "name"])
    op.create_table(
        "refresh_tokens",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("family_id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("org_id", sa.String(length=32), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", policy_service.storage.models.UTCDateTime(), nullable=False),
        sa.Column("expires_at", policy_service.storage.models.UTCDateTime(), nullable=False),
        sa.Column("used_at", policy_service.storage.models.UTCDateTime(), nullable=True),
        sa.Column("revoked_at", policy_service.storage.models.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_refresh_tokens_user_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_refresh_tokens_org_id_organizations"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refresh_tokens")),
    )
    op.create_index("ix_refresh_tokens_family", "refresh_tokens", ["family_id"])
    op.create_table(
        "org_domains",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("org_id", sa.String(length=32), nullable=False),
        sa.Column("domain", sa.String(length=253), nullable=False),
        sa.Column("verification_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", policy_service.storage.models.UTCDateTime(), nullable=False),
        sa.Column("verified_at", policy_service.storage.models.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_org_domains_org_id_organizations"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_org_domains")),
        sa.UniqueConstraint("domain", name=op.f("uq_org_domains_domain")),
    )
    op.create_index(op.f("ix_org_domains_org_id"), "org_domains", ["org_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_org_domains_org_id"), table_name="org_domains")
    op.drop_table("org_domains")
    op.drop_index("ix_refresh_tokens_family", table_name="refresh_tokens")
    op.drop_table("refresh_tokens")
    with op.batch_alter_table("tools") as batch_op:
        batch_op.drop_constraint(op.f("uq_tools_toolkit_id_kind_name"), type_="unique")
        batch_op.create_unique_constraint("uq_tools_toolkit_id_name", ["toolkit_id", "name"])
        batch_op.alter_column("name", existing_type=sa.String(length=512), type_=sa.String(length=128))
        batch_op.drop_column("spec_json")
        batch_op.drop_column("kind")
    with op.batch_alter_table("api_keys") as batch_op:
        batch_op.drop_constraint(op.f("fk_api_keys_owner_user_id_users"), type_="foreignkey")
        batch_op.drop_column("owner_user_id")
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_column("disabled_at")
        batch_op.drop_column("password_hash")
        batch_op.drop_column("display_name")
