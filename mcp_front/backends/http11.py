"""A minimal pooled HTTP/1.1 client for POSTing JSON-RPC to upstream MCP servers.

Why not httpx: under concurrency its pool bookkeeping cost most of the front's CPU
(profiled: ~60% at c=32). This keeps one idle-connection stack per (tenant, origin) and
does just what a JSON-RPC POST needs: Content-Length or chunked bodies, keep-alive, TLS.
A connection that errors or is cancelled mid-request is closed, never reused, and a request
is never sent twice: a POST may have run on the backend even if its answer never arrived, so
stale idle connections are dropped before use (closed by the peer, or idle longer than a
typical server keep-alive) instead of being retried after a failed write.

Egress (docs/adr/0007-backend-egress.md): a new connection resolves the host once,
checks every address against the operator's policy and connects to a checked address,
so there is no second lookup to rebind; Host and TLS SNI stay the original name. Reused
connections cost no lookup. Redirects are never followed (a 3xx is just an answer).
Connections are never shared between tenants: each `scope` has its own pool.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from mcp_front.backends.answer_budget import hold_answer
from mcp_front.observability.tracing import with_trace_context
from policy_service.toolkits.backend_target import FRAMING_HEADERS, header_problem
from policy_service.toolkits.egress import EgressDenied, EgressPolicy, ResolveFailed

_MAX_HEADER_BYTES = 65_536
# A tool's result is recorded through CompleteToolCall, one gRPC message the policy service
# refuses above 16 MiB: an answer larger than that could run but never be recorded, so it is
# refused while it is read (whatever its framing), with headroom for the completion's envelope.
_MAX_BODY_BYTES = 15 * 1024 * 1024
_MAX_POOLS = 4096
# Below common server keep-alive timeouts (uvicorn: 5 s), so the server rarely closes first.
_IDLE_SECONDS = 4.0
# Protocol header lines that passed `header_problem`: the verdict depends on the line alone,
# and the same few (media types, protocol version, session, method, tool name) go out on every
# call. Bounded, and never a backend's configured headers (its credentials are not kept);
# those are checked every time (docs/adr/0040).
_PROTOCOL_HEADERS = frozenset(
    {"content-type", "accept", "mcp-protocol-version", "mcp-session-id", "mcp-method", "mcp-name"}
)
_CLEAN_HEADERS: set[tuple[str, str]] = set()
_MAX_CLEAN_HEADERS = 4096


class HttpError(Exception):
    """Transport failure; the message may name the backend (for the audit log only)."""


class EgressRefused(HttpError):
    """The operator's egress policy does not allow this backend address."""


class ResponseTooLarge(HttpError):
    """The backend's answer (or one event of its stream) is over the body limit; the message
    names no backend (client-safe)."""

    def __init__(self, what: str = "answered with") -> None:
        super().__init__(f"the toolkit's backend {what} more than {_MAX_BODY_BYTES // 1_048_576} MiB")


async def _admit(total: int) -> None:
    """Every answer body passes here before its next bytes are read: bounded per answer, and
    held against the process's budget for answers in flight (answer_budget, ADR 50)."""
    if total > _MAX_BODY_BYTES:
        raise ResponseTooLarge
    await hold_answer(total)


def event_within_limit(size: int) -> None:
    """One SSE event (a progress note, a log, the result) is bounded like a whole JSON answer."""
    if size > _MAX_BODY_BYTES:
        raise ResponseTooLarge("sent an event of")


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    headers: dict[str, str]
    body: bytes


class OpenResponse:
    """A response whose head has arrived and whose body is read as it comes (SSE).

    The connection goes back to the pool only when the body was read to its end and the
    server allows keep-alive; `close()` (always call it) drops it otherwise.
    """

    def __init__(self, status: int, headers: dict[str, str], conn: _Conn, pool: _Pool, max_idle: int) -> None:
        self.status, self.headers = status, headers
        self._conn, self._pool, self._max_idle = conn, pool, max_idle
        self._finished = False
        self._closed = False

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives: chunked, Content-Length or until the server closes.

        Every framing is bounded (`ResponseTooLarge`). An event stream may run as long as its
        call (a tool streaming progress for an hour), so its consumer bounds each event
        (`SseDecoder`) instead of the total; any other body is bounded as a whole."""
        reader = self._conn.reader
        total = 0
        bounded = not self.headers.get("content-type", "").startswith("text/event-stream")
        try:
            if self.headers.get("transfer-encoding", "").lower() == "chunked":
                async for chunk in Http11Client.iter_chunked(reader, bounded):
                    yield chunk
            elif "content-length" in self.headers:
                yield await reader.readexactly(await _body_length(self.headers))
            else:
                while chunk := await reader.read(65_536):
                    if bounded:
                        total += len(chunk)
                        await _admit(total)
                    yield chunk
                return  # the body ended with the connection: never reuse it
            self._finished = True
        except (ConnectionError, asyncio.IncompleteReadError, OSError) as exc:
            raise HttpError(f"{type(exc).__name__}: {exc}") from exc

    async def read_all(self) -> bytes:
        if "content-length" in self.headers and self.headers.get("transfer-encoding", "").lower() != "chunked":
            # A plain JSON answer (nearly every call): one read, no async generator (docs/adr/0040).
            try:
                body = await self._conn.reader.readexactly(await _body_length(self.headers))
            except (ConnectionError, asyncio.IncompleteReadError, OSError) as exc:
                raise HttpError(f"{type(exc).__name__}: {exc}") from exc
            self._finished = True
            return body
        parts = [chunk async for chunk in self.chunks()]
        return b"".join(parts)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        keep_alive = self.headers.get("connection", "").lower() != "close"
        if self._finished and keep_alive and len(self._pool.idle) < self._max_idle:
            self._pool.idle.append(self._conn)
        else:
            self._conn.writer.close()


@dataclass(frozen=True, slots=True)
class _Origin:
    host: str
    port: int
    tls: bool
    path: str
    host_header: str


@dataclass(slots=True)
class _Conn:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    idle_since: float = 0.0

    def usable(self, now: float) -> bool:
        return not (self.reader.at_eof() or self.writer.is_closing() or now - self.idle_since > _IDLE_SECONDS)


@dataclass
class _Pool:
    idle: list[_Conn] = field(default_factory=list)


async def _body_length(headers: dict[str, str]) -> int:
    """The announced body length, admitted before the body is read."""
    value = headers["content-length"]
    if not value.isdigit():
        raise HttpError("response body length is not a number")
    await _admit(int(value))
    return int(value)


def _origin(url: str) -> _Origin:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise HttpError(f"unsupported URL: {url!r}")
    tls = parts.scheme == "https"
    port = parts.port or (443 if tls else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    default = (tls and port == 443) or (not tls and port == 80)
    name = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    host_header = name if default else f"{name}:{port}"
    return _Origin(parts.hostname, port, tls, path, host_header)


class Http11Client:
    def __init__(self, max_idle_per_origin: int = 256, egress: EgressPolicy | None = None) -> None:
        self._pools: OrderedDict[tuple[str, str, int, bool], _Pool] = OrderedDict()
        self._origins: dict[str, _Origin] = {}
        self._max_idle = max_idle_per_origin
        self._ssl = ssl.create_default_context()
        self._egress = egress or EgressPolicy()  # fail closed: public backends only

    async def close(self) -> None:
        for pool in self._pools.values():
            for conn in pool.idle:
                conn.writer.close()
            pool.idle.clear()

    def _pool(self, scope: str, origin: _Origin) -> _Pool:
        key = (scope, origin.host, origin.port, origin.tls)
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = _Pool()
            if len(self._pools) > _MAX_POOLS:  # forget the least recently created tenant's idle connections
                for conn in self._pools.popitem(last=False)[1].idle:
                    conn.writer.close()
        return pool

    async def post(self, url: str, headers: dict[str, str], body: bytes, scope: str = "") -> HttpResponse:
        """POST `body`; `scope` names the tenant whose pooled connections may carry it."""
        origin = self._origins.get(url)
        if origin is None:
            origin = self._origins[url] = _origin(url)
        pool = self._pool(scope, origin)
        request = self._encode(origin, headers, body)
        conn = self._idle(pool) or await self._connect(origin)
        try:
            conn.writer.write(request)
            response, keep_alive = await self._read(conn.reader)
        except (ConnectionError, asyncio.IncompleteReadError, OSError) as exc:
            conn.writer.close()  # never resent: the backend may have run it
            raise HttpError(f"{type(exc).__name__}: {exc}") from exc
        except BaseException:
            conn.writer.close()  # cancelled or timed out mid-request: the stream state is unknown
            raise
        if keep_alive and len(pool.idle) < self._max_idle:
            conn.idle_since = asyncio.get_running_loop().time()
            pool.idle.append(conn)
        else:
            conn.writer.close()
        return response

    @staticmethod
    def _idle(pool: _Pool) -> _Conn | None:
        """The most recently used idle connection that is still good; stale ones are closed."""
        now = asyncio.get_running_loop().time()
        while pool.idle:
            conn = pool.idle.pop()
            if conn.usable(now):
                return conn
            conn.writer.close()
        return None

    async def open(
        self, url: str, headers: dict[str, str], body: bytes, scope: str = "", method: str = "POST"
    ) -> OpenResponse:
        """POST `body` (or GET, for a backend's standalone stream) and return once the response
        head arrives; the body streams from there."""
        origin = self._origins.get(url)
        if origin is None:
            origin = self._origins[url] = _origin(url)
        pool = self._pool(scope, origin)
        request = self._encode(origin, headers, body, method)
        for attempt in (0, 1):
            reused = attempt == 0 and bool(pool.idle)
            conn = pool.idle.pop() if reused else await self._connect(origin)
            try:
                conn.writer.write(request)
                status, response_headers = await self._read_head(conn.reader)
            except (ConnectionError, asyncio.IncompleteReadError, OSError) as exc:
                conn.writer.close()
                if reused:
                    continue
                raise HttpError(f"{type(exc).__name__}: {exc}") from exc
            except BaseException:
                conn.writer.close()
                raise
            return OpenResponse(status, response_headers, conn, pool, self._max_idle)
        raise HttpError("unreachable")

    async def _connect(self, origin: _Origin) -> _Conn:
        try:
            addresses = await self._egress.resolve(origin.host, origin.port)
        except EgressDenied as exc:
            raise EgressRefused(str(exc)) from None
        except ResolveFailed as exc:
            raise HttpError(str(exc)) from None
        failure: OSError | None = None
        for address in addresses:  # every one was checked; connect to the checked address itself
            try:
                reader, writer = await asyncio.open_connection(
                    address,
                    origin.port,
                    ssl=self._ssl if origin.tls else None,
                    server_hostname=origin.host if origin.tls else None,
                    limit=_MAX_HEADER_BYTES * 4,
                )
            except OSError as exc:
                failure = exc
                continue
            return _Conn(reader, writer)
        raise HttpError(f"connect to {origin.host}:{origin.port} failed: {failure}")

    @staticmethod
    def _encode(origin: _Origin, headers: dict[str, str], body: bytes, method: str = "POST") -> bytes:
        lines = [f"{method} {origin.path} HTTP/1.1", f"Host: {origin.host_header}"]
        if method == "POST":
            lines.append(f"Content-Length: {len(body)}")
        for name, value in with_trace_context(headers).items():
            if (name, value) not in _CLEAN_HEADERS:
                problem = header_problem(name, value, FRAMING_HEADERS)
                if problem is not None:  # stored before upsert checked headers: refuse rather than reframe
                    raise HttpError(problem)
                if name in _PROTOCOL_HEADERS and len(_CLEAN_HEADERS) < _MAX_CLEAN_HEADERS:
                    _CLEAN_HEADERS.add((name, value))
            lines.append(f"{name}: {value}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body

    @staticmethod
    async def _read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError as exc:
            raise HttpError("response headers too large") from exc
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise HttpError(f"not an HTTP/1.x response: {lines[0][:80]!r}")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        if parts[0] == "HTTP/1.0":
            headers.setdefault("connection", "close")
        return int(parts[1]), headers

    @staticmethod
    async def _read(reader: asyncio.StreamReader) -> tuple[HttpResponse, bool]:
        status, headers = await Http11Client._read_head(reader)
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = b"".join([chunk async for chunk in Http11Client.iter_chunked(reader, bounded=True)])
        elif "content-length" in headers:
            body = await reader.readexactly(await _body_length(headers))
        else:  # the body ends when the server closes: read to the end, not just what has arrived
            parts: list[bytes] = []
            total = 0
            while chunk := await reader.read(65_536):
                total += len(chunk)
                await _admit(total)
                parts.append(chunk)
            return HttpResponse(status, headers, b"".join(parts)), False
        keep_alive = headers.get("connection", "").lower() != "close"
        return HttpResponse(status, headers, body), keep_alive

    @staticmethod
    async def iter_chunked(reader: asyncio.StreamReader, bounded: bool) -> AsyncIterator[bytes]:
        """Chunks of a chunked body as each arrives (an SSE event may be its own chunk), each
        admitted before it is read: a `bounded` body in total, an event stream chunk by chunk
        (its consumer bounds each event)."""
        total = 0
        while True:
            size_line = await reader.readuntil(b"\r\n")
            try:
                size = int(size_line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise HttpError("bad chunk size") from None
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass  # trailers
                return
            total = total + size if bounded else size
            await _admit(total)  # before buffering it: one chunk may claim any size
            chunk = await reader.readexactly(size)
            await reader.readexactly(2)
            yield chunk
