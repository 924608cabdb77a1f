"""Where audit batches land. One sink per database, both append-only: a batch of new rows
and a batch of completions commit in one transaction.

A completion is a single INSERT…SELECT that copies the facts of the call's `started` row,
so completing a call costs no read round trip; a unique index on `completes` makes the
second completion of a call a no-op that the sink reports as a conflict."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy import Table, and_, bindparam, insert, literal, select
from sqlalchemy.ext.asyncio import AsyncEngine

from policy_service.storage.database import WriteGuard
from policy_service.storage.models import AuditRequestLog, utcnow

TABLE: Table = AuditRequestLog.__table__  # type: ignore[assignment]
COLUMNS = [c.name for c in TABLE.columns if c.name != "seq"]
# What a completion record copies from the row it completes, so it reads and filters alike.
CALL_FACTS = (
    "source",
    "org_slug",
    "toolkit_org_slug",
    "toolkit_slug",
    "tool",
    "method",
    "actor_type",
    "actor_id",
    "actor_display",
    "permission",
    "decision",
    "approval_id",
    "client_address",
    "user_agent",
    "request_id",
    "service_id",
    "trace_id",
    "rule",
    # The partition key (ADR 0022): a completion lands in its call's partition, so the unique
    # index on (completes, call_at) is a database fact on a partitioned table too.
    "call_at",
)
# A call can be completed this long after it started (ADR 0022): the completion's lookup by
# call_id then reads only the partitions of the last week, not every month kept. Older calls
# were closed as `abandoned` by the sweeper long before (MONOMCP_AUDIT_ABANDON_AFTER_SECONDS).
COMPLETABLE_FOR = timedelta(days=7)
# What a completion brings itself (the rest of the columns).
COMPLETION_FIELDS = (
    "call_id",
    "completes",
    "request_payload",
    "response_payload",
    "redacted_paths",
    "status",
    "error",
    "duration_ms",
    "created_at",
    "completed_at",
)


class Completed(StrEnum):
    OK = "ok"
    NOT_FOUND = "not_found"  # no started call with this id for this service
    CONFLICT = "conflict"  # the call already has its completion record


@dataclass(frozen=True, slots=True)
class Completion:
    """The completion record of call `completes`, written by service `service_id`."""

    call_id: str
    completes: str
    service_id: str
    response_payload: str
    redacted_paths: str
    status: str
    error: str
    duration_ms: float
    at: datetime

    def values(self) -> dict[str, Any]:
        return {
            "call_id": self.call_id,
            "completes": self.completes,
            "request_payload": "",
            "response_payload": self.response_payload,
            "redacted_paths": self.redacted_paths,
            "status": self.status,
            "error": self.error,
            "duration_ms": self.duration_ms,
            "created_at": self.at,
            "completed_at": self.at,
        }


class AuditSink(Protocol):
    async def commit(self, rows: list[dict[str, Any]], completions: list[Completion]) -> list[Completed]:
        """Commits every row and completion in one transaction (raises: nothing committed)."""

    async def close(self) -> None: ...


def naive_utc(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None)


def with_call_at(row: dict[str, Any]) -> dict[str, Any]:
    """A new row belongs to a call that starts now: its partition key is its own time."""
    if row.get("call_at") is None:
        row["call_at"] = row.get("created_at") or utcnow()
    return row


class SqlSink:
    """SQLAlchemy Core (SQLite, the embedded default): one transaction per batch."""

    def __init__(self, engine: AsyncEngine, guard: WriteGuard) -> None:
        self._engine = engine
        self._guard = guard
        started = TABLE.alias("started")
        facts = [started.c[name] for name in CALL_FACTS]
        own = [bindparam(name, type_=TABLE.c[name].type) for name in COMPLETION_FIELDS]
        source = select(*facts, *own).where(
            and_(
                started.c.call_id == bindparam("completes"),
                started.c.status == literal("started"),
                started.c.service_id == bindparam("service_id"),
                started.c.call_at >= bindparam("completable_since", type_=TABLE.c.call_at.type),
            )
        )
        self._complete = (
            insert(TABLE)
            .from_select([*CALL_FACTS, *COMPLETION_FIELDS], source)
            .prefix_with("OR IGNORE", dialect="sqlite")
        )
        self._started = select(literal(1)).where(
            TABLE.c.call_id == bindparam("completes"),
            TABLE.c.status == literal("started"),
            TABLE.c.service_id == bindparam("service_id"),
            TABLE.c.call_at >= bindparam("completable_since", type_=TABLE.c.call_at.type),
        )

    async def commit(self, rows: list[dict[str, Any]], completions: list[Completion]) -> list[Completed]:
        outcomes: list[Completed] = []
        async with self._guard(), self._engine.begin() as conn:
            if rows:
                await conn.execute(insert(TABLE), [with_call_at(r) for r in rows])
            for done in completions:
                params = done.values() | {"service_id": done.service_id, "completable_since": done.at - COMPLETABLE_FOR}
                if (await conn.execute(self._complete, params)).rowcount:
                    outcomes.append(Completed.OK)
                    continue
                exists = (await conn.execute(self._started, params)).first() is not None
                outcomes.append(Completed.CONFLICT if exists else Completed.NOT_FOUND)
        return outcomes

    async def close(self) -> None:
        return None
