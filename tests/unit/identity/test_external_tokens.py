"""External IdP tokens verified against a JWKS served over real HTTP on loopback: the
algorithms, claims and key rotation that decide whether a provider's token is accepted."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from policy_service.errors import Unauthenticated
from policy_service.identity.audiences import AudiencePolicy
from policy_service.identity.external_tokens import ExternalIdpSettings, ExternalTokens, is_external, parse_role_map
from policy_service.identity.jwks import JwksCache
from tests.support.idp import LocalIdp, local_idp, new_key

AUD = "monomcp-gateway"


@pytest.fixture
async def idp() -> AsyncIterator[LocalIdp]:
    async with local_idp() as provider:
        yield provider


def _verifier(idp: LocalIdp, min_refresh: float = 0.0, **overrides: object) -> ExternalTokens:
    settings = ExternalIdpSettings(issuer=idp.issuer, jwks_url=idp.jwks_url, audience=AUD, **overrides)  # type: ignore[arg-type]
    return ExternalTokens(settings, JwksCache(idp.jwks_url, 300.0, min_refresh))


def _hs256(header: dict[str, object], payload: dict[str, object], secret: bytes) -> str:
    """Signed by hand: PyJWT rightly refuses to use a PEM key as an HMAC secret."""

    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    signing_input = f"{part(header)}.{part(payload)}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


async def _reason(verifier: ExternalTokens, token: str) -> str:
    with pytest.raises(Unauthenticated) as refused:
        await verifier.verify(token)
    return refused.value.reason


async def test_rs256_and_es256_tokens_map_to_org_and_role(idp: LocalIdp) -> None:
    verifier = _verifier(idp)
    for key in idp.keys:
        claims = await verifier.verify(idp.token(AUD, key, org="acme", role="admin", email="ada@acme.example"))
        assert (claims.org_slug, claims.role_candidates, claims.display) == ("acme", ("admin",), "ada@acme.example")
        assert claims.audiences == (AUD,) and claims.principal_id.startswith("ext_")
    assert await AudiencePolicy(AUD).accepts((AUD, "other"), "acme")
    assert not await AudiencePolicy(AUD).accepts(("someone-else",), "acme")


async def test_role_map_and_default_role(idp: LocalIdp) -> None:
    mapped = _verifier(idp, role_claim="groups", role_map=parse_role_map("mcp-admins=admin,staff=member"))
    claims = await mapped.verify(idp.token(AUD, org="acme", groups=["staff", "mcp-admins"]))
    assert claims.role_candidates == ("admin", "member")
    fallback = _verifier(idp, fixed_org="acme", default_role="member")
    claims = await fallback.verify(idp.token(AUD, org="globex", role="BAD ROLE\x00"))
    assert (claims.org_slug, claims.role_candidates) == ("acme", ("member",))
    with pytest.raises(ValueError):
        parse_role_map("admins")


async def test_expired_wrong_issuer_missing_claims_and_bad_kid_are_refused(idp: LocalIdp) -> None:
    verifier = _verifier(idp)
    assert await _reason(verifier, idp.token(AUD, ttl=-120, org="acme")) == "TOKEN_EXPIRED"
    assert await _reason(verifier, idp.token(AUD, org="acme", iss="https://evil.example")) == "TOKEN_ISSUER"
    assert await _reason(verifier, idp.token(AUD, role="admin")) == "TOKEN_CLAIMS"  # no org
    assert await _reason(verifier, idp.token(AUD, org="Acme; DROP")) == "TOKEN_CLAIMS"
    no_exp = jwt.encode(
        {"iss": idp.issuer, "sub": "u", "aud": AUD, "org": "acme"},
        idp.keys[0].private,
        algorithm="RS256",
        headers={"kid": idp.keys[0].kid},
    )
    assert await _reason(verifier, no_exp) == "TOKEN_INVALID"
    stranger = new_key("RS256")  # signed by a key the provider never published
    assert await _reason(verifier, idp.token(AUD, stranger, org="acme")) == "TOKEN_KEY"
    forged = idp.token(AUD, org="acme")
    head, body, _ = forged.split(".")
    assert await _reason(verifier, f"{head}.{body}.{idp.token(AUD, org='acme', role='x').split('.')[2]}") == (
        "TOKEN_INVALID"
    )


async def test_wrong_algorithms_are_refused(idp: LocalIdp) -> None:
    verifier = _verifier(idp)
    rsa_key = idp.keys[0]
    rs384 = jwt.encode(
        {"iss": idp.issuer, "sub": "u", "aud": AUD, "exp": int(time.time()) + 60, "org": "acme"},
        rsa_key.private,
        algorithm="RS384",
        headers={"kid": rsa_key.kid},
    )
    assert not is_external(rs384) and await _reason(verifier, rs384) == "TOKEN_ALGORITHM"
    # The classic confusion: HS256 keyed with the provider's public key is not a provider token.
    public_pem = rsa_key.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    confused = _hs256({"alg": "HS256", "kid": rsa_key.kid}, {"sub": "u", "org": "acme", "aud": AUD}, public_pem)
    assert not is_external(confused)
    assert await _reason(verifier, confused) == "TOKEN_ALGORITHM"
    only_rs = _verifier(idp, algorithms=("RS256",))
    assert await _reason(only_rs, idp.token(AUD, idp.keys[1], org="acme")) == "TOKEN_ALGORITHM"


async def test_rotation_refetches_on_an_unknown_kid_and_old_keys_stop_working(idp: LocalIdp) -> None:
    verifier = _verifier(idp)
    old = idp.keys[0]
    await verifier.verify(idp.token(AUD, old, org="acme"))
    fetches = idp.jwks_requests
    await verifier.verify(idp.token(AUD, old, org="acme"))
    assert idp.jwks_requests == fetches  # cached
    new = idp.rotate()
    await verifier.verify(idp.token(AUD, new, org="acme"))
    assert idp.jwks_requests == fetches + 1
    assert await _reason(verifier, idp.token(AUD, old, org="acme")) == "TOKEN_KEY"


async def test_invented_kids_do_not_flood_the_provider(idp: LocalIdp) -> None:
    verifier = _verifier(idp, min_refresh=3600.0)
    await verifier.verify(idp.token(AUD, org="acme"))
    fetches = idp.jwks_requests
    for _ in range(20):
        assert await _reason(verifier, idp.token(AUD, new_key("ES256"), org="acme")) == "TOKEN_KEY"
    assert idp.jwks_requests == fetches
