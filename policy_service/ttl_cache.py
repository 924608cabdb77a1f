"""The plain TTL cache is the versioned cache without a version source (ADR 0024): one
implementation, so expiry, bounds and single-flight loading behave the same everywhere.
Entries live `ttl` seconds; `ttl <= 0` turns caching off."""

from __future__ import annotations

from policy_service.versioned_cache import VersionedCache as TTLCache

__all__ = ["TTLCache"]
