"""one account per email, whatever its case: a unique index on lower(email)

Revision ID: 0013
Revises: 0012

Accounts that already differ only in case (made by AddMember before emails were normalised,
ADR 0046) are not merged: which account's password, memberships and keys should win is the
operator's call (one of them may have been made by another org's admin to hand over). The
upgrade stops instead, naming them and the fix (ADR 0051, docs/operations.md).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from policy_service.storage.migrate import DatabaseProblem

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

INDEX = "uq_users_lower_email"
_DUPLICATES = sa.text(
    "SELECT lower(email) AS email, id FROM users WHERE lower(email) IN "
    "(SELECT lower(email) FROM users GROUP BY lower(email) HAVING count(*) > 1) ORDER BY 1, 2"
)


def duplicates_message(rows: list[tuple[str, str]]) -> str:
    """One line naming every email held by several accounts, their ids, and what to do."""
    accounts: dict[str, list[str]] = {}
    for email, user_id in rows:
        accounts.setdefault(email, []).append(user_id)
    named = "; ".join(f"{email} (users {', '.join(ids)})" for email, ids in accounts.items())
    return (
        f"cannot upgrade: {len(accounts)} email(s) belong to more than one account, differing only in case: "
        f"{named}. Keep one account per email and delete the others (docs/operations.md, "
        '"Accounts that differ only in case"), then run `monomcp db upgrade` again'
    )


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":  # no new variant between the check and the index
        op.execute("LOCK TABLE users IN SHARE MODE")
    rows = [(r.email, r.id) for r in bind.execute(_DUPLICATES)]
    if rows:
        raise DatabaseProblem(duplicates_message(rows))
    op.create_index(INDEX, "users", [sa.text("lower(email)")], unique=True)


def downgrade() -> None:
    op.drop_index(INDEX, table_name="users")
