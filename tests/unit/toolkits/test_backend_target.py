"""What an org admin may store as a toolkit's backend URL and headers."""

from __future__ import annotations

import pytest

from policy_service.errors import InvalidArgument
from policy_service.toolkits.backend_target import check_backend_headers, check_backend_url, header_problem
from policy_service.toolkits.egress import EgressPolicy, ResolveFailed

FRAMING = ["Host", "content-length", "Transfer-Encoding", "Connection", "Keep-Alive", "TE", "Upgrade", "Trailer"]


@pytest.mark.parametrize("name", [*FRAMING, "Proxy-Connection", "Expect", "Mcp-Session-Id"])
def test_framing_and_hop_by_hop_headers_are_refused(name: str) -> None:
    with pytest.raises(InvalidArgument, match="set by the gateway"):
        check_backend_headers({name: "x"})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("X-Token", "a\r\nHost: evil"),
        ("X-Token", "a\nb"),
        ("X-Token", "a\x00b"),
        ("X-To\x00ken", "a"),
        ("X Token", "a"),
        ("X-Token\r\nHost", "a"),
        ("", "a"),
        ("X-Token", "ünïcødé ✓"),
    ],
)
def test_header_names_and_values_that_could_reframe_a_request_are_refused(name: str, value: str) -> None:
    assert header_problem(name, value) is not None
    with pytest.raises(InvalidArgument):
        check_backend_headers({name: value})


def test_ordinary_credentials_are_accepted() -> None:
    check_backend_headers({"Authorization": "Bearer abc", "X-Api-Key": "k\tv", "Accept-Language": "en"})


async def _unresolvable(host: str, port: int) -> list[str]:
    raise ResolveFailed(host)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/mcp", "BAD_URL"),
        ("http:///mcp", "BAD_URL"),
        ("http://example.com:99999/mcp", "BAD_URL"),
        ("http://user:pw@93.184.216.34/mcp", "BAD_URL"),
        ("http://127.0.0.1:8080/mcp", "BACKEND_NOT_ALLOWED"),
        ("http://[::1]/mcp", "BACKEND_NOT_ALLOWED"),
        ("http://169.254.169.254/latest/meta-data/", "BACKEND_NOT_ALLOWED"),
        ("https://10.0.0.5/mcp", "BACKEND_NOT_ALLOWED"),
    ],
)
async def test_bad_or_internal_backend_urls_are_refused(url: str, reason: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await check_backend_url(url, EgressPolicy(resolver=_unresolvable))
    assert caught.value.reason == reason


async def test_public_and_not_yet_resolvable_urls_are_accepted() -> None:
    policy = EgressPolicy(resolver=_unresolvable)
    await check_backend_url("https://93.184.216.34/mcp", policy)
    await check_backend_url("https://not-deployed-yet.example/mcp", policy)  # checked again on connect
