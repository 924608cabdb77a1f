"""Failed credentials are budgeted per client address, before anyone is asked.

Per-key limits cannot stop a client that invents a new bogus bearer for every request:
each looks like a fresh key. So every credential the policy service refuses is charged to
the client's address; an address over its budget gets 429 without a policy call (and its
refusals are audited, summarised like any flood). In-process per replica.
"""

from __future__ import annotations

import time

from mcp_front.edge.limits import LimitSettings, LocalLimiter

# A person mistyping a key stays far below this; a scanner does not.
DEFAULT_FAILURES = LimitSettings(rate_per_second=5.0, burst=50, max_concurrent=0)
_MAX_BLOCKED = 100_000


class CredentialFailures:
    def __init__(self, settings: LimitSettings = DEFAULT_FAILURES) -> None:
        self._budget = LocalLimiter(settings)
        self._blocked_until: dict[str, float] = {}

    def retry_after(self, address: str) -> float:
        """Seconds until `address` may try again (0 = it may now)."""
        until = self._blocked_until.get(address)
        if until is None:
            return 0.0
        left = until - time.monotonic()
        if left <= 0:
            del self._blocked_until[address]
            return 0.0
        return left

    async def failed(self, address: str) -> None:
        admission = await self._budget.admit(address)
        await admission.release()
        if not admission.allowed:
            if len(self._blocked_until) > _MAX_BLOCKED:
                self._blocked_until.clear()
            self._blocked_until[address] = time.monotonic() + max(admission.retry_after, 1.0)
