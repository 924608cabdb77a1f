"""Access tokens issued at sign-in carry the documented claims and verify only where they
should; refresh tokens parse only in their own shape."""

from __future__ import annotations

import jwt
import pytest

from policy_service.errors import Unauthenticated
from policy_service.identity import jwt_tokens, refresh_tokens

SECRET = "unit-test-secret-" + "s" * 40


def test_issued_tokens_carry_every_claim_and_round_trip() -> None:
    settings = jwt_tokens.JwtSettings(SECRET, "https://issuer.example", "monomcp-api")
    issued = jwt_tokens.issue("u1", "acme", "admin", "family-1", settings, 900)
    claims = jwt.decode(issued.token, SECRET, algorithms=["HS256"], audience="monomcp-api")
    assert set(claims) == {"sub", "org", "role", "iat", "exp", "iss", "aud", "jti", "sid"}
    assert claims["exp"] - claims["iat"] == 900 and claims["jti"] == issued.jti
    decoded = jwt_tokens.decode(issued.token, settings)
    assert (decoded.subject, decoded.org_slug, decoded.session_id) == ("u1", "acme", "family-1")


@pytest.mark.parametrize(
    "verifier",
    [
        jwt_tokens.JwtSettings(SECRET, "https://issuer.example", "another-audience"),
        jwt_tokens.JwtSettings(SECRET, "https://another-issuer.example", "monomcp-api"),
        jwt_tokens.JwtSettings("another secret " * 4, "https://issuer.example", "monomcp-api"),
    ],
)
def test_wrong_audience_issuer_or_secret_is_refused(verifier: jwt_tokens.JwtSettings) -> None:
    settings = jwt_tokens.JwtSettings(SECRET, "https://issuer.example", "monomcp-api")
    token = jwt_tokens.issue("u1", "acme", "admin", "family-1", settings, 900).token
    with pytest.raises(Unauthenticated):
        jwt_tokens.decode(token, verifier)


def test_no_secret_means_no_sign_in() -> None:
    with pytest.raises(Unauthenticated):
        jwt_tokens.issue("u1", "acme", "admin", "f", jwt_tokens.JwtSettings(""), 900)


def test_refresh_token_shape() -> None:
    good = "mmcr_" + "A" * 16 + "_" + "b" * 32
    assert refresh_tokens.parse_id(good) == "A" * 16
    for bad in (good[:-1], good.replace("mmcr_", "mmcs_"), good.replace("_b", "-b"), "mmcr_" + "!" * 49):
        assert refresh_tokens.parse_id(bad) is None
