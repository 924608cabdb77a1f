"""The operator's egress policy: which backend addresses the gateway may reach."""

from __future__ import annotations

import pytest

from policy_service.toolkits.egress import EgressDenied, EgressPolicy, ResolveFailed, address_kind, ip_literal

INTERNAL = [
    "127.0.0.1",
    "127.8.9.10",
    "10.0.0.5",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",  # cloud metadata
    "0.0.0.0",
    "100.64.0.1",  # shared address space (carrier NAT)
    "224.0.0.1",
    "255.255.255.255",
    "::1",
    "::",
    "fe80::1",
    "fc00::1",
    "fd12:3456::1",
    "fec0::1",
    "::ffff:127.0.0.1",  # IPv4-mapped loopback
    "::ffff:169.254.169.254",
    "2002:7f00:1::1",  # 6to4 wrapping 127.0.0.1
    "64:ff9b::a00:5",  # NAT64 wrapping 10.0.0.5
]
PUBLIC = ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"]


def table(mapping: dict[str, list[str]]) -> EgressPolicy:
    """A policy whose DNS answers come from `mapping` (DNS is outside the project)."""

    async def resolve(host: str, port: int) -> list[str]:
        if host not in mapping:
            raise ResolveFailed(f"{host} did not resolve")
        return mapping[host]

    return EgressPolicy(resolver=resolve)


@pytest.mark.parametrize("address", INTERNAL)
def test_internal_addresses_are_denied_by_default(address: str) -> None:
    assert address_kind(ip_literal(address)) != "public"  # type: ignore[arg-type]
    with pytest.raises(EgressDenied):
        EgressPolicy().check_address(address, address)


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed_by_default(address: str) -> None:
    EgressPolicy().check_address(address, address)


@pytest.mark.parametrize("address", INTERNAL)
def test_allow_private_lifts_the_public_rule(address: str) -> None:
    EgressPolicy(allow_private=True).check_address(address, address)


async def test_every_resolved_address_is_checked() -> None:
    policy = table({"mixed.example": ["93.184.216.34", "10.0.0.5"], "ok.example": ["93.184.216.34"]})
    with pytest.raises(EgressDenied, match="private"):
        await policy.resolve("mixed.example", 443)
    assert await policy.resolve("ok.example", 443) == ["93.184.216.34"]


async def test_a_name_that_does_not_resolve_is_reported_as_such() -> None:
    with pytest.raises(ResolveFailed):
        await table({}).resolve("nowhere.example", 80)


def test_an_allowlist_restricts_hosts_and_opens_listed_cidrs() -> None:
    policy = EgressPolicy.parse("mcp.example.com, *.tools.example.com, 10.20.0.0/16")
    policy.check_address("mcp.example.com", "93.184.216.34")
    policy.check_address("a.tools.example.com", "93.184.216.34")
    policy.check_address("internal.corp", "10.20.1.2")  # inside a listed CIDR, whatever the name
    with pytest.raises(EgressDenied, match="allowlist"):
        policy.check_address("other.example.com", "93.184.216.34")
    with pytest.raises(EgressDenied, match="allowlist"):
        policy.check_address("tools.example.com", "93.184.216.34")  # the wildcard needs a subdomain
    with pytest.raises(EgressDenied, match="private"):
        policy.check_address("mcp.example.com", "10.0.0.5")  # a listed name still may not reach internal space
    with pytest.raises(EgressDenied):
        policy.check_address("10.21.0.1", "10.21.0.1")


def test_a_listed_cidr_matches_ipv4_mapped_addresses() -> None:
    EgressPolicy.parse("10.20.0.0/16").check_address("x", "::ffff:10.20.0.9")


@pytest.mark.parametrize("entry", ["not a host", "http://x", "a..b", "*."])
def test_an_unreadable_allowlist_entry_fails_at_startup(entry: str) -> None:
    with pytest.raises(ValueError, match="MONOMCP_BACKEND_ALLOW"):
        EgressPolicy.parse(entry)
