"""Client side of CallBatch: the authorize and complete items of concurrent callers share
one RPC, so a busy front pays one gRPC round trip per batch instead of per call.

Items queued in the same event-loop turn leave together; while `max_in_flight` batches are
out, new items wait and leave with the next one. Results stream back as items finish, so a
slow item delays only its own caller. A failed RPC fails every item it had not answered yet
with that RPC's error.

A batch of one item goes as that item's unary RPC when the client gives `single`: a
unary-stream RPC costs grpc.aio about twice a unary one (an extra task, a stream read and
more poller-thread wake-ups), measured 0.68 vs 0.36 ms of client CPU per authorize+complete
pair at c=1 (docs/adr/0023-front-cpu-per-call.md). Both reach the same server handlers.

`close()` fails every item not yet answered with `BatcherClosed`, so no caller waits forever.

Each item carries its caller's trace context (`trace_context`), so the trace of every call
runs through the batch as if the item had been its own unary RPC."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

from policy_service import errors
from policy_service._generated.monomcp.policy.v1 import policy_pb2

Send = Callable[[policy_pb2.CallBatchRequest], AsyncIterator[policy_pb2.CallBatchResponse]]
Single = Callable[[policy_pb2.CallBatchItem], Awaitable[policy_pb2.CallBatchResult]]
_Pending = tuple[policy_pb2.CallBatchItem, "asyncio.Future[policy_pb2.CallBatchResult]"]

_SERVICE = policy_pb2.DESCRIPTOR.services_by_name["PolicyService"].full_name
# The unary RPC each kind of item stands for (its spans are named after it).
ITEM_RPCS = {
    "authorize": f"/{_SERVICE}/AuthorizeToolCall",
    "complete": f"/{_SERVICE}/CompleteToolCall",
}


# What one CallBatch or CallStream message may carry: half the policy service's 16 MiB receive
# limit. A message over that limit fails the RPC, and with it every item it carries (or, on
# a stream, every item in flight): other tenants' calls must not share the fate of two large
# completions that happened to leave together. One item is always sent (each fits alone).
MAX_MESSAGE_BYTES = 8 * 1024 * 1024


def fitting(items: list[policy_pb2.CallBatchItem], limit: int = MAX_MESSAGE_BYTES) -> int:
    """How many of `items`, from the first, go in one message (at least one)."""
    if len(items) < 2:
        return len(items)
    size = 0
    for count, item in enumerate(items):
        size += item.ByteSize()
        if size > limit:
            return max(count, 1)
    return len(items)


class BatcherClosed(errors.PolicyError):
    """The client was closed while this item waited for its answer (it may or may not have
    been decided): the caller fails closed instead of waiting forever."""

    reason = "POLICY_CLIENT_CLOSED"


class CallBatcher:
    def __init__(self, send: Send, max_items: int = 256, max_in_flight: int = 2, single: Single | None = None) -> None:
        self._send = send
        self._single = single
        self._closed = False
        self._max_items = max_items
        self._max_in_flight = max_in_flight
        self._pending: list[_Pending] = []
        self._in_flight = 0
        self._flush_scheduled = False
        self._out: dict[asyncio.Task[None], list[_Pending]] = {}  # the batches in flight

    async def submit(self, item: policy_pb2.CallBatchItem) -> policy_pb2.CallBatchResult:
        if self._closed:
            raise BatcherClosed("the policy client is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[policy_pb2.CallBatchResult] = loop.create_future()
        self._pending.append((item, future))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        self._flush_scheduled = False
        while self._pending and self._in_flight < self._max_in_flight:
            head = self._pending[: self._max_items]
            count = fitting([item for item, _ in head])
            batch, self._pending = head[:count], self._pending[count:]
            self._in_flight += 1
            task = asyncio.get_running_loop().create_task(self._run(batch))
            self._out[task] = batch
            task.add_done_callback(self._landed)

    def _landed(self, task: asyncio.Task[None]) -> None:
        self._out.pop(task, None)

    def _answers(self, batch: list[_Pending]) -> AsyncIterator[policy_pb2.CallBatchResponse]:
        """The batch's results: its CallBatch RPC, or a lone item's unary RPC."""
        if len(batch) == 1 and self._single is not None:
            return self._alone(self._single, batch[0][0])
        return self._send(policy_pb2.CallBatchRequest(items=[item for item, _ in batch]))

    @staticmethod
    async def _alone(single: Single, item: policy_pb2.CallBatchItem) -> AsyncIterator[policy_pb2.CallBatchResponse]:
        result = await single(item)  # index 0, the lone item's
        yield policy_pb2.CallBatchResponse(results=[result])

    async def _run(self, batch: list[_Pending]) -> None:
        try:
            async for response in self._answers(batch):
                for result in response.results:
                    if 0 <= result.index < len(batch) and not batch[result.index][1].done():
                        batch[result.index][1].set_result(result)
            unanswered: BaseException = RuntimeError("CallBatch ended without answering every item")
        except BaseException as exc:
            unanswered = exc
        finally:
            self._in_flight -= 1
            if self._pending:
                self._flush()
        for _, future in batch:
            if not future.done():
                future.set_exception(unanswered)
        if not isinstance(unanswered, Exception):
            raise unanswered

    async def close(self) -> None:
        """Stops the batches in flight; every caller still waiting gets BatcherClosed."""
        self._closed = True
        waiting = [pending for batch in self._out.values() for pending in batch] + self._pending
        self._pending = []
        # First, so a cancelled batch cannot hand its callers a CancelledError that is not theirs.
        for _, future in waiting:
            if not future.done():
                future.set_exception(BatcherClosed("the policy client was closed before this item was answered"))
        tasks = list(self._out)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
