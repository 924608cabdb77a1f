"""One front process's budget for the backend answers it holds at once (docs/adr/0050).

Why: every tenant shares a front process, and each answer may be up to 15 MiB (ADR 30),
which costs several times that once parsed, re-encoded for its completion record and encoded
again for the client. Nothing bounded the sum: eight concurrent ~14 MiB answers took one
front to 1.4 GB, so one tenant with big answers could hand every tenant's calls to the OOM
killer (ADR 46).

How: each client request holds a `Holding` (opened once at the edge, released when its
response has been written); the transport raises it to the size of the answer it is about to
read (`hold_answer`), before the bytes are read or parsed. An answer up to `SMALL_ANSWER_BYTES`
is counted but never waits, so nothing another caller does can delay or refuse a small
answer. A larger one is admitted first come, first served once it fits, waits at most
`wait_seconds`, then `AnswerOverBudget` (the tool has run: the caller is told so, and the
audit row says so). One answer larger than the whole budget is refused at once: waiting
could never make room for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections import deque
from collections.abc import Iterator

MIB = 1_048_576
# Small answers (nearly every call) never wait: an answer this size or smaller is counted
# but admitted at once, even past the budget.
SMALL_ANSWER_BYTES = MIB


class AnswerOverBudget(Exception):
    """The answer was not read: the process holds too much already, or it could never fit.
    The message ("its answer … was not read: why") names no backend: the client may read it."""


class AnswerBudget:
    """Bytes of backend answers held by this process, shared by every tenant.

    Per toolkit org (whose backend sends the answers): seen from any other org, one org's
    holding counts at most `share` of the budget, so an org whose backend announces big answers
    and sends nothing (or its many callers) cannot leave the others no room; alone, an org may
    use it all. The cost is bounded: memory may pass the budget by the one org's excess over
    its share (at most 1.5x the budget at the default half), and only while others need room."""

    def __init__(self, total_bytes: int, wait_seconds: float, share: float = 0.5) -> None:
        if total_bytes < SMALL_ANSWER_BYTES:
            raise ValueError(f"an answer budget under {SMALL_ANSWER_BYTES} bytes would refuse ordinary answers")
        self.total_bytes = total_bytes
        self.wait_seconds = wait_seconds
        self.share_bytes = int(total_bytes * share)
        self.in_use = 0
        self.refused = 0  # answers not read for want of room (a metric)
        self._by_org: dict[str, int] = {}
        self._waiting: deque[tuple[int, str, asyncio.Future[None]]] = deque()

    @contextlib.contextmanager
    def holding(self, org: str = "") -> Iterator[Holding]:
        """What one request (or one call outliving its request) holds, counted for the org whose
        toolkit answers it; all of it is given back on exit, whatever happened."""
        holding = Holding(self, org)
        reset = _current.set(holding)
        try:
            yield holding
        finally:
            _current.reset(reset)
            holding.close()

    async def _take(self, size: int, org: str) -> None:
        """Admit `size` more bytes for `org`, first come first served within the org; another
        org's line never blocks it. AnswerOverBudget after the wait."""
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (size, org, turn)
        self._waiting.append(entry)
        self._admit_waiting()
        if turn.done():
            return
        try:
            async with asyncio.timeout(self.wait_seconds):
                await turn  # `_admit_waiting` counted us in before waking us
        except BaseException:
            if turn.done() and not turn.cancelled():
                self._count(org, -size)  # admitted just as the wait ended: give it back
            elif entry in self._waiting:
                self._waiting.remove(entry)
            self._admit_waiting()  # we may have been what the next in line waited behind
            raise

    def _count(self, org: str, size: int) -> None:
        self.in_use += size
        left = self._by_org.get(org, 0) + size
        if left:
            self._by_org[org] = left
        else:
            self._by_org.pop(org, None)

    def _give_back(self, size: int, org: str) -> None:
        self._count(org, -size)
        self._admit_waiting()

    def _fits(self, size: int, org: str) -> bool:
        """Room for `size` more of `org`'s, counting every other org at most at its share."""
        share = self.share_bytes
        others = sum(min(held, share) for owner, held in self._by_org.items() if owner != org)
        return self._by_org.get(org, 0) + size + others <= self.total_bytes

    def _admit_waiting(self) -> None:
        blocked: set[str] = set()  # orgs whose head of line does not fit: the rest of theirs waits
        for entry in list(self._waiting):
            size, org, turn = entry
            if turn.done():  # its wait ended (cancelled): it is leaving the line
                self._waiting.remove(entry)
            elif org not in blocked and self._fits(size, org):
                self._waiting.remove(entry)
                self._count(org, size)
                turn.set_result(None)
            else:
                blocked.add(org)


class Holding:
    """One request's share: the size of the largest answer it is holding (its high-water mark,
    so handshakes, retries and a stream's progress notes never add up)."""

    __slots__ = ("_budget", "_closed", "held", "org")

    def __init__(self, budget: AnswerBudget, org: str = "") -> None:
        self._budget = budget
        self.org = org
        self.held = 0
        self._closed = False

    async def raise_to(self, size: int) -> None:
        if size <= self.held or self._closed:
            # Closed: background work its request started (a backend's standalone stream it
            # opened, bounded per event and relayed as it arrives) holds nothing, like work
            # outside any request; a call that outlives its request holds its own share.
            return
        budget = self._budget
        extra = size - self.held
        if size > SMALL_ANSWER_BYTES:
            if size > budget.total_bytes:
                budget.refused += 1
                raise AnswerOverBudget(
                    f"its answer ({_mib(size)} MiB or more) was not read: it is larger than this gateway "
                    f"holds for all answers at once ({_mib(budget.total_bytes)} MiB)"
                )
            try:
                await budget._take(extra, self.org)
            except TimeoutError:
                budget.refused += 1
                raise AnswerOverBudget(
                    f"its answer ({_mib(size)} MiB or more) was not read: the gateway was holding too many "
                    "large answers at once"
                ) from None
            if self._closed:  # its request ended while this waited: it holds nothing any more
                budget._give_back(extra, self.org)
                return
            if self.held > size - extra:  # another read of this request was admitted meanwhile
                budget._give_back(min(extra, self.held - (size - extra)), self.org)
                self.held = max(self.held, size)
                return
        else:
            budget._count(self.org, extra)
        self.held = size

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._budget._give_back(self.held, self.org)


_current: contextvars.ContextVar[Holding | None] = contextvars.ContextVar("monomcp_answer_holding", default=None)


async def hold_answer(size: int) -> None:
    """Called by the transport before it reads or parses an answer of `size` bytes (so far).

    Outside a client request (a catalogue sync, bounded on its own; a backend's standalone
    stream, bounded per event and relayed as it arrives) nothing is held."""
    holding = _current.get()
    if holding is not None:
        await holding.raise_to(size)


def unheld_context() -> contextvars.Context:
    """A copy of the current context that holds nothing, for a task a request starts that is no
    part of its answer (a backend's standalone stream, which may outlive it or be started by a
    client's GET that lasts for hours): it must neither pin the request's share nor wait for
    room nor fail for want of it."""
    context = contextvars.copy_context()
    context.run(_current.set, None)
    return context


@contextlib.contextmanager
def own_holding() -> Iterator[None]:
    """For a call that may outlive the request that started it (an approved task's run): it
    holds its own share of the same budget instead of its request's, released when it ends."""
    holding = _current.get()
    if holding is None:
        yield
        return
    with holding._budget.holding(holding.org):
        yield


def _mib(size: int) -> str:
    return f"{size / MIB:.1f}".removesuffix(".0")
