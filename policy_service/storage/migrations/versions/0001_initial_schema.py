"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-25 01:22:30.340390
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import policy_service.storage.models

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_digests",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("first_seq", sa.BigInteger(), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("row_count", sa.Integer(), nullable=False),
        sa.Column("rows_sha256", sa.String(length=64), nullable=False),
        sa.Column("row_hashes", sa.Text(), nullable=False),
        sa.Column("previous_digest", sa.String(length=64), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("created_at", policy_service.storage.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_digests")),
    )
    op.create_table(
        "audit_request_logs",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("call_id", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("org_slug", sa.String(length=63), nullable=False),
        sa.Column("toolkit_org_slug", sa.String(length=63), nullable=False),
        sa.Column("toolkit_slug", sa.String(length=63), nullable=False),
        sa.Column("tool", sa.String(length=128), nullable=False),
        sa.Column("method", sa.String(length=64), nullable=False),
        sa.Column("actor_type", sa.String(length=16), nullable=False),
        sa.Column("actor_id", sa.String(length=64), nullable=False),
        sa.Column("actor_display", sa.String(length=320), nullable=False),
        sa.Column("permission", sa.String(length=16), nullable=False),
        sa.Column("decision", sa.String(length=24), nullable=False),
        sa.Column("approval_id", sa.String(length=32), nullable=False),
        sa.Column("request_payload", sa.Text(), nullable=False),
        sa.Column("response_payload", sa.Text(), nullable=False),
        sa.Column("redacted_paths", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("client_address", sa.String(length=64), nullable=False),
        sa.Column("user_agent", sa.String(length=512), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", policy_service.storage.models.UTCDateTime(), nullable=False),
        sa.Column("completed_at", policy_service.storage.models.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_request_logs")),
        sa.UniqueConstraint("call_id", name=op.f("uq_audit_request_logs_call_id")),
    )
    with op.batch_alter_table("audit_request_logs", schema=None) as batch_op:
        batch_op.create_index("ix_audit_approval", ["approval_id"], unique=False)
        batch_op.create_index("ix_audit_created", ["created_at"], unique=False)
        batch_op.create_index("ix_audit_org_created", ["org_slug", "created_at"], unique=False)
        batch_op.create_index("ix_audit_status_created", ["status", "created_at"], unique=False)

    op.create_table(
        "organizations",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("slug", sa.String(length=63), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", policy_service.storage.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organizations")),
        sa.UniqueConstraint("slug", name=op.f("uq_organizations_slug")),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("created_at", policy_service.storage.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
    )
    op.create_table(
        "roles",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("org_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_roles_org_id_organizations"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_roles")),
        sa.UniqueConstraint("org_id", "name", name=op.f("uq_roles_org_id_name")),
    )
    op.create_table(
        "toolkits",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("org_id", sa.String(length=32), nullable=False),
        sa.Column("slug", sa.String(length=63), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("visibility", sa.String(length=16), nullable=False),
        sa.Column("backend_url", sa.Text(), nullable=False),
        sa.Column("backend_headers_json", sa.Text(), nullable=False),
        sa.Column("backend_timeout_seconds", sa.Float(), nullable=False),
        sa.Column("updated_at", policy_service.storage.models.UTCDateTime(), nullable=False),
        sa.CheckConstraint("visibility IN ('public', 'private')", name=op.f("ck_toolkits_visibility")),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_toolkits_org_id_organizations"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_toolkits")),
        sa.UniqueConstraint("org_id", "slug", name=op.f("uq_toolkits_org_id_slug")),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("org_id", sa.String(length=32), nullable=False),
        sa.Column("role_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", policy_service.storage.models.UTCDateTime(), nullable=False),
        sa.Column("expires_at", policy_service.storage.models.UTCDateTime(), nullable=True),
        sa.Column("revoked_at", policy_service.storage.models.UTCDateTime(), nullable=True),
        sa.Column("last_used_at", policy_service.storage.models.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_api_keys_org_id_organizations"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["role_id"], ["roles.id"], name=op.f("fk_api_keys_role_id_roles")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
    )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_keys_org_id"), ["org_id"], unique=False)

    op.create_table(
        "approvals",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("org_id", sa.String(length=32), nullable=False),
        sa.Column("principal_kind", sa.String(length=16), nullable=False),
        sa.Column("principal_id", sa.String(length=64), nullable=False),
        sa.Column("principal_display", sa.String(length=320), nullable=False),
        sa.Column("principal_role", sa.String(length=63), nullable=False),
        sa.Column("toolkit_id", sa.String(length=32), nullable=False),
        sa.Column("tool", sa.String(length=128), nullable=False),
        sa.Column("arguments_json", sa.Text(), nullable=False),
        sa.Column("arguments_sha256", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("decided_by", sa.String(length=320), nullable=False),
        sa.Column("created_at", policy_service.storage.models.UTCDateTime(), nullable=False),
        sa.Column("expires_at", policy_service.storage.models.UTCDateTime(), nullable=False),
        sa.Column("decided_at", policy_service.storage.models.UTCDateTime(), nullable=True),
        sa.Column("consumed_by_call_id", sa.String(length=32), nullable=False),
        sa.Column("updated_at", policy_service.storage.models.UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'approved', 'denied', 'expired', 'consumed')", name=op.f("ck_approvals_status")
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_approvals_org_id_organizations"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["toolkit_id"], ["toolkits.id"], name=op.f("fk_approvals_toolkit_id_toolkits"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_approvals")),
    )
    with op.batch_alter_table("approvals", schema=None) as batch_op:
        batch_op.create_index("ix_approvals_org_status_created", ["org_id", "status", "created_at"], unique=False)
        batch_op.create_index("ix_approvals_updated_at", ["updated_at"], unique=False)
        batch_op.create_index(
            "uq_approvals_live_binding",
            ["org_id", "principal_id", "toolkit_id", "tool", "arguments_sha256"],
            unique=True,
            sqlite_where=sa.text("status IN ('pending', 'approved')"),
            postgresql_where=sa.text("status IN ('pending', 'approved')"),
        )

    op.create_table(
        "memberships",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("org_id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("role_id", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_memberships_org_id_organizations"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["role_id"], ["roles.id"], name=op.f("fk_memberships_role_id_roles")),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_memberships_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_memberships")),
        sa.UniqueConstraint("org_id", "user_id", name=op.f("uq_memberships_org_id_user_id")),
    )
    with op.batch_alter_table("memberships", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_memberships_user_id"), ["user_id"], unique=False)

    op.create_table(
        "tools",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("toolkit_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("input_schema_json", sa.Text(), nullable=False),
        sa.Column("output_schema_json", sa.Text(), nullable=False),
        sa.Column("annotations_json", sa.Text(), nullable=False),
        sa.Column("default_permission", sa.String(length=16), nullable=False),
        sa.CheckConstraint(
            "default_permission IN ('always_allow', 'needs_approval', 'blocked')",
            name=op.f("ck_tools_default_permission"),
        ),
        sa.ForeignKeyConstraint(
            ["toolkit_id"], ["toolkits.id"], name=op.f("fk_tools_toolkit_id_toolkits"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tools")),
        sa.UniqueConstraint("toolkit_id", "name", name=op.f("uq_tools_toolkit_id_name")),
    )
    op.create_table(
        "org_tool_defaults",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("org_id", sa.String(length=32), nullable=False),
        sa.Column("tool_id", sa.String(length=32), nullable=False),
        sa.Column("permission", sa.String(length=16), nullable=False),
        sa.CheckConstraint(
            "permission IN ('always_allow', 'needs_approval', 'blocked')", name=op.f("ck_org_tool_defaults_permission")
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_org_tool_defaults_org_id_organizations"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["tool_id"], ["tools.id"], name=op.f("fk_org_tool_defaults_tool_id_tools"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_org_tool_defaults")),
        sa.UniqueConstraint("org_id", "tool_id", name=op.f("uq_org_tool_defaults_org_id_tool_id")),
    )
    with op.batch_alter_table("org_tool_defaults", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_org_tool_defaults_tool_id"), ["tool_id"], unique=False)

    op.create_table(
        "role_overrides",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("org_id", sa.String(length=32), nullable=False),
        sa.Column("role_id", sa.String(length=32), nullable=False),
        sa.Column("tool_id", sa.String(length=32), nullable=False),
        sa.Column("permission", sa.String(length=16), nullable=False),
        sa.CheckConstraint(
            "permission IN ('always_allow', 'needs_approval', 'blocked')", name=op.f("ck_role_overrides_permission")
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_role_overrides_org_id_organizations"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["role_id"], ["roles.id"], name=op.f("fk_role_overrides_role_id_roles"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["tool_id"], ["tools.id"], name=op.f("fk_role_overrides_tool_id_tools"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_role_overrides")),
        sa.UniqueConstraint("role_id", "tool_id", name=op.f("uq_role_overrides_role_id_tool_id")),
    )
    with op.batch_alter_table("role_overrides", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_role_overrides_org_id"), ["org_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_role_overrides_tool_id"), ["tool_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("role_overrides", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_role_overrides_tool_id"))
        batch_op.drop_index(batch_op.f("ix_role_overrides_org_id"))

    op.drop_table("role_overrides")
    with op.batch_alter_table("org_tool_defaults", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_org_tool_defaults_tool_id"))

    op.drop_table("org_tool_defaults")
    op.drop_table("tools")
    with op.batch_alter_table("memberships", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_memberships_user_id"))

    op.drop_table("memberships")
    with op.batch_alter_table("approvals", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_approvals_live_binding",
            sqlite_where=sa.text("status IN ('pending', 'approved')"),
            postgresql_where=sa.text("status IN ('pending', 'approved')"),
        )
        batch_op.drop_index("ix_approvals_updated_at")
        batch_op.drop_index("ix_approvals_org_status_created")

    op.drop_table("approvals")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_keys_org_id"))

    op.drop_table("api_keys")
    op.drop_table("toolkits")
    op.drop_table("roles")
    op.drop_table("users")
    op.drop_table("organizations")
    with op.batch_alter_table("audit_request_logs", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_status_created")
        batch_op.drop_index("ix_audit_org_created")
        batch_op.drop_index("ix_audit_created")
        batch_op.drop_index("ix_audit_approval")

    op.drop_table("audit_request_logs")
    op.drop_table("audit_digests")
