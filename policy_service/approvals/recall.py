"""What a needs_approval call gets: a granted window that covers it (ADR 0021), consume,
reuse, deny or create — in that order.

Consuming is its own path and never creates anything. A call that finds no approved
approval but a consumed one used within the reuse window is a racing re-call of that
same intent: it is told which call used it, and no new pending request is opened.
Only a call that finds nothing live, recent or denied creates a pending approval.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from policy_service.approvals import store
from policy_service.storage.models import utcnow


@dataclass(frozen=True, slots=True)
class Outcome:
    decision: str  # "allow" | "denied" | "pending_approval"
    status: str  # the audit row's status
    approval_id: str
    message: str


async def settle(session: AsyncSession, binding: store.Binding, call_id: str, ttls: store.TTLs) -> Outcome:
    """Decide the call inside the caller's write transaction (with its audit row)."""
    await store.expire_stale(session, binding.where())
    windowed = await store.try_window(session, binding)
    if windowed is not None:
        return Outcome("allow", "started", windowed, "")
    consumed = await store.try_consume(session, binding, call_id)
    if consumed is not None:
        return Outcome("allow", "started", consumed, "")
    now = utcnow()
    used = await store.recently_consumed(session, binding, now - ttls.reuse_window)
    if used is not None:
        window = int(ttls.reuse_window.total_seconds())
        message = (
            f"Not run: approval {used.id} was already used by call {used.consumed_by_call_id}. "
            f"Identical calls within {window} s of that run count as its duplicates; "
            f"call again after that to request a new approval."
        )
        return Outcome("denied", "denied", used.id, message)
    denial = await store.latest_denial(session, binding, now - ttls.pending)
    if denial is not None:
        return Outcome("denied", "denied", denial.id, f"An admin denied this request: {denial.reason}")
    approval, _created = await store.create_pending(session, binding, ttls.pending)
    return Outcome("pending_approval", "pending_approval", approval.id, "This call needs an admin's approval.")
