"""Client side of CallStream (ADR 0029): one long-lived stream per policy address carries
this process's authorize and complete items, so a call pays no per-RPC set-up.

- One stream per resolved address (its own channel), items spread over them per kind, so
  round robin across policy replicas still holds; opened on first use.
- Items queued in one loop turn leave in one message; results come back by item id.
- An item counts as sent once it is written after the server accepted the stream (its
  `x-monomcp-stream` initial metadata). When a stream fails, every item sent on it and not
  answered fails closed with PolicyUnavailable (or the stream's auth error): it is never sent
  again, since an authorize whose answer was lost may have been decided. Items not sent yet,
  and every unanswered item of a stream the server ended OK (a draining server answers all
  it decided, then ends OK), were never decided: they go the unary/CallBatch way. A failed
  stream reopens on a later item after a backoff (0.1 s doubling to 5 s).
- `submit` returns NOT_SENT when no stream took the item, or took it without deciding it
  (all in backoff, too many in flight, the server draining, or an older policy service
  without CallStream during a rolling upgrade). The caller sends it the unary/CallBatch way."""

from __future__ import annotations

import asyncio
import itertools
import socket
import time
from collections.abc import Callable
from typing import Any, Final

import grpc

from policy_service import errors
from policy_service._generated.monomcp.policy.v1 import policy_pb2, policy_pb2_grpc
from policy_service.batching import fitting
from policy_service.rpc_channel import raised

NOT_SENT: Final = None
READY_KEY = "x-monomcp-stream"  # the server's initial metadata: the stream was accepted
MAX_IN_FLIGHT = 512  # per stream; the server decides up to 1024 at once
_BACKOFF_FIRST, _BACKOFF_MAX = 0.1, 5.0
_UNIMPLEMENTED_RETRY = 30.0  # an older server: ask again after this long
_AUTH_CODES = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)

Opener = Callable[[str], grpc.aio.Channel]


async def resolve(address: str) -> list[str]:
    """The targets of `address`, one per address it stands for: an `ipv4:`/`ipv6:` list is
    split, a `host:port` (or `dns:`) name is resolved; anything else is kept whole."""
    for scheme in ("ipv4:", "ipv6:"):
        if address.startswith(scheme):
            return [scheme + part for part in address[len(scheme) :].split(",") if part]
    name = address.removeprefix("dns:").removeprefix("///")
    host, sep, port = name.rpartition(":")
    if not sep or not port.isdigit() or "/" in name or address.startswith(("unix:", "unix-abstract:")):
        return [address]
    host = host.strip("[]")
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, int(port), type=socket.SOCK_STREAM)
    except OSError:
        return [address]
    targets: list[str] = []
    for family, *_, sockaddr in infos:
        ip = str(sockaddr[0])
        target = f"ipv6:[{ip}]:{port}" if family == socket.AF_INET6 else f"ipv4:{ip}:{port}"
        if target not in targets:
            targets.append(target)
    return targets or [address]


class ItemStream:
    """One CallStream RPC on its own channel, reopened after a failure (with backoff)."""

    def __init__(self, target: str, opener: Opener, metadata: tuple[tuple[str, str], ...]) -> None:
        self.target = target
        self._opener = opener
        self._metadata = metadata
        self._channel: grpc.aio.Channel | None = None
        self._call: Any = None
        self._waiting: dict[int, asyncio.Future[policy_pb2.CallBatchResult]] = {}
        self._outbox: list[policy_pb2.CallBatchItem] = []
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._ids = itertools.count()
        self._down_until = 0.0
        self._backoff = _BACKOFF_FIRST

    def is_open(self) -> bool:
        return self._call is not None

    def usable(self) -> bool:
        return time.monotonic() >= self._down_until and len(self._waiting) < MAX_IN_FLIGHT

    def send(self, item: policy_pb2.CallBatchItem) -> asyncio.Future[policy_pb2.CallBatchResult]:
        if self._call is None:
            self._open()
        item_id = next(self._ids) & 0x7FFFFFFF
        while item_id in self._waiting:  # wrapped onto an id still in flight
            item_id = next(self._ids) & 0x7FFFFFFF
        item.id = item_id
        future: asyncio.Future[policy_pb2.CallBatchResult] = asyncio.get_running_loop().create_future()
        self._waiting[item_id] = future
        self._outbox.append(item)
        self._wake.set()
        return future

    def _open(self) -> None:
        if self._channel is None:
            self._channel = self._opener(self.target)
        stub = policy_pb2_grpc.PolicyServiceStub(self._channel)
        call = self._call = stub.CallStream(metadata=self._metadata or None)
        self._tasks = [asyncio.ensure_future(self._write(call)), asyncio.ensure_future(self._read(call))]

    async def _write(self, call: Any) -> None:
        try:
            accepted = await call.initial_metadata()
            if not any(key == READY_KEY for key, _ in accepted or ()):
                return  # refused or no such RPC: the reader sees its status, nothing was sent
            while True:
                await self._wake.wait()
                self._wake.clear()
                items, self._outbox = self._outbox, []
                while items:  # in messages the server accepts (batching.MAX_MESSAGE_BYTES)
                    count = fitting(items)
                    await call.write(policy_pb2.CallBatchRequest(items=items[:count]))
                    items = items[count:]
        except asyncio.CancelledError:
            raise
        except Exception:  # the reader sees the call's status and fails the items
            call.cancel()

    async def _read(self, call: Any) -> None:
        failure: Exception
        try:
            async for response in call:
                for result in response.results:
                    future = self._waiting.pop(result.index, None)
                    if future is not None and not future.done():
                        future.set_result(result)
                self._backoff = _BACKOFF_FIRST
            # Ended OK: the server answered every item it decided (it drained), so the rest
            # was never decided.
            self._down_until = time.monotonic() + self._backoff
            failure = _NotSent("the policy stream ended")
            self._broken(call, failure, failure)
            return
        except grpc.aio.AioRpcError as exc:
            failure = self._failure(exc)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # any breakage fails the items closed
            failure = errors.PolicyUnavailable(f"the policy stream broke: {type(exc).__name__}")
        self._broken(call, failure, _NotSent("the policy stream failed before this item was sent"))

    def _failure(self, exc: grpc.aio.AioRpcError) -> Exception:
        if exc.code() == grpc.StatusCode.UNIMPLEMENTED:
            self._down_until = time.monotonic() + _UNIMPLEMENTED_RETRY
        else:
            self._down_until = time.monotonic() + self._backoff
            self._backoff = min(self._backoff * 2, _BACKOFF_MAX)
        if exc.code() in _AUTH_CODES:
            return raised(exc)
        return errors.PolicyUnavailable("the policy stream broke before this item was answered")

    def _broken(self, call: Any, failure: Exception, unsent: Exception) -> list[asyncio.Task[None]]:
        """Detaches `call` (cancels it and its other task) if it is still the current one, and
        fails every item sent and not answered with `failure` (never resent: it may have been
        decided), those never sent with `unsent`. Returns the tasks it cancelled."""
        cancelled: list[asyncio.Task[None]] = []
        if self._call is call:
            self._call = None
            if call is not None:
                call.cancel()  # a no-op once the call has ended
            cancelled = [task for task in self._tasks if task is not asyncio.current_task()]
            for task in cancelled:
                task.cancel()
            self._tasks = []
        never = {item.id for item in self._outbox}
        waiting, self._waiting, self._outbox = self._waiting, {}, []
        for item_id, future in waiting.items():
            if not future.done():
                future.set_exception(unsent if item_id in never else failure)
        return cancelled

    async def close(self) -> None:
        closed = errors.PolicyUnavailable("the policy client was closed before this item was answered")
        await asyncio.gather(*self._broken(self._call, closed, closed), return_exceptions=True)
        if self._channel is not None:
            await self._channel.close()
            self._channel = None


def _expire(future: asyncio.Future[policy_pb2.CallBatchResult]) -> None:
    if not future.done():  # its answer, if it ever comes, is dropped
        future.set_exception(errors.PolicyUnavailable("the policy service did not answer in time"))


class _NotSent(errors.PolicyUnavailable):
    """The item was never decided on its stream, so it may go another way."""


class StreamPool:
    """The streams of one policy address (one per resolved address)."""

    def __init__(self, address: str, opener: Opener, metadata: tuple[tuple[str, str], ...], timeout: float) -> None:
        self._address = address
        self._opener = opener
        self._metadata = metadata
        self._timeout = timeout
        self._streams: list[ItemStream] | None = None
        self._closed = False
        self._resolving: asyncio.Future[list[str]] | None = None
        self._turn = {"authorize": itertools.count(), "complete": itertools.count()}

    async def submit(self, item: policy_pb2.CallBatchItem) -> policy_pb2.CallBatchResult | None:
        """The item's result, or NOT_SENT when no stream took it (send it another way)."""
        if self._closed:
            return NOT_SENT  # the CallBatcher refuses it the same way (BatcherClosed)
        streams = self._streams if self._streams is not None else await self._open()
        start = next(self._turn[item.WhichOneof("item") or "authorize"])
        for offset in range(len(streams)):
            stream = streams[(start + offset) % len(streams)]
            if stream.usable():
                future = stream.send(item)
                expiry = asyncio.get_running_loop().call_later(self._timeout, _expire, future)
                try:
                    return await future
                except _NotSent:
                    return NOT_SENT
                finally:
                    expiry.cancel()
        return NOT_SENT

    async def _open(self) -> list[ItemStream]:
        if self._resolving is None:
            self._resolving = asyncio.ensure_future(resolve(self._address))
        targets = await self._resolving
        if self._streams is None:
            self._streams = [ItemStream(target, self._opener, self._metadata) for target in targets]
        return self._streams

    def opened(self) -> int:
        """How many of the streams are open now."""
        return sum(1 for stream in self._streams or () if stream.is_open())

    async def close(self) -> None:
        self._closed = True
        streams, self._streams, self._resolving = self._streams or [], None, None
        await asyncio.gather(*(stream.close() for stream in streams))
