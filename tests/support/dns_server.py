"""A tiny authoritative DNS server on loopback UDP for tests: answers TXT, A and AAAA
questions from a dict it is given, NXDOMAIN for anything else (built on dnspython)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset


@dataclass
class Zone:
    """(name, type) → record values, e.g. ("_monomcp-challenge.mcp.acme.test", "TXT")."""

    records: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    queries: list[tuple[str, str]] = field(default_factory=list)

    def set(self, name: str, kind: str, *values: str) -> None:
        self.records[(name.lower().rstrip("."), kind)] = list(values)

    def answer(self, wire: bytes) -> bytes:
        query = dns.message.from_wire(wire)
        response = dns.message.make_response(query)
        response.flags |= 1 << 10  # AA
        question = query.question[0]
        name = question.name.to_text().lower().rstrip(".")
        kind = dns.rdatatype.to_text(question.rdtype)
        self.queries.append((name, kind))
        values = self.records.get((name, kind))
        if values:
            texts = [f'"{v}"' if kind == "TXT" else v for v in values]
            response.answer.append(dns.rrset.from_text_list(question.name, 60, dns.rdataclass.IN, kind, texts))
        elif not any(n == name for n, _ in self.records):
            response.set_rcode(dns.rcode.NXDOMAIN)
        return bytes(response.to_wire())


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, zone: Zone) -> None:
        self._zone = zone
        self._transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | int, int]) -> None:
        if self._transport is not None:
            self._transport.sendto(self._zone.answer(data), addr)


@asynccontextmanager
async def dns_server(zone: Zone) -> AsyncIterator[str]:
    """Serve `zone` on 127.0.0.1; yields `127.0.0.1:PORT` (MONOMCP_DNS_NAMESERVERS)."""
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: _Protocol(zone), local_addr=("127.0.0.1", 0)
    )
    try:
        yield f"127.0.0.1:{transport.get_extra_info('sockname')[1]}"
    finally:
        transport.close()
