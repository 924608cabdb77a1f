"""A local identity provider for tests: RS256 and ES256 signing keys it can rotate, its
JWKS served over real HTTP on loopback, and tokens minted with any claims."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support.servers import serve_asgi

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@dataclass
class SigningKey:
    kid: str
    alg: str
    private: PrivateKey

    def jwk(self) -> dict[str, Any]:
        public = self.private.public_key()
        exported = (
            RSAAlgorithm.to_jwk(public, as_dict=True)
            if isinstance(public, rsa.RSAPublicKey)
            else ECAlgorithm.to_jwk(public, as_dict=True)
        )
        return {**exported, "kid": self.kid, "alg": self.alg, "use": "sig"}


def new_key(alg: str = "RS256") -> SigningKey:
    private: PrivateKey = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if alg == "RS256"
        else ec.generate_private_key(ec.SECP256R1())
    )
    return SigningKey(uuid.uuid4().hex[:12], alg, private)


@dataclass
class LocalIdp:
    issuer: str = ""
    keys: list[SigningKey] = field(default_factory=lambda: [new_key("RS256"), new_key("ES256")])
    jwks_requests: int = 0

    @property
    def jwks_url(self) -> str:
        return f"{self.issuer.rstrip('/')}/jwks"

    def rotate(self) -> SigningKey:
        """A new RS256 key replaces every published key."""
        self.keys = [new_key("RS256")]
        return self.keys[0]

    def token(self, audience: str | list[str], key: SigningKey | None = None, ttl: int = 300, **claims: Any) -> str:
        signer = key or self.keys[0]
        now = int(time.time())
        payload = {"iss": self.issuer, "sub": "user-1", "aud": audience, "iat": now, "exp": now + ttl, **claims}
        return jwt.encode(payload, signer.private, algorithm=signer.alg, headers={"kid": signer.kid})

    async def _jwks(self, request: Request) -> JSONResponse:
        self.jwks_requests += 1
        return JSONResponse({"keys": [k.jwk() for k in self.keys]})

    def routes(self) -> list[Route]:
        return [Route("/jwks", self._jwks)]


@asynccontextmanager
async def local_idp() -> AsyncIterator[LocalIdp]:
    idp = LocalIdp()
    async with serve_asgi(Starlette(routes=idp.routes())) as base:
        idp.issuer = base
        yield idp
