"""The one place the front audits requests it refuses before MCP handling.

Every refusal becomes a RecordRequest row with its status. So that a flood of refusals
cannot turn into a flood of database writes, each key (bearer hash, or client address when
there is no usable bearer) gets a budget of rows per second; refusals over budget are
counted and written as one summary row when that second ends.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from mcp_front.edge.request import EdgeRequest
from policy_service import errors
from policy_service.client import PolicyClient

log = logging.getLogger("monomcp.front")


@dataclass(frozen=True, slots=True)
class Refusal:
    """A check's verdict against a request: audited with `status` and `error` (unless
    `status` is empty: audited already, or not at all), then answered by `answer`."""

    status: str
    error: str
    answer: ASGIApp


async def answer_refusal(
    recorder: RefusalRecorder, edge: EdgeRequest, refusal: Refusal, scope: Scope, receive: Receive, send: Send
) -> None:
    """Every refusal is audited, then answered: the one place that does both."""
    if refusal.status:
        await recorder.record(edge, refusal.status, refusal.error)
    await refusal.answer(scope, receive, send)


_BY_ADDRESS = "addr:"


@dataclass(slots=True)
class _Window:
    started: float
    rows: int = 0
    suppressed: int = 0
    last: dict[str, Any] = field(default_factory=dict)


class RefusalRecorder:
    def __init__(self, policy: PolicyClient, rows_per_key_per_second: int = 20) -> None:
        self._policy = policy
        self._budget = rows_per_key_per_second
        self._windows: dict[str, _Window] = {}
        self._flushes: set[asyncio.Task[None]] = set()

    async def record(
        self,
        edge: EdgeRequest,
        status: str,
        error: str,
        *,
        method: str = "http",
        tool: str = "",
        request_json: str = "",
    ) -> None:
        row: dict[str, Any] = {
            "credential": edge.token,
            "org": edge.org,
            "toolkit": edge.toolkit,
            "method": method,
            "tool": tool,
            "request_json": request_json,
            "status": status,
            "error": error,
            **edge.facts(),
        }
        # Throttled requests are budgeted by address: a client inventing a new bearer per request
        # cannot turn each one into a fresh budget (its failed credentials are bounded by
        # CredentialFailures before that, per address).
        trusted_key = edge.key if status != "rate_limited" else ""
        if self._within_budget(trusted_key or _BY_ADDRESS + edge.client_address, row):
            await self._write(row)

    def _within_budget(self, key: str, row: dict[str, Any]) -> bool:
        now = time.monotonic()
        window = self._windows.get(key)
        if window is None or now - window.started >= 1.0:
            if window is not None and window.suppressed:
                return True  # its flush is pending and will summarise; this row starts afresh below
            if len(self._windows) > 10_000:
                self._windows = {k: w for k, w in self._windows.items() if w.suppressed}
            window = self._windows[key] = _Window(now)
        if window.rows < self._budget:
            window.rows += 1
            return True
        window.suppressed += 1
        window.last = row
        if window.suppressed == 1:
            task = asyncio.get_running_loop().create_task(self._flush(key, window))
            self._flushes.add(task)
            task.add_done_callback(self._flushes.discard)
        return False

    async def _flush(self, key: str, window: _Window) -> None:
        await asyncio.sleep(max(0.0, window.started + 1.0 - time.monotonic()))
        if self._windows.get(key) is window:
            del self._windows[key]
        row = dict(window.last)
        if key.startswith(_BY_ADDRESS):
            # The refusals it sums up may carry many keys, people and orgs (one address can front
            # many tenants): it names none of them rather than the last one.
            row["credential"] = ""
            source = "address"
        else:
            source = "key"
        row["error"] = f"{row['error']} (and {window.suppressed} more like it from this {source} within one second)"
        await self._write(row)

    async def _write(self, row: dict[str, Any]) -> None:
        """Best effort: nothing ran, and a refusal must not wait on an unreachable policy service."""
        row = dict(row)
        credential, org, toolkit, method = row.pop("credential"), row.pop("org"), row.pop("toolkit"), row.pop("method")
        try:
            await self._policy.record_request(credential, org, toolkit, method, **row)
        except errors.PolicyError as exc:
            log.warning("could not audit a refused request on %s/%s: %s", org, toolkit, exc.message)

    async def close(self) -> None:
        """Lets pending summaries (at most a second away) reach the audit log."""
        if self._flushes:
            await asyncio.wait(list(self._flushes), timeout=2.0)
