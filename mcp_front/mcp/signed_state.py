"""Integrity-protected tokens the front hands to clients and must get back unchanged:
the 2026-07-28 `requestState` and task ids. HMAC-SHA256 with a key every replica shares,
so any replica accepts what another issued; never trusted before verification."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from typing import Any


class InvalidState(Exception):
    pass


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class StateSigner:
    def __init__(self, key: str) -> None:
        # Without a configured key, tokens are valid on this replica only.
        self._key = (key or secrets.token_hex(32)).encode()

    def sign(self, kind: str, payload: dict[str, Any], ttl_seconds: float) -> str:
        body = _b64(
            json.dumps({**payload, "k": kind, "x": int(time.time() + ttl_seconds)}, separators=(",", ":")).encode()
        )
        return f"{body}.{_b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest())}"

    def mac(self, message: bytes) -> str:
        return _b64(hmac.new(self._key, message, hashlib.sha256).digest())

    def verify(self, kind: str, token: str) -> dict[str, Any]:
        if not isinstance(token, str) or token.count(".") != 1 or len(token) > 65_536:
            raise InvalidState("malformed token")
        body, mac = token.split(".")
        expected = _b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest())
        if not hmac.compare_digest(mac, expected):
            raise InvalidState("token signature mismatch")
        try:
            payload = json.loads(_unb64(body))
        except ValueError as exc:
            raise InvalidState("malformed token") from exc
        if not isinstance(payload, dict) or payload.get("k") != kind:
            raise InvalidState("wrong token kind")
        if int(payload.get("x", 0)) < time.time():
            raise InvalidState("token expired")
        return payload


class BoundIds:
    """Opaque ids that name one record and are valid only in the context they were bound to.

    The id is `<subject>.<expiry>.<mac>`: it carries nothing but the subject (an approval
    id, which its holder already knows); the MAC covers the binding (org, toolkit,
    principal), so the same id presented anywhere else fails exactly like an unknown one.
    """

    def __init__(self, signer: StateSigner, kind: str) -> None:
        self._signer = signer
        self._kind = kind

    def _mac(self, subject: str, expiry: int, binding: tuple[str, ...]) -> str:
        return self._signer.mac("\x1f".join((self._kind, subject, str(expiry), *binding)).encode())

    def issue(self, subject: str, binding: tuple[str, ...], ttl_seconds: float) -> str:
        return self.issue_until(subject, binding, int(time.time() + ttl_seconds))

    def issue_until(self, subject: str, binding: tuple[str, ...], expiry: int) -> str:
        """The id valid until `expiry` (epoch seconds): the same inputs give the same id."""
        if "." in subject:
            raise ValueError("subject must not contain '.'")
        return f"{subject}.{expiry}.{self._mac(subject, expiry, binding)}"

    def subject(self, token: str, binding: tuple[str, ...]) -> str:
        """The subject of a valid, unexpired id bound to `binding`; else InvalidState."""
        if not isinstance(token, str) or len(token) > 256 or token.count(".") != 2:
            raise InvalidState("malformed id")
        subject, expiry_text, mac = token.split(".")
        if not expiry_text.isdigit():
            raise InvalidState("malformed id")
        expiry = int(expiry_text)
        if not hmac.compare_digest(mac, self._mac(subject, expiry, binding)):
            raise InvalidState("id signature mismatch")
        if expiry < time.time():
            raise InvalidState("id expired")
        return subject
