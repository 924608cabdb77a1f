"""Proving that an org controls a domain: a DNS TXT record or an HTTP token.

Both checks use one dnspython resolver (the system's, or `MONOMCP_DNS_NAMESERVERS` for
split-horizon DNS and tests), never follow redirects, read at most a few hundred bytes and
give up within seconds. The HTTP check connects only to addresses the egress policy allows
(no loopback or private addresses unless the operator allows them), pinned to what the
resolver returned, so a claimed domain cannot point the policy service at its own network.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass, field

import dns.asyncresolver
import dns.exception
import dns.resolver
import httpx

from policy_service.domains import names
from policy_service.toolkits.egress import EgressDenied, EgressPolicy

log = logging.getLogger(__name__)

_TIMEOUT_SECONDS = 5.0
_MAX_BODY_BYTES = 512
METHODS = ("dns", "http")


def resolver_for(nameservers: str) -> dns.asyncresolver.Resolver:
    """The system resolver, or one that asks only `host[:port]` servers (comma-separated)."""
    if not nameservers.strip():
        resolver = dns.asyncresolver.Resolver()
    else:
        resolver = dns.asyncresolver.Resolver(configure=False)
        servers: list[str] = []
        for entry in nameservers.split(","):
            host, _, port = entry.strip().rpartition(":") if entry.count(":") == 1 else (entry.strip(), "", "")
            servers.append(host)
            if port:
                resolver.port = int(port)
        resolver.nameservers = servers
    resolver.lifetime = _TIMEOUT_SECONDS
    return resolver


@dataclass
class DomainVerifier:
    resolver: dns.asyncresolver.Resolver = field(default_factory=dns.asyncresolver.Resolver)
    http_port: int = 80
    allow_private: bool = False

    async def proven(self, domain: str, token: str, method: str = "") -> str:
        """The method that shows `token` for `domain` ('' when none does)."""
        for candidate in METHODS:
            if method in ("", candidate) and await self._check(candidate, domain, token):
                return candidate
        return ""

    async def _check(self, method: str, domain: str, token: str) -> bool:
        try:
            return await (self.dns_record(domain, token) if method == "dns" else self.http_token(domain, token))
        except (dns.exception.DNSException, httpx.HTTPError, EgressDenied, OSError) as exc:
            log.info("domain %s: %s check failed: %s", domain, method, type(exc).__name__)
            return False

    async def dns_record(self, domain: str, token: str) -> bool:
        expected = names.txt_record_value(token).encode()
        try:
            answer = await self.resolver.resolve(names.txt_record_name(domain), "TXT")
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return False
        for record in answer:
            value = b"".join(getattr(record, "strings", ()))
            if hmac.compare_digest(value, expected):
                return True
        return False

    async def http_token(self, domain: str, token: str) -> bool:
        egress = EgressPolicy(allow_private=self.allow_private)
        for address in await self._addresses(domain):
            egress.check_address(domain, address)
            host = f"[{address}]" if ":" in address else address
            url = f"http://{host}:{self.http_port}{names.HTTP_PATH}"
            async with (
                httpx.AsyncClient(timeout=_TIMEOUT_SECONDS, follow_redirects=False, trust_env=False) as client,
                client.stream("GET", url, headers={"Host": domain}) as response,
            ):
                if response.status_code != 200:
                    continue
                body = b""
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > _MAX_BODY_BYTES:
                        break
                if hmac.compare_digest(body.strip()[:_MAX_BODY_BYTES], token.encode()):
                    return True
        return False

    async def _addresses(self, domain: str) -> list[str]:
        found: list[str] = []
        for kind in ("A", "AAAA"):
            try:
                answer = await self.resolver.resolve(domain, kind)
            except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
                continue
            found.extend(record.to_text() for record in answer)
        return found
