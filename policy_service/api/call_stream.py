"""Server side of CallStream: one long-lived stream per front carries its authorize and
complete items (ADR 0029). A stream pays gRPC's per-RPC set-up once instead of per item.

Items are decided as they arrive, concurrently, so their audit rows share the audit log's
group commit; each result is sent once its rows are durable (the item's decision returns
only then), results that finish together in one message. At most `MAX_STREAM_IN_FLIGHT`
items are being decided per stream: past that the stream stops reading, and gRPC's flow
control holds the client back. The service identity is checked at open and for every
message, so a revoked identity is not served another item. Anything wrong with one
message ends this stream only; an item id already in flight fails that item only.

The stream's contract with its client: the `x-monomcp-stream` initial metadata says the
stream was accepted (items written before it may go another way), and a stream that ends
OK has answered every item it decided, so the client may send the unanswered ones again
elsewhere. Shutdown uses that: `OpenStreams.drain()` stops reading and lets the items
being decided finish, so a rolling restart fails no call."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
from google.rpc import code_pb2

from policy_service._generated.monomcp.policy.v1 import policy_pb2
from policy_service.api.errors import abort_for
from policy_service.api.metadata import bearer, service_caller
from policy_service.errors import InvalidArgument
from policy_service.identity.services import Scope, ServiceCaller, ServiceDirectory
from policy_service.status_codes import code_of

log = logging.getLogger(__name__)

# Items being decided at once on one stream (the client keeps fewer in flight).
MAX_STREAM_IN_FLIGHT = 1024
# Items one message may carry.
MAX_MESSAGE_ITEMS = 1024

# Decides one item, writing its answer into the result it is given.
Decide = Callable[[ServiceCaller, int, policy_pb2.CallBatchItem, policy_pb2.CallBatchResult], Awaitable[None]]
_End = object()  # the reader's mark: no more requests
READY = (("x-monomcp-stream", "ready"),)


class OpenStreams:
    """The streams a server has open, so its shutdown can drain them."""

    def __init__(self) -> None:
        self.sessions: set[StreamSession] = set()
        self.draining = False

    def drain(self) -> None:
        self.draining = True
        for session in list(self.sessions):
            session.drain()


def merged(messages: list[policy_pb2.CallBatchResponse]) -> policy_pb2.CallBatchResponse:
    """Answers that finished together, in one message. Each item's answer is built in a message
    of its own, so one that finishes alone (every item at c=1) is sent without a copy."""
    if len(messages) == 1:
        return messages[0]
    out = policy_pb2.CallBatchResponse()
    for message in messages:
        out.results.MergeFrom(message.results)
    return out


def _duplicate(item_id: int) -> policy_pb2.CallBatchResponse:
    error = InvalidArgument(f"item id {item_id} is already in flight on this stream", "DUPLICATE_ITEM_ID")
    result = policy_pb2.CallBatchResult(
        index=item_id, error=policy_pb2.ItemError(code=code_of(error), message=error.message, reason=error.reason)
    )
    return policy_pb2.CallBatchResponse(results=[result])


class StreamSession:
    """One CallStream RPC: a reader task starts each item's decision, the handler's
    generator sends the results as they land."""

    def __init__(
        self, services: ServiceDirectory, decide: Decide, context: grpc.aio.ServicerContext, streams: OpenStreams
    ) -> None:
        self._streams = streams
        self._reader: asyncio.Task[None] | None = None
        self._services = services
        self._decide = decide
        self._context = context
        self._results: asyncio.Queue[object] = asyncio.Queue()
        self._slots = asyncio.Semaphore(MAX_STREAM_IN_FLIGHT)
        self._in_flight: dict[int, asyncio.Task[None]] = {}
        self._token = ""  # the stream's service credential: its metadata is fixed for the RPC

    async def run(
        self, requests: AsyncIterator[policy_pb2.CallBatchRequest]
    ) -> AsyncIterator[policy_pb2.CallBatchResponse]:
        try:
            await service_caller(self._context, self._services, Scope.EXECUTE)
            self._token = bearer(self._context)
        except Exception as exc:
            await abort_for(self._context, exc, "CallStream")
            return
        if self._streams.draining:
            await self._context.abort(grpc.StatusCode.UNAVAILABLE, "the policy service is shutting down")
        await self._context.send_initial_metadata(READY)
        reader = self._reader = asyncio.ensure_future(self._read(requests))
        self._streams.sessions.add(self)
        try:
            ended = False
            while not (ended and not self._in_flight):
                batch = [await self._results.get()]
                while not self._results.empty():
                    batch.append(self._results.get_nowait())
                answers: list[policy_pb2.CallBatchResponse] = []
                for entry in batch:
                    if entry is _End:
                        ended = True
                    elif isinstance(entry, Exception):
                        await abort_for(self._context, entry, "CallStream")
                        return
                    else:
                        assert isinstance(entry, policy_pb2.CallBatchResponse)
                        answers.append(entry)
                if answers:
                    yield merged(answers)
        finally:
            self._streams.sessions.discard(self)
            reader.cancel()
            for task in list(self._in_flight.values()):
                task.cancel()

    def drain(self) -> None:
        """Reads no more items; those being decided are answered, then the stream ends OK."""
        if self._reader is not None and not self._reader.done():
            self._reader.cancel()
            self._results.put_nowait(_End)

    async def _read(self, requests: AsyncIterator[policy_pb2.CallBatchRequest]) -> None:
        try:
            async for request in requests:
                # Per message, from the identity cache: a revocation ends the stream here.
                service = (await self._services.authenticate(self._token)).require(Scope.EXECUTE)
                if len(request.items) > MAX_MESSAGE_ITEMS:
                    raise InvalidArgument(f"a message carries at most {MAX_MESSAGE_ITEMS} items", "BATCH_TOO_LARGE")
                for item in request.items:
                    await self._slots.acquire()
                    if item.id in self._in_flight:
                        self._slots.release()
                        self._results.put_nowait(_duplicate(item.id))
                        continue
                    self._in_flight[item.id] = asyncio.ensure_future(self._one(service, item))
        except Exception as exc:  # the stream's own failure: ends this stream only
            self._results.put_nowait(exc)
            return
        self._results.put_nowait(_End)

    async def _one(self, service: ServiceCaller, item: policy_pb2.CallBatchItem) -> None:
        answer = policy_pb2.CallBatchResponse()
        result = answer.results.add()
        try:
            await self._decide(service, item.id, item, result)
        except Exception:  # a bug outside the item's decision: the item still gets its answer
            log.exception("unhandled error in a CallStream item")
            error = policy_pb2.ItemError(code=code_pb2.INTERNAL, message="internal error", reason="INTERNAL")
            result.index = item.id
            result.error.CopyFrom(error)
        finally:
            self._in_flight.pop(item.id, None)
            self._slots.release()
        self._results.put_nowait(answer)
