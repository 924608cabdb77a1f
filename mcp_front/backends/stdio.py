"""Toolkit backends that are local commands speaking MCP over stdin/stdout (JSON lines).

`UpstreamPool` hands every `stdio:` target here (docs/adr/0017-stdio-backends.md). Each
(tenant scope, spec) gets its own small pool of processes, so one org's requests never run
in a process another org's calls started. A process serves one request at a time: stdio
has no per-request stream, so whatever the process sends while it works (progress, log
messages, sampling or elicitation requests) belongs to that request and goes to its relay.
What it sends while idle, and resource updates and list changes at any time, belong to no
request: they go to the pool's `outside` sink, the standalone streams of the tenant's
clients (docs/adr/0025-standalone-streams-and-subscriptions.md).

Processes start on first use with the spec's environment only (never the gateway's own,
which holds its secrets), in their own process group, under RLIMIT_AS/RLIMIT_CPU when set
(applied by a small Python trampoline that then execs the command).
One that dies fails its request and is replaced on the next one, after a backoff that
doubles with each consecutive failure. `close()` ends them all: stdin closed, then SIGTERM,
then SIGKILL to the group.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import signal
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

from mcp_front.backends import negotiation
from mcp_front.backends.negotiation import Negotiated, NegotiationFailed
from mcp_front.backends.stdio_launch import child_environment, launch_argv
from policy_service.toolkits.stdio_backend import StdioSpec, from_address

if TYPE_CHECKING:
    from mcp_front.backends.streaming import CallRelay
    from mcp_front.backends.upstream import Target

log = logging.getLogger("monomcp.front.stdio")

MAX_LINE_BYTES = 16 * 1024 * 1024
MAX_POOLS = 64
STOP_GRACE_SECONDS = 2.0
CANCEL_NOTICE_SECONDS = 2.0
BACKOFF_FIRST_SECONDS = 0.25
BACKOFF_MAX_SECONDS = 30.0
PUBLIC_FAILURE = "the toolkit's backend process failed"


def _error(detail: str, public: str = PUBLIC_FAILURE) -> Exception:
    from mcp_front.backends.upstream import UpstreamError

    return UpstreamError(detail, public)


# Notifications about the backend session rather than the request being served.
_SESSION_NOTIFICATIONS = frozenset(
    {
        "notifications/resources/updated",
        "notifications/resources/list_changed",
        "notifications/tools/list_changed",
        "notifications/prompts/list_changed",
    }
)


class _Process:
    """One running backend: JSON lines in and out, answers matched to requests by id."""

    def __init__(self, process: asyncio.subprocess.Process, label: str) -> None:
        self._process = process
        self._label = label
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._write_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._delivered: asyncio.Task[None] | None = None  # the last relayed message, in order
        self.relay: CallRelay | None = None  # the request it is serving, if relayed
        self.outside: Callable[[dict[str, Any]], Awaitable[None]] | None = None  # what belongs to no request
        self.session = Negotiated(None, negotiation.OFFERED_VERSION)
        self.log_level: str | None = None
        self.initialized = False
        self.exit_detail = ""
        self._reader = asyncio.ensure_future(self._read())
        self._stderr = asyncio.ensure_future(self._drain_stderr())

    @classmethod
    async def start(cls, spec: StdioSpec, label: str) -> _Process:
        try:
            process = await asyncio.create_subprocess_exec(
                *launch_argv(spec),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=spec.cwd or None,
                env=child_environment(spec),
                start_new_session=True,
                limit=MAX_LINE_BYTES,
            )
        except OSError as exc:
            raise _error(f"backend command could not start: {exc.strerror or exc}") from None
        return cls(process, label)

    @property
    def alive(self) -> bool:
        return self._process.returncode is None and not self._reader.done()

    async def initialize(self) -> None:
        answer = await self.request("initialize", negotiation.initialize_request(0)["params"])
        try:
            self.session = Negotiated(None, negotiation.negotiated_version(answer))
        except NegotiationFailed as exc:
            raise _error(str(exc), "the toolkit's backend refused the MCP handshake") from None
        await self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        self.initialized = True

    async def send(self, message: dict[str, Any]) -> None:
        stdin = self._process.stdin
        if stdin is None or not self.alive:
            # The reader names why (exit code, an oversized line) once it has seen the end.
            await asyncio.wait({self._reader}, timeout=STOP_GRACE_SECONDS)
            raise _error(f"backend process exited{self.exit_detail}")
        line = json.dumps(message, separators=(",", ":")).encode() + b"\n"
        async with self._write_lock:
            try:
                stdin.write(line)
                await stdin.drain()
            except (ConnectionError, OSError) as exc:
                raise _error(f"backend process stdin closed: {exc}") from None

    async def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """The backend's JSON-RPC answer (result or error) to one request."""
        request_id = next(self._ids)
        answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = answer
        body = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
        try:
            await self.send(body)
            message = await answer
            if self._delivered is not None:  # what the backend sent before its answer goes first
                with contextlib.suppress(Exception):
                    await self._delivered
            return message
        except asyncio.CancelledError:
            await self._tell_cancelled(request_id)
            raise
        finally:
            self._pending.pop(request_id, None)

    async def _tell_cancelled(self, request_id: int) -> None:
        """The client left or the call timed out: the backend stops too (best effort, bounded)."""
        note = {
            "jsonrpc": "2.0",
            "method": "notifications/cancelled",
            "params": {"requestId": request_id, "reason": "The client cancelled the call."},
        }

        async def send() -> None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(CANCEL_NOTICE_SECONDS):
                    await self.send(note)

        await asyncio.shield(asyncio.ensure_future(send()))

    async def _read(self) -> None:
        stdout = self._process.stdout
        assert stdout is not None  # created with PIPE
        try:
            while True:
                try:
                    line = await stdout.readline()
                except ValueError:  # a line over the limit: the stream cannot be trusted anymore
                    self.exit_detail = " (it wrote a line over the size limit)"
                    break
                if not line:
                    break
                try:
                    message = json.loads(line)
                except ValueError:
                    continue  # servers may print banners; only JSON lines are messages
                if isinstance(message, dict):
                    self._dispatch(message)
        finally:
            code = await self._exit_code()
            self.exit_detail = self.exit_detail or f" (exit code {code})"
            for waiting in self._pending.values():
                if not waiting.done():
                    waiting.set_exception(_error(f"backend process exited{self.exit_detail}"))

    async def _exit_code(self) -> int | None:
        try:
            async with asyncio.timeout(STOP_GRACE_SECONDS):
                return await self._process.wait()
        except TimeoutError:
            return None

    def _dispatch(self, message: dict[str, Any]) -> None:
        if "method" not in message:
            answer = self._pending.get(message.get("id"))  # type: ignore[arg-type]
            if answer is not None and not answer.done():
                answer.set_result(message)
            return  # a late answer to a cancelled request
        relay = self.relay
        if "id" in message:
            self._deliver(self._answer(message, relay))
        elif relay is not None and message.get("method") not in _SESSION_NOTIFICATIONS:
            self._deliver(relay.notify(message))
        elif self.outside is not None:
            self._deliver(self._outside(self.outside, message))

    @staticmethod
    async def _outside(sink: Callable[[dict[str, Any]], Awaitable[None]], message: dict[str, Any]) -> None:
        try:
            await sink(message)
        except Exception:  # one client's failure never stops the backend's output
            log.exception("relaying a stdio backend's notification failed")

    def _deliver(self, step: Coroutine[Any, Any, None]) -> None:
        """Runs `step` after every earlier one: the client gets the backend's messages in order,
        and `request` waits for them before it returns the answer that followed them."""
        previous = self._delivered

        async def in_order() -> None:
            try:
                if previous is not None:
                    with contextlib.suppress(Exception):
                        await previous
            except BaseException:  # stopped before its turn: the step never runs
                step.close()
                raise
            await step

        task = self._delivered = asyncio.ensure_future(in_order())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, message: dict[str, Any], relay: CallRelay | None) -> None:
        """A backend request (sampling, elicitation, ping, ...) answered by the call's client."""
        if message.get("method") == "ping":
            reply: dict[str, Any] = {"result": {}}
        elif relay is None:
            reply = {"error": {"code": -32601, "message": f"{message.get('method')} is not available here"}}
        else:
            try:
                reply = await relay.ask(message)
            except Exception as exc:
                reply = {"error": {"code": -32603, "message": f"the client could not answer: {exc}"}}
        with contextlib.suppress(Exception):
            await self.send({"jsonrpc": "2.0", "id": message["id"], **reply})

    async def _drain_stderr(self) -> None:
        stderr = self._process.stderr
        if stderr is None:
            return
        with contextlib.suppress(ValueError, ConnectionError):
            async for line in stderr:
                log.debug("%s stderr: %s", self._label, line[:500].decode("utf-8", "replace").rstrip())

    async def stop(self) -> None:
        """stdin closed, then SIGTERM, then SIGKILL, each given a short grace (the whole group)."""
        if self._process.returncode is None:
            with contextlib.suppress(Exception):
                if self._process.stdin is not None:
                    self._process.stdin.close()
            for sig in (None, signal.SIGTERM, signal.SIGKILL):
                if sig is not None:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(self._process.pid, sig)
                try:
                    async with asyncio.timeout(STOP_GRACE_SECONDS):
                        await self._process.wait()
                    break
                except TimeoutError:
                    continue
        # The group may outlive its leader (npx starts node): end what is left.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._process.pid, signal.SIGKILL)
        for task in (self._reader, self._stderr, *self._tasks):
            task.cancel()
        await asyncio.gather(self._reader, self._stderr, *self._tasks, return_exceptions=True)


class _Pool:
    """Up to `pool_size` processes for one tenant and spec, started lazily, restarted with backoff."""

    def __init__(
        self, spec: StdioSpec, label: str, outside: Callable[[dict[str, Any]], Awaitable[None]] | None = None
    ) -> None:
        self.spec = spec
        self._label = label
        self._outside = outside
        self._slots = asyncio.Semaphore(spec.pool_size)
        self._idle: list[_Process] = []
        self._all: set[_Process] = set()
        self._failures = 0
        self._next_start = 0.0
        self.log_level: str | None = None

    @contextlib.asynccontextmanager
    async def lease(self) -> AsyncIterator[_Process]:
        async with self._slots:
            process = None
            while self._idle and process is None:
                candidate = self._idle.pop()
                if candidate.alive:
                    process = candidate
                else:
                    self._forget(candidate)
            if process is None:
                process = await self._start()
            try:
                if self.log_level is not None and process.log_level != self.log_level:
                    await process.request("logging/setLevel", {"level": self.log_level})
                    process.log_level = self.log_level
                yield process
            finally:
                process.relay = None
                if process.alive:
                    self._idle.append(process)
                else:
                    self._failed(process)

    async def _start(self) -> _Process:
        delay = self._next_start - asyncio.get_running_loop().time()
        if delay > 0:
            await asyncio.sleep(delay)  # bounded by the caller's timeout
        process = await _Process.start(self.spec, self._label)
        process.outside = self._outside
        self._all.add(process)
        try:
            await process.initialize()
        except BaseException:
            self._failed(process)
            await process.stop()
            raise
        return process

    def negotiated(self) -> Negotiated | None:
        """Any live process's session, without waiting for a free one."""
        return next((p.session for p in self._all if p.alive and p.initialized), None)

    def succeeded(self) -> None:
        self._failures = 0

    def _failed(self, process: _Process) -> None:
        self._forget(process)
        self._failures += 1
        backoff = min(BACKOFF_FIRST_SECONDS * 2 ** (self._failures - 1), BACKOFF_MAX_SECONDS)
        self._next_start = asyncio.get_running_loop().time() + backoff
        log.warning("%s: backend process ended%s; next start in %.2f s", self._label, process.exit_detail, backoff)

    def _forget(self, process: _Process) -> None:
        self._all.discard(process)
        if process in self._idle:
            self._idle.remove(process)

    async def close(self) -> None:
        processes, self._all, self._idle = list(self._all), set(), []
        await asyncio.gather(*(p.stop() for p in processes), return_exceptions=True)


class StdioBackends:
    """Every stdio backend pool of one front process, keyed like HTTP upstream sessions."""

    def __init__(self, max_pools: int = MAX_POOLS) -> None:
        self._pools: OrderedDict[tuple[Any, ...], _Pool] = OrderedDict()
        self._max_pools = max_pools
        self._closing: set[asyncio.Task[None]] = set()
        # (tenant scope, message) for what a process sends outside any request; set by the stream hub.
        self.on_notification: Callable[[str, dict[str, Any]], Awaitable[None]] | None = None

    def _pool(self, target: Target) -> _Pool:
        pool = self._pools.get(target.key)
        if pool is not None:
            self._pools.move_to_end(target.key)
            return pool
        try:
            spec = from_address(target.url)
        except (ValueError, KeyError, TypeError):
            raise _error("malformed stdio backend address", "the toolkit's backend is misconfigured") from None
        pool = self._pools[target.key] = _Pool(
            spec, f"stdio backend {spec.command} [{target.scope}]", self._outside_of(target.scope)
        )
        while len(self._pools) > self._max_pools:  # the least recently used tenant's processes end
            _, evicted = self._pools.popitem(last=False)
            task = asyncio.ensure_future(evicted.close())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        return pool

    def _outside_of(self, scope: str) -> Callable[[dict[str, Any]], Awaitable[None]]:
        async def outside(message: dict[str, Any]) -> None:
            if self.on_notification is not None:
                await self.on_notification(scope, message)

        return outside

    async def session(self, target: Target) -> Negotiated:
        """The version the backend negotiated: a running process's, or a new one's."""
        pool = self._pool(target)
        known = pool.negotiated()
        if known is not None:
            return known
        async with pool.lease() as process:
            return process.session

    async def request(
        self, target: Target, method: str, params: dict[str, Any], relay: CallRelay | None = None
    ) -> dict[str, Any]:
        """One request on a leased process; its in-flight messages go to `relay` (if any)."""
        pool = self._pool(target)
        if method == "logging/setLevel" and isinstance(params.get("level"), str):
            pool.log_level = params["level"]  # every process of the pool gets it before its next request
        async with pool.lease() as process:
            process.relay = relay
            if method == "logging/setLevel":
                process.log_level = pool.log_level
            message = await process.request(method, negotiation.envelope(process.session, params))
        pool.succeeded()
        return message

    async def notify(self, target: Target, message: dict[str, Any]) -> None:
        async with self._pool(target).lease() as process:
            await process.send(message)

    async def close(self) -> None:
        pools, self._pools = list(self._pools.values()), OrderedDict()
        await asyncio.gather(*(p.close() for p in pools), *self._closing, return_exceptions=True)
