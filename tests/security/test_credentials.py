"""Attack matrix: bearer credentials at the front. Every forged, malformed, revoked, expired
or misplaced credential is refused before anything runs, with a clear 401 (or the 404 an
unknown toolkit gets), and the refusal is in the audit log without the credential in it."""

from __future__ import annotations

import json
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest

from tests.support.attack_stack import Stack, new_request_id, tools_call

pytestmark = pytest.mark.asyncio(loop_scope="module")

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _with_checksum(body: str) -> str:
    """`body` + the CRC32 base62 checksum API keys end with: well-formed, yet never issued."""
    number, digits = zlib.crc32(body.encode()), []
    for _ in range(6):
        number, rem = divmod(number, 62)
        digits.append(_BASE62[rem])
    return body + "".join(reversed(digits))


def _flip(text: str, index: int) -> str:
    return text[:index] + ("A" if text[index] != "A" else "B") + text[index + 1 :]


async def _revoked_key(stack: Stack) -> str:
    created = await stack.operator.create_api_key("acme", "to be revoked", "admin")
    await stack.operator.revoke_api_key("acme", created.key.id)
    return created.secret


async def _expired_key(stack: Stack) -> str:
    import asyncio

    created = await stack.operator.create_api_key("acme", "short-lived", "admin", ttl_seconds=1)
    await asyncio.sleep(1.2)
    return created.secret


async def _console_session(stack: Stack) -> str:
    async with stack.client("acme:admin") as admin:
        return (await admin.create_console_session()).token


def _key(who: str) -> Callable[[Stack], str]:
    return lambda stack: stack.keys[who]


@dataclass(frozen=True)
class BadCredential:
    id: str
    authorization: Callable[[Stack], Awaitable[str | None]]
    reason: str  # what the 401 says


def _header(build: Callable[[Stack], str], scheme: str = "Bearer ") -> Callable[[Stack], Awaitable[str]]:
    async def make(stack: Stack) -> str:
        return scheme + build(stack)

    return make


def _async(build: Callable[[Stack], Awaitable[str]]) -> Callable[[Stack], Awaitable[str]]:
    async def make(stack: Stack) -> str:
        return "Bearer " + await build(stack)

    return make


async def _none(stack: Stack) -> None:
    return None


MEMBER = _key("acme:member")
BAD_CREDENTIALS = [
    BadCredential("missing-header", _none, "missing bearer token"),
    BadCredential("empty-bearer", _header(lambda s: ""), "missing bearer token"),
    BadCredential("whitespace-bearer", _header(lambda s: "   \t "), "missing bearer token"),
    BadCredential("scheme-only", _header(lambda s: "", scheme="Bearer"), "missing bearer token"),
    BadCredential("basic-scheme-with-valid-key", _header(MEMBER, scheme="Basic "), "missing bearer token"),
    BadCredential("token-scheme-with-valid-key", _header(MEMBER, scheme="Token "), "missing bearer token"),
    BadCredential("key-without-scheme", _header(MEMBER, scheme=""), "missing bearer token"),
    BadCredential("bad-checksum", _header(lambda s: _flip(s.keys["acme:member"], -1)), "malformed API key"),
    BadCredential("secret-tampered", _header(lambda s: _flip(s.keys["acme:member"], 30)), "malformed API key"),
    BadCredential("one-char-short", _header(lambda s: s.keys["acme:member"][:-1]), "malformed API key"),
    BadCredential("one-char-long", _header(lambda s: s.keys["acme:member"] + "A"), "malformed API key"),
    BadCredential("prefix-only", _header(lambda s: "mmcp_"), "malformed API key"),
    BadCredential("non-base62-dash", _header(lambda s: "mmcp_" + "-" * 54), "malformed API key"),
    BadCredential("non-base62-bang", _header(lambda s: "mmcp_" + "!" * 54), "malformed bearer token"),
    BadCredential("non-ascii", _header(lambda s: "mmcp_" + "é" * 54), "malformed bearer token"),
    BadCredential("oversized", _header(lambda s: "mmcp_" + "A" * 5000), "malformed bearer token"),
    BadCredential("forged-well-formed", _header(lambda s: _with_checksum("mmcp_" + "A" * 48)), "invalid API key"),
    BadCredential(
        "real-id-wrong-secret",
        _header(lambda s: _with_checksum(s.keys["acme:member"][:21] + "Z" * 32)),
        "invalid API key",
    ),
    BadCredential("revoked-key", _async(_revoked_key), "API key revoked"),
    BadCredential("expired-key", _async(_expired_key), "API key expired"),
    BadCredential("service-credential", _header(lambda s: s.service_token), "unrecognised credential"),
    BadCredential("console-session", _async(_console_session), "console session is accepted only by the admin API"),
    BadCredential("operator-token-tampered", _header(lambda s: s.settings.operator_token + "x"), "unrecognised"),
]


@pytest.mark.parametrize("case", BAD_CREDENTIALS, ids=lambda c: c.id)
async def test_bad_credential_is_refused_unseen_and_audited(stack: Stack, case: BadCredential) -> None:
    authorization = await case.authorization(stack)
    request_id = new_request_id(case.id)
    before = stack.executions()
    response = await stack.post(
        "/acme/tools/mcp",
        None,
        tools_call("echo", {"text": case.id}),
        authorization=authorization,
        request_id=request_id,
    )
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith('Bearer realm="monomcp"')
    error = response.json()["error"]
    assert error["code"] == -32001 and case.reason in error["message"], error
    assert stack.executions() == before
    rows = await stack.audit_rows(request_id)
    assert [(r["status"], r["toolkit_org_slug"], r["toolkit_slug"]) for r in rows] == [
        ("unauthenticated", "acme", "tools")
    ]
    assert not rows[0]["actor_id"]
    token = (authorization or "").partition(" ")[2].strip()
    if len(token) >= 16:  # a credential is never written to the audit log
        assert token not in json.dumps(rows, default=str)


@dataclass(frozen=True)
class Outsider:
    id: str
    bearer: Callable[[Stack], str]
    path: str


OUTSIDERS = [
    Outsider("globex-member-on-acme-private", _key("globex:member"), "/acme/tools/mcp"),
    Outsider("globex-admin-on-acme-private", _key("globex:admin"), "/acme/other/mcp"),
    Outsider("globex-jwt-on-acme-private", lambda s: s.jwt("gina@globex.test", "globex"), "/acme/tools/mcp"),
    Outsider("acme-member-on-globex-private", _key("acme:member"), "/globex/gx/mcp"),
    Outsider("unknown-toolkit", _key("globex:member"), "/acme/nope/mcp"),
    Outsider("unknown-org", _key("globex:member"), "/nope/tools/mcp"),
]


@pytest.mark.parametrize("case", OUTSIDERS, ids=lambda c: c.id)
async def test_another_orgs_private_toolkit_is_the_same_404_as_an_unknown_one(stack: Stack, case: Outsider) -> None:
    request_id = new_request_id(case.id)
    before = stack.executions()
    body = tools_call("echo", {"text": case.id})
    probe = await stack.post(case.path, case.bearer(stack), body, request_id=request_id)
    unknown = await stack.post("/acme/does-not-exist/mcp", case.bearer(stack), body)
    assert (
        (probe.status_code, probe.content, probe.headers["content-type"])
        == (
            unknown.status_code,
            unknown.content,
            unknown.headers["content-type"],
        )
        == (404, b'{"error":"not_found","message":"No such toolkit."}', "application/json")
    )
    assert stack.executions() == before
    assert [r["status"] for r in await stack.audit_rows(request_id)] == ["not_found"]


async def test_control_a_public_toolkit_serves_another_orgs_valid_key(stack: Stack) -> None:
    """The harness refuses for the right reason: the same request with a good key runs."""
    request_id = new_request_id("control")
    before = stack.executions()
    response = await stack.post(
        "/acme/shared/mcp", stack.keys["globex:member"], tools_call("echo", {"text": "hi"}), request_id=request_id
    )
    assert response.status_code == 200 and response.json()["result"]["content"][0]["text"] == "hi"
    assert stack.executions() == before + 1
    assert [r["status"] for r in await stack.audit_rows(request_id)] == ["started", "ok"]


@pytest.mark.parametrize(
    ("tool", "arguments", "audit_status", "message"),
    [
        ("transfer", {"amount": 1, "to": "operator"}, "denied", "operator token belongs to no org"),
        ("wipe", {"target": "operator"}, "blocked", "blocked"),
    ],
    ids=["needs-approval-is-denied", "blocked-stays-blocked"],
)
async def test_operator_token_on_mcp_never_opens_an_approval_or_runs_a_blocked_tool(
    stack: Stack, tool: str, arguments: dict[str, object], audit_status: str, message: str
) -> None:
    request_id = new_request_id(f"operator-{tool}")
    approvals_before = len((await stack.operator.list_approvals("acme", page_size=500)).approvals)
    before = stack.executions()
    response = await stack.post(
        "/acme/shared/mcp", stack.settings.operator_token, tools_call(tool, arguments), request_id=request_id
    )
    result = response.json()["result"]
    assert response.status_code == 200 and result["isError"] and message in result["content"][0]["text"]
    assert stack.executions() == before
    assert [r["status"] for r in await stack.audit_rows(request_id)] == [audit_status]
    assert len((await stack.operator.list_approvals("acme", page_size=500)).approvals) == approvals_before
