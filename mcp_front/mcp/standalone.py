"""The client's standalone stream (a GET on the endpoint, initialize era) and resource
subscriptions: what a backend sends outside any request reaches the clients of its tenant
(docs/adr/0025-standalone-streams-and-subscriptions.md).

- A client's GET opens a `ClientStream`, keyed by its tenant scope (toolkit and caller
  org: the scope upstream sessions are keyed by, so one org never hears another's backend
  session) and its credential.
- While a scope has a client stream, every HTTP session the pool holds for it is followed
  by a `backends.listener` task (a GET on an initialize-era session; a `subscriptions/listen`
  filtered by the scope's subscribed URIs on a 2026-07-28 one, reopened when they change,
  docs/adr/0048); the listener stops when the last client stream of the scope closes.
- A dual-era backend (both eras at one URL, as every `mcp` 2.x server) is followed on both
  wires, and each wire's events reach only the streams of its own era: the GET's the
  initialize-era streams, the listen's the 2026-07-28 listen streams, as each client would
  hear the backend directly, and never twice (docs/adr/0053). Any other backend's one wire
  reaches every stream of the scope.
- `notifications/resources/updated` reaches only the streams of credentials that
  subscribed to that URI (a subscription is authorized and audited like a read);
  `notifications/message` is filtered by the credential's `logging/setLevel`; list
  changes reach every stream of the scope. Anything else is not the client's business.

Each front process holds its own streams, subscriptions and listeners; with Redis
(`relay_routing.SharedRelays` sets `share`) what a listener hears and an unsubscribe reach
every replica (ADR 0025 says what a multi-replica deployment needs).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import OrderedDict
from collections.abc import Coroutine, Iterator
from typing import TYPE_CHECKING, Any, Protocol

from starlette.types import Receive, Send

from mcp_front.backends import listener
from mcp_front.backends.answer_budget import unheld_context
from mcp_front.backends.negotiation import MODERN_SESSION
from mcp_front.mcp.client_stream import ClientStream, Era, write_sse
from mcp_front.mcp.relay import LOG_LEVELS, RelayHub, levels_from, owner_digest

if TYPE_CHECKING:
    from mcp_front.backends.negotiation import Negotiated
    from mcp_front.backends.upstream import SessionKey, Target, UpstreamPool

log = logging.getLogger("monomcp.front")

LIST_CHANGED = frozenset(
    {
        "notifications/tools/list_changed",
        "notifications/resources/list_changed",
        "notifications/prompts/list_changed",
    }
)
_RELAYED = LIST_CHANGED | {"notifications/resources/updated", "notifications/message"}
MAX_STREAMS_PER_CREDENTIAL = 16
MAX_URIS_PER_SUBSCRIBER = 1_000
_MAX_SUBSCRIBERS = 10_000
_MAX_LISTENED_URIS = 10_000  # per 2026-07-28 listen toward one backend (the scope's union)
_FORWARD_SECONDS = 10.0
_compact = json.JSONEncoder(separators=(",", ":")).encode


class Sharing(Protocol):
    async def notify(self, scope: str, message: dict[str, Any], subscribers: list[str], era: Era | None) -> None: ...

    async def unsubscribed(self, scope: str, digest: str, uri: str) -> None: ...


class StreamHub:
    """Per front process: client streams, subscriptions, and the backend listeners they need."""

    def __init__(self, relays: RelayHub, pool: UpstreamPool, max_streams_per_org: int = 0) -> None:
        self._relays, self._pool = relays, pool
        self._streams: dict[str, set[ClientStream]] = {}
        # Standing streams per caller org on this process (0 = no bound): minting keys or
        # signing in again multiplies the per-credential bound, not this one.
        self._max_per_org = max_streams_per_org
        self._per_org: dict[str, int] = {}
        # scope -> owner -> URI -> the eras it was subscribed in (a dual-era backend hears each
        # era's subscriptions on that era's wire, ADR 0053)
        self._subscriptions: dict[str, dict[str, dict[str, set[Era]]]] = {}
        self._recency: OrderedDict[tuple[str, str], None] = OrderedDict()  # (owner, scope), oldest first
        self._held: dict[str, int] = {}  # owner -> URIs it holds across scopes
        # One listener per upstream key and wire (False: the handshake session's GET; True: a listen).
        self._listeners: dict[tuple[SessionKey, bool], tuple[Negotiated, asyncio.Task[None], listener.Wanted]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # Set when replicas share Redis (relay_routing.SharedRelays): what a listener hears also
        # reaches the other replicas' streams, updates with the digests of their subscribers,
        # and an unsubscribe reaches the replica that holds the subscription.
        self.share: Sharing | None = None
        pool.on_session = self.session_opened
        pool.stdio.on_notification = self.deliver  # a stdio process has no stream to follow: it tells us

    # --- subscriptions --------------------------------------------------------------
    # Indexed by scope, so a delivery touches only its scope's subscribers; `_recency` orders
    # the (owner, scope) entries for the bound, `_held` counts each credential's URIs.

    def may_subscribe(self, owner: str) -> bool:
        """Memory is bounded per credential (checked before the request is authorized)."""
        return self._held.get(owner, 0) < MAX_URIS_PER_SUBSCRIBER

    def subscribe(self, owner: str, scope: str, uri: str, era: Era = Era.INITIALIZE) -> None:
        """Remembers an authorized subscription made in `era` (the oldest subscriber is
        forgotten past the bound)."""
        uris = self._subscriptions.setdefault(scope, {}).setdefault(owner, {})
        if uri not in uris:
            self._held[owner] = self._held.get(owner, 0) + 1
        eras = uris.setdefault(uri, set())
        if era not in eras:
            eras.add(era)
            self._refilter(scope)
        self._recency[(owner, scope)] = None
        self._recency.move_to_end((owner, scope))
        while len(self._recency) > _MAX_SUBSCRIBERS:
            oldest, in_scope = self._recency.popitem(last=False)[0]
            for held in list(self._subscriptions[in_scope][oldest]):
                self._drop(oldest, in_scope, held)
        if self.share is not None:  # the client's stream may be on another replica: listen here
            self._follow_scope(scope)

    def unsubscribe(self, owner: str, scope: str, uri: str) -> bool:
        """Forgets a subscription; True when nobody else in the scope still wants the URI
        (then the tenant's backend session may stop sending its updates)."""
        nobody_else = self._forget(owner, scope, uri)
        if self.share is not None:
            self._spawn(self.share.unsubscribed(scope, owner_digest(owner), uri))
        return nobody_else

    def unsubscribed_elsewhere(self, scope: str, digest: str, uri: str) -> None:
        """Another replica took this credential's unsubscribe: drop it here too, and tell this
        replica's backend sessions when nobody else here still wants the URI."""
        owners = self._subscriptions.get(scope, {})
        for owner in [o for o, uris in owners.items() if uri in uris and owner_digest(o) == digest]:
            if self._forget(owner, scope, uri):
                self._backends_unsubscribe(scope, uri)
        if not self._interested(scope):
            self._unfollow(scope)

    def end_subscription(self, owner: str, scope: str, uri: str) -> None:
        """A listen stream ended: its subscription goes, and the backend hears it when nobody
        else in the scope still wants the URI (best effort, like carrying subscriptions over)."""
        if self.unsubscribe(owner, scope, uri):
            self._backends_unsubscribe(scope, uri, Era.MODERN)

    def _forget(self, owner: str, scope: str, uri: str) -> bool:
        """The one way a subscription ends; True when nobody in the scope still wants the URI."""
        self._drop(owner, scope, uri)
        if not self._interested(scope):
            self._unfollow(scope)
        return not self._subscribers(scope, uri)

    def _drop(self, owner: str, scope: str, uri: str) -> None:
        owners = self._subscriptions.get(scope, {})
        uris = owners.get(owner)
        if uris is None or uri not in uris:
            return
        del uris[uri]
        self._refilter(scope)
        self._held[owner] -= 1
        if not self._held[owner]:
            del self._held[owner]
        if not uris:
            del owners[owner]
            self._recency.pop((owner, scope), None)
            if not owners:
                del self._subscriptions[scope]

    def _wanted(self, scope: str, era: Era | None = None) -> list[str]:
        """What a 2026-07-28 listen toward this scope's backends asks for: every URI subscribed
        in the scope in `era` (None: in either; sorted, so a reopening asks the same; bounded)."""
        uris = {
            uri
            for held in self._subscriptions.get(scope, {}).values()
            for uri, eras in held.items()
            if era is None or era in eras
        }
        return sorted(uris)[:_MAX_LISTENED_URIS]

    def _refilter(self, scope: str) -> None:
        for (key, modern), (_, _, wanted) in self._listeners.items():
            if key[0] == scope and modern:
                wanted.changed.set()

    def _subscribers(self, scope: str, uri: str, era: Era | None = None) -> list[str]:
        """The credentials of `scope` subscribed to `uri` (in `era`; None: in either)."""
        owners = self._subscriptions.get(scope, {}).items()
        return [owner for owner, uris in owners if uri in uris and (era is None or era in uris[uri])]

    def _interested(self, scope: str) -> bool:
        if scope in self._streams:
            return True
        return self.share is not None and scope in self._subscriptions

    def _backends_unsubscribe(self, scope: str, uri: str, era: Era | None = None) -> None:
        """Tells the scope's handshake sessions; a dual-era backend's never held a 2026-07-28
        subscription (its listen filter did, and is reopened without it)."""
        for target, _ in self._pool.sessions_in(scope):
            if era is not Era.MODERN or not self._pool.dual_era(target):
                self._spawn(self._send(target, "resources/unsubscribe", uri))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work, context=unheld_context())  # no request's answer
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, target: Target, method: str, uri: str) -> None:
        """Best effort: the request was authorized and audited when the client made it."""
        message = {"jsonrpc": "2.0", "id": self._pool.next_id(), "method": method, "params": {"uri": uri}}
        try:
            await self._pool.forward(target.url, target.headers, target.scope, message, _FORWARD_SECONDS)
        except Exception as exc:
            log.info("%s %s not carried to the backend: %s", method, uri, exc)

    # --- backend side ---------------------------------------------------------------

    def session_opened(self, target: Target, session: Negotiated) -> None:
        """The pool opened a session: follow it if a client of its scope is listening, and
        carry the scope's subscriptions over (a backend that forgot our session forgot them)."""
        if self._interested(target.scope):
            self._follow_target(target)
        if session.modern:
            return  # its listen filter carries the scope's subscriptions
        # A dual-era backend's handshake session carries the initialize era's only (ADR 0053).
        for uri in self._wanted(target.scope, self._audience(target, session)):
            self._spawn(self._send(target, "resources/subscribe", uri))

    def _follow_scope(self, scope: str) -> None:
        """Follows every backend of the scope the tenant holds a session on or knows to serve
        2026-07-28."""
        for target in self._pool.targets_in(scope):
            self._follow_target(target)

    def _follow_target(self, target: Target) -> None:
        """Follows the backend's handshake session (a GET, or a listen on a 2026-07-28-only
        backend) and, on a dual-era backend, also its 2026-07-28 listen. Without a handshake
        session on a backend known to serve 2026-07-28 it opens one first: only its answer
        tells a 2026-07-28-only backend (whose listen is for every client) from a dual-era one."""
        handshake = self._pool.current_session(target)
        if handshake is None:
            self._spawn(self._open(target))
            return
        self._follow(target, handshake)
        if self._pool.dual_era(target):
            self._follow(target, MODERN_SESSION)
        elif not handshake.modern and not self._pool.knows_era(target) and self._modern_streams(target.scope):
            # Only initialize-era clients used this backend (or it was redeployed): a 2026-07-28
            # stream wants its listen goods if it serves that era, so ask once (a yes starts it).
            self._spawn(self._learn(target))

    def _modern_streams(self, scope: str) -> bool:
        return any(stream.era is Era.MODERN for stream in self._streams.get(scope, ()))

    async def _learn(self, target: Target) -> None:
        try:
            await self._pool.serves_modern(target)  # a yes reaches `session_opened`
        except Exception as exc:  # best effort: the next 2026-07-28 stream or call asks again
            log.info("era of a backend of scope %s not learned: %s", target.scope, exc)

    async def _open(self, target: Target) -> None:
        try:
            await self._pool.session_for(target)
        except Exception as exc:  # best effort: the next request or stream tries again
            log.info("no session to follow for scope %s: %s", target.scope, exc)

    def _follow(self, target: Target, session: Negotiated) -> None:
        if not session.modern and not session.session_id:
            return  # a session-less initialize-era backend has no standalone stream to follow
        key = (target.key, session.modern)
        running = self._listeners.get(key)
        if running is not None and not running[1].done():
            if running[0] == session:
                return
            running[1].cancel()  # a replaced session: its stream carries nothing of ours any more

        async def heard(scope: str, message: dict[str, Any]) -> None:
            await self.deliver(scope, message, self._audience(target, session))

        wanted = listener.Wanted(lambda: self._wanted(target.scope, self._audience(target, session)))
        # Outside any request's answer budget: the GET or call that starts it may last for hours (ADR 50).
        following = listener.listen(self._pool, target, session, heard, wanted)
        task = asyncio.get_running_loop().create_task(following, context=unheld_context())
        self._listeners[key] = (session, task, wanted)

        def finished(done: asyncio.Task[None]) -> None:
            current = self._listeners.get(key)
            if current is not None and current[1] is done:
                del self._listeners[key]

        task.add_done_callback(finished)

    def _audience(self, target: Target, session: Negotiated) -> Era | None:
        """Who hears what one of the backend's streams sends (decided at each event, since the
        front may learn the backend's eras after the stream opened): on a dual-era backend, the
        clients of that stream's era, so nothing reaches a client twice or the way its era never
        would; on any other, every client (it is the backend's only stream)."""
        if not self._pool.dual_era(target):
            return None
        return Era.MODERN if session.modern else Era.INITIALIZE

    async def close(self) -> None:
        """At shutdown: no listener outlives the process's pool (it would hold a backend connection)."""
        tasks = [task for _, task, _ in self._listeners.values()] + list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _unfollow(self, scope: str) -> None:
        for (key, _), (_, task, _) in list(self._listeners.items()):
            if key[0] == scope:
                task.cancel()

    async def deliver(self, scope: str, message: dict[str, Any], era: Era | None = None) -> None:
        """A backend notification from a stream of `scope`'s backends, for the client streams
        of `era` (None: of either era)."""
        if message.get("method") not in _RELAYED:
            return
        raw = message.get("params")
        uri = raw.get("uri") if isinstance(raw, dict) else None
        # One era's wire carries the updates of that era's subscriptions only (ADR 0053).
        subscribers = self._subscribers(scope, uri, era) if isinstance(uri, str) else []
        self._put(scope, message, {owner_digest(o) for o in subscribers}, era)
        if self.share is not None:
            await self.share.notify(scope, message, sorted(owner_digest(o) for o in subscribers), era)

    def deliver_shared(self, scope: str, message: dict[str, Any], subscribers: list[str], era: Era | None) -> None:
        """What another replica's listener heard (`subscribers`: digests of who subscribed there)."""
        self._put(scope, message, set(subscribers), era)

    def _put(self, scope: str, message: dict[str, Any], subscribers: set[str], era: Era | None) -> None:
        method = message.get("method")
        raw = message.get("params")
        params: dict[str, Any] = raw if isinstance(raw, dict) else {}
        streams = list(self._streams.get(scope, ()))
        if method == "notifications/resources/updated":
            streams = [s for s in streams if s.digest in subscribers]
        elif method == "notifications/message":
            streams = [s for s in streams if params.get("level") in self._levels(s)]
        elif method not in LIST_CHANGED:
            return
        size = 0
        for stream in streams:
            if (era is not None and stream.era is not era) or (stream.kinds is not None and method not in stream.kinds):
                continue
            size = size or len(_compact(params))  # once per event: what a stream that lags holds
            stream.put({"jsonrpc": "2.0", "method": method, "params": params}, size)

    def _levels(self, stream: ClientStream) -> frozenset[str]:
        level = self._relays.level(stream.owner, stream.toolkit)
        return levels_from(level) if level else frozenset(LOG_LEVELS)

    # --- client side ----------------------------------------------------------------

    def open_streams(self, owner: str, scope: str) -> int:
        return sum(1 for s in self._streams.get(scope, ()) if s.owner == owner)

    def refusal(self, owner: str, scope: str, org: str) -> str:
        """Why one more standing stream is refused ('' when it is not)."""
        if self.open_streams(owner, scope) >= MAX_STREAMS_PER_CREDENTIAL:
            return "too many open streams for this credential"
        if org and self._max_per_org and self._per_org.get(org, 0) >= self._max_per_org:
            return "too many open streams for this organization"
        return ""

    @contextlib.contextmanager
    def attached(self, stream: ClientStream) -> Iterator[None]:
        """`stream` hears its scope while inside (a GET, or a 2026-07-28 listen request)."""
        self._streams.setdefault(stream.scope, set()).add(stream)
        if stream.org:
            self._per_org[stream.org] = self._per_org.get(stream.org, 0) + 1
        self._follow_scope(stream.scope)
        try:
            yield
        finally:
            if stream.org:
                left = self._per_org.get(stream.org, 1) - 1
                if left:
                    self._per_org[stream.org] = left
                else:
                    self._per_org.pop(stream.org, None)
            streams = self._streams.get(stream.scope)
            if streams is not None:
                streams.discard(stream)
                if not streams:
                    del self._streams[stream.scope]
                    if not self._interested(stream.scope):
                        self._unfollow(stream.scope)

    async def serve(self, stream: ClientStream, receive: Receive, send: Send) -> None:
        """Writes `stream` as SSE until the client leaves (or stops reading)."""
        with self.attached(stream):
            await write_sse(stream, receive, send)
