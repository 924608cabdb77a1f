"""The completion record comes before the result: DESIGN's rule that a tool's response
reaches the client only after its completion is durable.

A policy service restarting or a database connection dropped mid-call is retried with
backoff for a bounded time; if the record still cannot be written, the client gets an
error that says the call ran but its result is withheld (the `started` row stays visible
and the sweeper appends `abandoned`), never a success the audit log does not hold.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from mcp_front.observability.tracing import traced
from policy_service import errors
from policy_service.client import PolicyClient, PolicyUnavailable

log = logging.getLogger("monomcp.front")

# json.dumps with separators builds an encoder per call; this one is built once (docs/adr/0040).
_compact = json.JSONEncoder(separators=(",", ":")).encode
_RETRY_DELAYS = (0.1, 0.25, 0.5, 1.0, 2.0, 3.0)
WITHHELD = (
    "The tool ran, but its audit record could not be written, so its result is withheld. "
    "Check the audit log (call {call_id}) before running it again."
)


@traced("monomcp.complete")
async def complete_durably(
    policy: PolicyClient,
    call_id: str,
    status: str,
    result: dict[str, Any],
    error: str,
    duration_ms: float,
    keep_for_tasks: bool = False,
) -> bool:
    """True once the completion is durable; False when it could not be written.

    `keep_for_tasks`: the call consumed an approval, whose tasks keep the result."""
    complete = policy.complete_task_call if keep_for_tasks else policy.complete_tool_call
    payload = _compact(result)
    tried = False
    for delay in (*_RETRY_DELAYS, None):
        try:
            await complete(call_id, status, payload, error, duration_ms)
            return True
        except errors.FailedPrecondition:
            # An earlier attempt of ours committed but its answer was lost: it is durable.
            return tried
        except (PolicyUnavailable, errors.PolicyError) as exc:
            if isinstance(exc, (errors.InvalidArgument, errors.NotFound, errors.PermissionDenied)):
                log.error("complete refused call_id=%s: %s", call_id, exc.message)
                return False
            tried = True
            if delay is None:
                log.error("complete failed call_id=%s: %s", call_id, exc.message)
                return False
            await asyncio.sleep(delay)
    return False
