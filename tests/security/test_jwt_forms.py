"""Attack matrix: JWT forms. Access tokens are HS256 with the shared secret only, `exp`
required, `iss`/`aud` checked (configured in this stack), and name a member of their org;
every other form is refused with a 401 before anything runs, and audited."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.attack_stack import JWT_AUDIENCE, JWT_ISSUER, Stack, new_request_id, tools_call

pytestmark = pytest.mark.asyncio(loop_scope="module")

ALICE = "alice@acme.test"  # acme admin
BOB = "bob@acme.test"  # acme member
GINA = "gina@globex.test"  # globex admin


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(stack: Stack, **changes: Any) -> dict[str, Any]:
    """Alice's valid claims with `changes` applied (a value of None removes the claim)."""
    now = int(time.time())
    claims = {"sub": ALICE, "org": "acme", "iat": now, "exp": now + 600, "iss": JWT_ISSUER, "aud": JWT_AUDIENCE}
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _signed_by_hand(header: dict[str, Any], claims: dict[str, Any], key: bytes | None) -> str:
    signing_input = _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode())
    signature = _b64(hmac.new(key, signing_input.encode(), hashlib.sha256).digest()) if key is not None else ""
    return signing_input + "." + signature


@cache
def _rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _rsa_public_pem() -> bytes:
    return (
        _rsa_key()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def _hs256(stack: Stack, **changes: Any) -> str:
    return jwt.encode(_claims(stack, **changes), stack.settings.jwt_secret, algorithm="HS256")


def _payload_swapped(stack: Stack) -> str:
    """Bob's genuine token with its payload replaced by Alice's (signature kept)."""
    header, _, signature = _hs256(stack, sub=BOB).split(".")
    return f"{header}.{_b64(json.dumps(_claims(stack)).encode())}.{signature}"


@dataclass(frozen=True)
class JwtCase:
    id: str
    token: Callable[[Stack], str]
    reason: str


JWT_CASES = [
    JwtCase("alg-none", lambda s: _signed_by_hand({"alg": "none", "typ": "JWT"}, _claims(s), None), "algorithm"),
    JwtCase("alg-None", lambda s: _signed_by_hand({"alg": "None", "typ": "JWT"}, _claims(s), None), "algorithm"),
    JwtCase(
        "alg-none-with-signature",
        lambda s: _signed_by_hand({"alg": "none"}, _claims(s), s.settings.jwt_secret.encode()),
        "algorithm",
    ),
    JwtCase(
        "hs256-wrong-secret",
        lambda s: jwt.encode(_claims(s), "not-the-secret-" + "y" * 40, "HS256"),
        "InvalidSignatureError",
    ),
    JwtCase("hs512-right-secret", lambda s: jwt.encode(_claims(s), s.settings.jwt_secret, "HS512"), "algorithm"),
    JwtCase("rs256-own-key", lambda s: jwt.encode(_claims(s), _rsa_key(), "RS256"), "algorithm"),
    JwtCase(
        "hs256-keyed-with-rsa-public-key",
        lambda s: _signed_by_hand({"alg": "HS256", "typ": "JWT"}, _claims(s), _rsa_public_pem()),
        "InvalidSignatureError",
    ),
    JwtCase("payload-swapped", _payload_swapped, "InvalidSignatureError"),
    JwtCase("signature-stripped", lambda s: _hs256(s).rsplit(".", 1)[0] + ".", "InvalidSignatureError"),
    JwtCase("missing-exp", lambda s: _hs256(s, exp=None), "MissingRequiredClaimError"),
    JwtCase("exp-not-a-number", lambda s: _hs256(s, exp="tomorrow"), "DecodeError"),
    JwtCase("expired", lambda s: _hs256(s, exp=int(time.time()) - 120), "token expired"),
    JwtCase("nbf-in-future", lambda s: _hs256(s, nbf=int(time.time()) + 3600), "ImmatureSignatureError"),
    JwtCase("wrong-issuer", lambda s: _hs256(s, iss="https://evil.example"), "InvalidIssuerError"),
    JwtCase("missing-issuer", lambda s: _hs256(s, iss=None), "MissingRequiredClaimError"),
    JwtCase("wrong-audience", lambda s: _hs256(s, aud="another-service"), "InvalidAudienceError"),
    JwtCase("missing-audience", lambda s: _hs256(s, aud=None), "MissingRequiredClaimError"),
    JwtCase("missing-sub", lambda s: _hs256(s, sub=None), "MissingRequiredClaimError"),
    JwtCase("missing-org", lambda s: _hs256(s, org=None), "lacks the `org`"),
    JwtCase("non-member-subject", lambda s: _hs256(s, sub="mallory@acme.test"), "not a member"),
    JwtCase("member-of-another-org", lambda s: _hs256(s, sub=GINA), "not a member"),
    JwtCase("own-org-claim-swapped", lambda s: _hs256(s, sub=BOB, org="globex"), "not a member"),
    JwtCase("unknown-org-claim", lambda s: _hs256(s, org="nope"), "not a member"),
    JwtCase("four-segments", lambda s: _hs256(s) + ".AAAA", "unrecognised credential"),
]


@pytest.mark.parametrize("case", JWT_CASES, ids=lambda c: c.id)
async def test_forged_or_unfit_jwt_is_refused_and_audited(stack: Stack, case: JwtCase) -> None:
    token = case.token(stack)
    request_id = new_request_id(case.id)
    before = stack.executions()
    response = await stack.post("/acme/tools/mcp", token, tools_call("echo", {"text": case.id}), request_id=request_id)
    assert response.status_code == 401, response.text
    error = response.json()["error"]
    assert error["code"] == -32001 and case.reason in error["message"], error
    assert stack.executions() == before
    rows = await stack.audit_rows(request_id)
    assert [r["status"] for r in rows] == ["unauthenticated"] and not rows[0]["actor_id"]
    assert token not in json.dumps(rows, default=str)


@pytest.mark.parametrize(
    ("subject", "org", "path"),
    [(ALICE, "acme", "/globex/gx/mcp"), (GINA, "globex", "/acme/tools/mcp"), (GINA, "globex", "/acme/other/mcp")],
    ids=["acme-token-on-globex-private", "globex-token-on-acme-private", "globex-token-on-acme-other"],
)
async def test_a_token_for_one_org_sees_no_private_toolkit_of_another(
    stack: Stack, subject: str, org: str, path: str
) -> None:
    request_id = new_request_id("jwt-cross-org")
    before = stack.executions()
    body = tools_call("echo", {"text": "x"})
    probe = await stack.post(path, stack.jwt(subject, org), body, request_id=request_id)
    unknown = await stack.post("/acme/no-such-toolkit/mcp", stack.jwt(subject, org), body)
    assert (probe.status_code, probe.content) == (unknown.status_code, unknown.content)
    assert probe.status_code == 404
    assert stack.executions() == before
    assert [r["status"] for r in await stack.audit_rows(request_id)] == ["not_found"]


async def test_control_a_valid_jwt_of_a_member_runs(stack: Stack) -> None:
    request_id = new_request_id("jwt-control")
    before = stack.executions()
    response = await stack.post(
        "/acme/tools/mcp", stack.jwt(BOB, "acme"), tools_call("echo", {"text": "ok"}), request_id=request_id
    )
    assert response.status_code == 200 and response.json()["result"]["content"][0]["text"] == "ok"
    assert stack.executions() == before + 1
    rows = await stack.audit_rows(request_id)
    assert [r["status"] for r in rows] == ["started", "ok"] and rows[0]["actor_display"] == BOB
