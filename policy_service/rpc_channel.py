"""One connection to the policy service and the one way every typed client calls it: the
caller's credentials as metadata, the timeout, and gRPC failures raised as domain errors
(policy_service/status_codes.py). PolicyClient and DomainClient share one of these."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc

from policy_service.observability.tracing import client_interceptors
from policy_service.status_codes import error_for, reason_of

T = TypeVar("T")
S = TypeVar("S")

_OPTIONS = [
    ("grpc.lb_policy_name", "round_robin"),  # spread over every address a name resolves to
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.max_receive_message_length", 16 * 1024 * 1024),
]


def _printable(text: str, limit: int) -> str:
    """A metadata value gRPC will send (printable ASCII), whatever a client put in a header."""
    return "".join(c if " " <= c <= "~" else "?" for c in text[:limit])


def raised(exc: grpc.aio.AioRpcError) -> Exception:
    """The domain error an RPC's status stands for."""
    return error_for(exc.code())(exc.details() or exc.code().name, reason_of(exc) or None)


class RpcChannel:
    """`credential` is the caller's own API key/JWT/operator token for admin RPCs;
    `service_token` is the service identity the hot-path RPCs require."""

    def __init__(
        self,
        address: str,
        credential: str = "",
        timeout: float = 5.0,
        *,
        service_token: str = "",
        tls: grpc.ChannelCredentials | None = None,
        source: str = "",
        request_id: str = "",
        client_address: str = "",
        user_agent: str = "",
    ) -> None:
        """`request_id`, `client_address`, `user_agent`: the front's HTTP client's, stated for
        the admin-action audit row; believed only with the service token beside them."""
        self._address = address
        self._channel: grpc.aio.Channel | None = None
        self._stubs: dict[type[Any], Any] = {}
        self.timeout = timeout
        self._tls = tls
        # `source` labels admin actions in the audit log: "api", "console" or "cli" (default "grpc").
        stated = (
            ("x-monomcp-service", service_token),
            ("x-request-id", _printable(request_id, 64)),
            ("x-monomcp-client-address", _printable(client_address, 64)),
            ("x-monomcp-user-agent", _printable(user_agent, 512)),
        )
        self.admin_metadata = (
            *((("authorization", f"Bearer {credential}"),) if credential else ()),
            *((("x-monomcp-source", source),) if source else ()),
            *(pair for pair in stated if pair[1]),
        )
        self.service_metadata = (("authorization", f"Bearer {service_token}"),) if service_token else ()

    def connect(self) -> grpc.aio.Channel:
        """The channel, opened on first use (grpc.aio channels bind to the running event loop)."""
        if self._channel is None:
            interceptors = client_interceptors()
            self._channel = (
                grpc.aio.secure_channel(self._address, self._tls, options=_OPTIONS, interceptors=interceptors)
                if self._tls is not None
                else grpc.aio.insecure_channel(self._address, options=_OPTIONS, interceptors=interceptors)
            )
            self._stubs = {}
        return self._channel

    def open_target(self, target: str) -> grpc.aio.Channel:
        """A separate channel to one resolved address of this one (a CallStream's own), with
        the same TLS; the certificate is still checked against the configured host name."""
        options: list[tuple[str, Any]] = [option for option in _OPTIONS if option[0] != "grpc.lb_policy_name"]
        if self._tls is not None:
            host = self._address.removeprefix("dns:").removeprefix("///").rpartition(":")[0].strip("[]")
            if host and target != self._address:
                options.append(("grpc.ssl_target_name_override", host))
            return grpc.aio.secure_channel(target, self._tls, options=options)
        return grpc.aio.insecure_channel(target, options=options)

    def stub(self, kind: Callable[[grpc.aio.Channel], S]) -> S:
        """The generated stub `kind` on the current channel (a closed channel reopens)."""
        channel = self.connect()
        found = self._stubs.get(kind)  # type: ignore[call-overload]
        if found is None:
            found = self._stubs[kind] = kind(channel)  # type: ignore[index]
        return found  # type: ignore[no-any-return]

    def _metadata(self, admin: bool, sign_in: bool) -> tuple[tuple[str, str], ...]:
        if sign_in:  # the service token vouches for the stated client address; plus the source label
            return (*self.service_metadata, *(m for m in self.admin_metadata if m[0] != "authorization"))
        return self.admin_metadata if admin else self.service_metadata

    async def call(
        self, fn: Callable[..., Awaitable[T]], request: Any, admin: bool = False, sign_in: bool = False
    ) -> T:
        """A unary RPC with the caller's (admin) or the service's credentials; a password
        sign-in goes with the service's, which vouch for the client address it states."""
        try:
            metadata = self._metadata(admin, sign_in)
            return await fn(request, timeout=self.timeout, metadata=metadata or None)
        except grpc.aio.AioRpcError as exc:
            raise raised(exc) from exc

    async def stream(self, fn: Callable[..., Any], request: Any, admin: bool = False) -> AsyncIterator[Any]:
        """A server-streaming RPC's messages; an RPC failure is raised as its domain error."""
        metadata = self.admin_metadata if admin else self.service_metadata
        call = fn(request, timeout=self.timeout, metadata=metadata or None)
        try:
            async for response in call:
                yield response
        except grpc.aio.AioRpcError as exc:
            raise raised(exc) from exc

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None
            self._stubs = {}


class OnChannel:
    """Base of the typed clients' per-service method sets: they call through `channel`."""

    channel: RpcChannel

    async def _call(
        self, fn: Callable[..., Awaitable[T]], request: Any, admin: bool = False, sign_in: bool = False
    ) -> T:
        return await self.channel.call(fn, request, admin, sign_in)
