"""audit log: call_at (a call's time, on its completion too); on Postgres, monthly range
partitions by call_at so retention drops whole months (ADR 0022)

Revision ID: 0009
Revises: 0008

Postgres copies every row into the partitioned table (same seq values, same sequence), so
digests still verify: call_at is not hashed. Plan a maintenance window for a large log: the
copy takes about as long as a dump and restore of the table.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from policy_service.audit.partitions import AHEAD_MONTHS, DEFAULT, create_partition_sql, months, next_month

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_T = "audit_request_logs"
_OLD = f"{_T}_0008"


def _columns(table: str) -> list[str]:
    """The table's columns as they are (a migration merged before this one may add some)."""
    found = op.get_bind().execute(
        sa.text("SELECT column_name FROM information_schema.columns WHERE table_name = :t ORDER BY ordinal_position"),
        {"t": table},
    )
    return [name for name in found.scalars() if name != "call_at"]


_SECONDARY = (
    ("ix_audit_org_created", "(org_slug, created_at)"),
    ("ix_audit_created", "(created_at)"),
    ("ix_audit_status_created", "(status, created_at)"),
    ("ix_audit_approval", "(approval_id)"),
)


def _secondary_indexes(call_at: bool) -> list[str]:
    """Unique indexes on a partitioned table must hold the partition key: (call_id, call_at)
    and (completes, call_at). The second stays a global fact because a completion copies its
    call's call_at; call ids are random 128-bit values made by the policy service."""
    out = [f"CREATE INDEX {name} ON {_T} {cols}" for name, cols in _SECONDARY]
    key = ", call_at" if call_at else ""
    out.append(f"CREATE UNIQUE INDEX uq_audit_completes ON {_T} (completes{key}) WHERE completes != ''")
    return out


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        # AUTOINCREMENT: SQLite would otherwise reuse the seq of rows retention removed, and a
        # new row would land under the retention anchor.
        with op.batch_alter_table(_T, recreate="always", table_kwargs={"sqlite_autoincrement": True}) as batch_op:
            batch_op.add_column(
                sa.Column("call_at", sa.DateTime(), nullable=False, server_default="1970-01-01 00:00:00")
            )
        op.execute(f"UPDATE {_T} SET call_at = created_at")
        op.execute(
            f"UPDATE {_T} SET call_at = (SELECT s.created_at FROM {_T} s WHERE s.call_id = {_T}.completes) "
            f"WHERE completes != '' AND EXISTS (SELECT 1 FROM {_T} s WHERE s.call_id = {_T}.completes)"
        )
        return
    op.execute(f"LOCK TABLE {_T} IN EXCLUSIVE MODE")
    op.execute(f"ALTER TABLE {_T} RENAME TO {_OLD}")
    for name, _ in _SECONDARY:
        op.execute(f"DROP INDEX {name}")
    op.execute("DROP INDEX uq_audit_completes")
    op.execute(f"ALTER TABLE {_OLD} DROP CONSTRAINT pk_audit_request_logs")
    op.execute(f"ALTER TABLE {_OLD} DROP CONSTRAINT uq_audit_request_logs_call_id")
    op.execute("ALTER SEQUENCE audit_request_logs_seq_seq OWNED BY NONE")
    op.execute(
        f"CREATE TABLE {_T} (LIKE {_OLD} INCLUDING DEFAULTS, call_at timestamp NOT NULL, "
        "CONSTRAINT pk_audit_request_logs PRIMARY KEY (seq, call_at), "
        "CONSTRAINT uq_audit_request_logs_call_id UNIQUE (call_id, call_at)) PARTITION BY RANGE (call_at)"
    )
    op.execute(f"CREATE TABLE {DEFAULT} PARTITION OF {_T} DEFAULT")
    oldest = op.get_bind().execute(sa.text(f"SELECT min(created_at) FROM {_OLD}")).scalar()
    now = datetime.now(UTC).replace(tzinfo=None)
    last = now
    for _ in range(AHEAD_MONTHS):
        last = next_month(last)
    for start in months(oldest or now, last):
        op.execute(create_partition_sql(start))
    # A completion's call_at is its call's created_at (its own time when the call is gone).
    columns = _columns(_OLD)
    op.execute(
        f"INSERT INTO {_T} ({', '.join(columns)}, call_at) "
        f"SELECT {', '.join('o.' + c for c in columns)}, coalesce(s.created_at, o.created_at) "
        f"FROM {_OLD} o LEFT JOIN {_OLD} s ON o.completes != '' AND s.call_id = o.completes"
    )
    for statement in _secondary_indexes(call_at=True):
        op.execute(statement)
    op.execute(f"ALTER SEQUENCE audit_request_logs_seq_seq OWNED BY {_T}.seq")
    op.execute(f"DROP TABLE {_OLD}")
    op.execute(f"ANALYZE {_T}")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        with op.batch_alter_table(_T) as batch_op:
            batch_op.drop_column("call_at")
        return
    new = f"{_T}_0009"
    op.execute(f"LOCK TABLE {_T} IN EXCLUSIVE MODE")
    op.execute(f"ALTER TABLE {_T} RENAME TO {new}")
    for name, _ in _SECONDARY:
        op.execute(f"DROP INDEX {name}")
    op.execute("DROP INDEX uq_audit_completes")
    op.execute(f"ALTER TABLE {new} DROP CONSTRAINT pk_audit_request_logs")
    op.execute(f"ALTER TABLE {new} DROP CONSTRAINT uq_audit_request_logs_call_id")
    op.execute("ALTER SEQUENCE audit_request_logs_seq_seq OWNED BY NONE")
    op.execute(
        f"CREATE TABLE {_T} (LIKE {new} INCLUDING DEFAULTS, CONSTRAINT pk_audit_request_logs PRIMARY KEY (seq), "
        "CONSTRAINT uq_audit_request_logs_call_id UNIQUE (call_id))"
    )
    op.execute(f"ALTER TABLE {_T} DROP COLUMN call_at")
    columns = ", ".join(_columns(new))
    op.execute(f"INSERT INTO {_T} ({columns}) SELECT {columns} FROM {new}")
    for statement in _secondary_indexes(call_at=False):
        op.execute(statement)
    op.execute(f"ALTER SEQUENCE audit_request_logs_seq_seq OWNED BY {_T}.seq")
    op.execute(f"DROP TABLE {new}")
