"""pending custom-domain claims block nobody: one claim per (org, domain), one verified per domain

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_VERIFIED = sa.text("verified_at IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("org_domains") as batch_op:
        batch_op.drop_constraint(op.f("uq_org_domains_domain"), type_="unique")
        batch_op.create_unique_constraint(op.f("uq_org_domains_org_id_domain"), ["org_id", "domain"])
    op.create_index(op.f("ix_org_domains_domain"), "org_domains", ["domain"])
    op.create_index(
        "uq_org_domains_verified_domain",
        "org_domains",
        ["domain"],
        unique=True,
        sqlite_where=_VERIFIED,
        postgresql_where=_VERIFIED,
    )


def downgrade() -> None:
    # Only verified claims survive a downgrade: the old schema allows one row per domain.
    op.execute("DELETE FROM org_domains WHERE verified_at IS NULL")
    op.drop_index("uq_org_domains_verified_domain", table_name="org_domains")
    op.drop_index(op.f("ix_org_domains_domain"), table_name="org_domains")
    with op.batch_alter_table("org_domains") as batch_op:
        batch_op.drop_constraint(op.f("uq_org_domains_org_id_domain"), type_="unique")
        batch_op.create_unique_constraint(op.f("uq_org_domains_domain"), ["domain"])
