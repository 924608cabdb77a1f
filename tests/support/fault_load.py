"""Concurrent MCP clients for fault tests. Every call carries a unique `id` argument and
its outcome is written to a ledger, so what each client saw can be reconciled with what
the upstream executed and what the audit log holds.

Raw clients POST JSON-RPC `tools/call` over httpx (each request stands alone, as a
stateless client or a load balancer retrying on another replica would send it); SDK
clients use the official `mcp` client and reconnect after any failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.support.counting_upstream import RECORD, TRANSFER, record_answer, transfer_answer

ACCEPT = "application/json, text/event-stream"
CALL_TIMEOUT = 20.0
SDK_CALL_TIMEOUT = 10.0
# How long after the run's end a client may still be finishing its last step (two racing
# raw copies and a retry, or an SDK session's open, call and close); past it, it hangs.
CLIENT_GRACE = 3 * CALL_TIMEOUT + 3 * SDK_CALL_TIMEOUT
TRANSFER_AMOUNT = 7

OK = "ok"  # the upstream's own answer reached the client
PENDING = "pending"  # the gateway answered "needs approval" (nothing ran)
TOOL_ERROR = "tool_error"  # any other error result
RPC_ERROR = "rpc_error"  # a JSON-RPC error (e.g. policy unavailable: fail closed)
TRANSPORT = "transport"  # no answer: connection refused or dropped (front killed)


@dataclass(frozen=True, slots=True)
class Outcome:
    tool: str
    id: str
    kind: str
    detail: str = ""
    via: str = "raw"  # "raw" JSON-RPC over httpx, or "sdk" (the official mcp client)


@dataclass
class Ledger:
    """What the clients sent and saw; `approved` holds ids an admin approved up front."""

    approved: deque[str] = field(default_factory=deque)
    outcomes: list[Outcome] = field(default_factory=list)
    unapproved: set[str] = field(default_factory=set)
    busy: dict[str, str] = field(default_factory=dict)  # client -> the step it awaits now
    stalled: list[str] = field(default_factory=list)  # SDK sessions that neither opened nor failed in time
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    def new_id(self, prefix: str) -> str:
        return f"{prefix}-{next(self._ids):06d}"

    def add(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)


def expected_answer(tool: str, call_id: str) -> str:
    return record_answer(call_id) if tool == RECORD else transfer_answer(call_id, TRANSFER_AMOUNT)


def arguments_for(tool: str, call_id: str) -> dict[str, Any]:
    return {"id": call_id} if tool == RECORD else {"id": call_id, "amount": TRANSFER_AMOUNT}


def classify_result(tool: str, call_id: str, result: dict[str, Any]) -> Outcome:
    content = result.get("content") or [{}]
    text = str(content[0].get("text", ""))
    if not result.get("isError"):
        kind = OK if text == expected_answer(tool, call_id) else TOOL_ERROR
        return Outcome(tool, call_id, kind, "" if kind == OK else text[:200])
    structured = result.get("structuredContent") or {}
    if isinstance(structured, dict) and structured.get("approval", {}).get("status") == "pending":
        return Outcome(tool, call_id, PENDING)
    return Outcome(tool, call_id, TOOL_ERROR, text[:200])


@dataclass(frozen=True)
class Target:
    url: str  # the toolkit's MCP endpoint on the front
    key: str  # the member's API key


async def raw_call(http: httpx.AsyncClient, target: Target, tool: str, call_id: str) -> Outcome:
    body = {
        "jsonrpc": "2.0",
        "id": call_id,
        "method": "tools/call",
        "params": {"name": tool, "arguments": arguments_for(tool, call_id)},
    }
    headers = {"Authorization": f"Bearer {target.key}", "Accept": ACCEPT}
    try:
        response = await http.post(target.url, json=body, headers=headers)
    except httpx.HTTPError as exc:
        return Outcome(tool, call_id, TRANSPORT, type(exc).__name__)
    try:
        message = response.json()
    except ValueError:
        return Outcome(tool, call_id, TRANSPORT, f"HTTP {response.status_code} without JSON")
    if "error" in message:
        return Outcome(tool, call_id, RPC_ERROR, str(message["error"].get("message", ""))[:200])
    return classify_result(tool, call_id, message.get("result") or {})


def next_call(ledger: Ledger, rng: random.Random, unapproved_share: float) -> tuple[str, str, int]:
    """(tool, id, copies): mostly fresh `record` ids; approved `transfer` ids are sent as two
    racing copies (one approval, so at most one may run); a few unapproved transfers."""
    roll = rng.random()
    if roll < 0.25 and ledger.approved:
        return TRANSFER, ledger.approved.popleft(), 2
    if roll > 1 - unapproved_share:
        call_id = ledger.new_id("u")
        ledger.unapproved.add(call_id)
        return TRANSFER, call_id, 1
    return RECORD, ledger.new_id("r"), 1


async def raw_client(target: Target, ledger: Ledger, deadline: float, seed: int) -> None:
    rng = random.Random(seed)
    loop = asyncio.get_running_loop()
    name = f"raw client {seed}"
    async with httpx.AsyncClient(timeout=CALL_TIMEOUT) as http:
        while loop.time() < deadline:
            tool, call_id, copies = next_call(ledger, rng, unapproved_share=0.05)
            ledger.busy[name] = f"tools/call {tool} {call_id} x{copies}"
            outcomes = await asyncio.gather(*(raw_call(http, target, tool, call_id) for _ in range(copies)))
            if tool == TRANSFER and copies == 2 and not any(o.kind == OK for o in outcomes):
                # A client retries a failed approved call: the approval must still run it at most once.
                ledger.busy[name] = f"retry of tools/call {tool} {call_id}"
                outcomes.append(await raw_call(http, target, tool, call_id))
            for outcome in outcomes:
                ledger.add(outcome)
            if any(o.kind == TRANSPORT for o in outcomes):
                await asyncio.sleep(0.05)  # front restarting: don't spin on connection refused
    ledger.busy.pop(name, None)


async def warm_up(target: Target, ledger: Ledger, patience: float = 60.0) -> None:
    """One successful call before the clock starts: the first request through a fresh
    front pays for imports and connections."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience
    async with httpx.AsyncClient(timeout=CALL_TIMEOUT) as http:
        while True:
            outcome = await raw_call(http, target, RECORD, ledger.new_id("w"))
            ledger.add(outcome)
            if outcome.kind == OK:
                return
            if loop.time() > deadline:
                raise RuntimeError(f"no call succeeded through the front in {patience:g} s: {outcome}")
            await asyncio.sleep(0.2)


def _sdk_client(target: Target, mode: str) -> Client:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {target.key}"}, timeout=CALL_TIMEOUT)
    return Client(streamable_http_client(target.url, http_client=http), mode=mode)


async def _sdk_call(client: Client, tool: str, call_id: str) -> Outcome:
    from mcp.shared.exceptions import MCPError

    try:
        async with asyncio.timeout(SDK_CALL_TIMEOUT):  # a dropped connection may leave the SDK waiting
            result = await client.call_tool(tool, arguments_for(tool, call_id))
    except MCPError as exc:
        return Outcome(tool, call_id, RPC_ERROR, str(exc)[:200], via="sdk")
    except Exception as exc:
        return Outcome(tool, call_id, TRANSPORT, type(exc).__name__, via="sdk")
    outcome = classify_result(tool, call_id, result.model_dump(by_alias=True, exclude_none=True))
    return Outcome(outcome.tool, outcome.id, outcome.kind, outcome.detail, via="sdk")


@contextlib.asynccontextmanager
async def _sdk_session(target: Target, mode: str, ledger: Ledger, name: str) -> AsyncIterator[Client]:
    """An SDK session whose opening and closing are bounded like its calls. The SDK fails
    them when the front drops the connection; one still waiting after SDK_CALL_TIMEOUT is a
    hang, recorded in `ledger.stalled` (the test fails on it) and given up on, so the run
    ends on time instead of waiting for the suite's timeout."""
    client = _sdk_client(target, mode)
    step = "opening a session (initialize)" if mode == "legacy" else "opening a session"
    ledger.busy[name] = step
    try:
        async with asyncio.timeout(SDK_CALL_TIMEOUT):
            await client.__aenter__()
    except TimeoutError:
        ledger.stalled.append(f"{name}: {step}")
        raise
    failure: BaseException | None = None
    try:
        yield client
    except BaseException as exc:
        failure = exc
        raise
    finally:
        ledger.busy[name] = "closing its session"
        try:
            async with asyncio.timeout(SDK_CALL_TIMEOUT):
                await client.__aexit__(type(failure) if failure else None, failure, None)
        except TimeoutError:
            ledger.stalled.append(f"{name}: closing its session")


async def sdk_client(target: Target, ledger: Ledger, deadline: float, seed: int, mode: str) -> None:
    """One official MCP client; after any failure it reconnects (a fresh session)."""
    rng = random.Random(seed)
    loop = asyncio.get_running_loop()
    name = f"sdk client {seed} ({mode})"
    while loop.time() < deadline:
        try:
            async with _sdk_session(target, mode, ledger, name) as client:
                while loop.time() < deadline:
                    tool, call_id, _ = next_call(ledger, rng, unapproved_share=0.0)
                    ledger.busy[name] = f"tools/call {tool} {call_id}"
                    outcome = await _sdk_call(client, tool, call_id)
                    ledger.add(outcome)
                    if outcome.kind in (TRANSPORT, RPC_ERROR):
                        break
        except Exception:  # connect failed (front down) or the session broke while closing
            await asyncio.sleep(0.1)
    ledger.busy.pop(name, None)


async def run_clients(target: Target, ledger: Ledger, seconds: float, clients: int, sdk_share: float = 0.2) -> None:
    """`clients` concurrent clients for `seconds`; about `sdk_share` of them use the mcp SDK.
    Raises TimeoutError naming what each client still awaits if they have not all finished
    CLIENT_GRACE s after `seconds` (every step a client takes is bounded, so that is a hang)."""
    deadline = asyncio.get_running_loop().time() + seconds
    sdk = max(1, round(clients * sdk_share))
    tasks = [sdk_client(target, ledger, deadline, seed, "legacy" if seed % 2 else "2026-07-28") for seed in range(sdk)]
    tasks += [raw_client(target, ledger, deadline, seed) for seed in range(sdk, clients)]
    try:
        # As before: a CancelledError out of a client ends the run quietly.
        with contextlib.suppress(asyncio.CancelledError):
            async with asyncio.timeout_at(deadline + CLIENT_GRACE):
                await asyncio.gather(*tasks)
    except TimeoutError:
        waiting = "; ".join(f"{name}: {step}" for name, step in sorted(ledger.busy.items()))
        raise TimeoutError(f"clients still busy {CLIENT_GRACE:g} s after the run ended: {waiting}") from None
