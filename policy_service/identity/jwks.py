"""An identity provider's signing keys (JWKS), fetched over HTTP and cached.

Keys are refetched when the cache is older than `max_age`, and when a token names a key id
the cache does not hold (the provider rotated) — at most once per `min_refresh` seconds,
so tokens with invented key ids cannot turn the policy service into a flood of requests to
the provider. A failed fetch keeps the keys already known."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx
import jwt

from policy_service.errors import Unauthenticated

log = logging.getLogger(__name__)

_MAX_BYTES = 256 * 1024


class JwksCache:
    def __init__(self, url: str, max_age: float = 300.0, min_refresh: float = 10.0, timeout: float = 5.0) -> None:
        self._url = url
        self._max_age = max_age
        self._min_refresh = min_refresh
        self._timeout = timeout
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = -float("inf")
        self._lock = asyncio.Lock()

    async def key(self, kid: str) -> jwt.PyJWK:
        """The key `kid` names; UNAUTHENTICATED when the provider does not publish it."""
        if time.monotonic() - self._fetched_at > self._max_age:
            await self._refresh(self._fetched_at)
        found = self._keys.get(kid)
        if found is None and time.monotonic() - self._fetched_at >= self._min_refresh:
            await self._refresh(self._fetched_at)
            found = self._keys.get(kid)
        if found is None:
            raise Unauthenticated("the token's signing key is not published by the identity provider", "TOKEN_KEY")
        return found

    async def _refresh(self, seen: float) -> None:
        async with self._lock:
            if self._fetched_at != seen:
                return  # another request refreshed while this one waited
            try:
                self._keys = await self._fetch()
            except (httpx.HTTPError, ValueError, jwt.PyJWKError) as exc:
                log.warning("JWKS fetch from %s failed: %s", self._url, exc)
            self._fetched_at = time.monotonic()

    async def _fetch(self) -> dict[str, jwt.PyJWK]:
        async with (
            httpx.AsyncClient(timeout=self._timeout, follow_redirects=False, trust_env=False) as client,
            client.stream("GET", self._url, headers={"Accept": "application/json"}) as response,
        ):
            response.raise_for_status()
            body = b""
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > _MAX_BYTES:
                    raise ValueError("JWKS document too large")
        document: Any = httpx.Response(200, content=body).json()
        keys = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(keys, list):
            raise ValueError("JWKS document has no `keys` list")
        usable: dict[str, jwt.PyJWK] = {}
        for entry in keys:
            if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str) or entry.get("use") == "enc":
                continue
            try:
                usable[entry["kid"]] = jwt.PyJWK(entry)
            except jwt.PyJWKError:
                continue  # a key type or curve we do not use
        return usable
