"""Where toolkit backends may be reached: the operator's egress policy.

Why: a toolkit's backend URL is chosen by an org admin, and the gateway connects to it
from inside the operator's network. Without a policy an admin could point a toolkit at
loopback, a private service or the cloud metadata endpoint and read the answers back
(SSRF). The same check runs when a toolkit is saved (policy service) and when the front
opens a connection, where the checked address is the one connected to (no second DNS
lookup an attacker could rebind).

Rules (docs/adr/0007-backend-egress.md):
- `MONOMCP_BACKEND_ALLOW` empty: any host name, but every address it resolves to must be
  public (not loopback, private, shared, link-local, unspecified, multicast or reserved).
- `MONOMCP_BACKEND_ALLOW` set (comma-separated host names, `*.suffix` wildcards, IPs and
  CIDRs): the host must be listed by name, or every address must lie in a listed CIDR.
  Non-public addresses are reachable only through a listed CIDR.
- `MONOMCP_BACKEND_ALLOW_PRIVATE=true` (`monomcp dev`, tests) lifts the public-address rule.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from policy_service.config import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class EgressDenied(Exception):
    """The operator's egress policy does not allow this backend address."""


class ResolveFailed(Exception):
    """The backend's host name did not resolve."""


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolver returns for `host`, in its order, deduplicated."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise ResolveFailed(f"{host} did not resolve: {exc}") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _unwrapped(ip: IPAddress) -> IPAddress:
    """The IPv4 address hidden in an IPv4-mapped, 6to4 or NAT64 IPv6 address, else `ip`."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip.sixtofour is not None:
            return ip.sixtofour
        if ip in _NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def address_kind(ip: IPAddress) -> str:
    """'public', or what makes the address internal ('loopback', 'private', 'link-local', …)."""
    ip = _unwrapped(ip)
    checks = (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("site-local", isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
    )
    for kind, hit in checks:
        if hit:
            return kind
    return "public" if ip.is_global else "non-public"


@dataclass(frozen=True)
class EgressPolicy:
    networks: tuple[IPNetwork, ...] = ()
    hosts: frozenset[str] = frozenset()
    suffixes: tuple[str, ...] = ()
    allow_private: bool = False
    resolver: Resolver = field(default=system_resolver, compare=False)

    @classmethod
    def parse(cls, allow: str, allow_private: bool = False, resolver: Resolver = system_resolver) -> EgressPolicy:
        """From the `MONOMCP_BACKEND_ALLOW` list; raises ValueError on an entry it cannot read."""
        networks: list[IPNetwork] = []
        hosts: set[str] = set()
        suffixes: list[str] = []
        for raw in allow.split(","):
            entry = raw.strip().lower().rstrip(".")
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
                continue
            except ValueError:
                pass
            name = entry[2:] if entry.startswith("*.") else entry
            if not name or not all(part and part.replace("-", "").isalnum() for part in name.split(".")):
                raise ValueError(f"MONOMCP_BACKEND_ALLOW: {raw.strip()!r} is not a host name, IP or CIDR")
            if entry.startswith("*."):
                suffixes.append("." + name)
            else:
                hosts.add(name)
        return cls(tuple(networks), frozenset(hosts), tuple(suffixes), allow_private, resolver)

    @classmethod
    def from_settings(cls, settings: Settings) -> EgressPolicy:
        return cls.parse(settings.backend_allow, settings.backend_allow_private)

    @property
    def restricted(self) -> bool:
        return bool(self.networks or self.hosts or self.suffixes)

    def _host_listed(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        return host in self.hosts or any(host.endswith(s) for s in self.suffixes)

    def check_address(self, host: str, address: str) -> None:
        """Raises EgressDenied unless `host` may be reached at `address`."""
        ip = _unwrapped(ipaddress.ip_address(address.split("%", 1)[0]))
        in_cidr = any(ip in net for net in self.networks)
        if self.restricted and not in_cidr and not self._host_listed(host):
            raise EgressDenied(f"{host} is not in this gateway's backend allowlist")
        kind = address_kind(ip)
        if kind != "public" and not in_cidr and not self.allow_private:
            raise EgressDenied(
                f"{host} is a {kind} address; this gateway reaches only public backends unless the operator allows more"
                if ip_literal(host)
                else f"{host} resolves to a {kind} address; this gateway reaches only public backends"
                " unless the operator allows more"
            )

    async def resolve(self, host: str, port: int) -> list[str]:
        """Every address of `host`, each one checked; connect only to these (pinning).

        Raises EgressDenied if any address is not allowed, ResolveFailed if there is none.
        """
        literal = ip_literal(host)
        addresses = [str(literal)] if literal is not None else await self.resolver(host, port)
        if not addresses:
            raise ResolveFailed(f"{host} did not resolve")
        for address in addresses:
            self.check_address(host, address)
        return addresses
