"""Sending one delivery: an HTTP POST (webhook, Slack) or an email over SMTP.

Webhook hosts are checked against the backend egress policy before each send, and the POST
goes to a checked address (no second DNS lookup to rebind), so an org admin cannot point a
channel at loopback, a private service or a metadata endpoint.
"""

from __future__ import annotations

import asyncio
import json
import smtplib
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from policy_service.notifications import payloads
from policy_service.notifications.channels import recipients
from policy_service.storage.models import NotificationChannel
from policy_service.toolkits.egress import EgressDenied, EgressPolicy, ResolveFailed


class DeliveryFailed(Exception):
    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    host: str
    port: int
    sender: str
    username: str = ""
    password: str = ""
    starttls: bool = True


@dataclass
class Senders:
    egress: EgressPolicy
    smtp: SmtpSettings
    timeout: float
    http: httpx.AsyncClient

    async def send(self, channel: NotificationChannel, secret: str, delivery_id: str, body: dict[str, Any]) -> int:
        """Delivers once; the HTTP status (0 for email), or DeliveryFailed."""
        if channel.kind == "email":
            message = payloads.email(body, self.smtp.sender, recipients(channel.target))
            try:
                await asyncio.wait_for(asyncio.to_thread(self._send_mail, message), self.timeout)
            except (OSError, smtplib.SMTPException, TimeoutError) as exc:
                raise DeliveryFailed(f"SMTP: {exc}"[:500]) from None
            return 0
        raw = json.dumps(payloads.slack_body(body) if channel.kind == "slack" else body).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "MonoMCP-Notifications/1",
            "X-MonoMCP-Event": body["type"],
            "X-MonoMCP-Delivery": delivery_id,
            payloads.SIGNATURE_HEADER: payloads.signature(secret, raw),
        }
        parts = urlsplit(channel.target)
        host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
        try:
            # One deadline for the whole delivery: a receiver that drips bytes would otherwise
            # hold one of the dispatcher's few sending slots for as long as it likes.
            async with asyncio.timeout(self.timeout):
                addresses = await self.egress.resolve(host, port)
                status = await self._post_pinned(channel.target, addresses, raw, headers)
        except (EgressDenied, ResolveFailed) as exc:
            raise DeliveryFailed(str(exc)[:500]) from None
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"{type(exc).__name__}: {exc}"[:500]) from None
        except TimeoutError:
            raise DeliveryFailed(f"the receiver did not answer within {self.timeout:g} s") from None
        if not 200 <= status < 300:
            raise DeliveryFailed(f"the receiver answered HTTP {status}", status)
        return status

    async def _post_pinned(self, target: str, addresses: list[str], raw: bytes, headers: dict[str, str]) -> int:
        """The status of a POST to the first checked address that accepts a connection, never
        to a second DNS answer (a rebinding name would otherwise reach loopback or a metadata
        endpoint). The Host header, TLS server name and certificate check still use the URL's
        host name. The answer's body is never read: a receiver could make it endless."""
        parts = urlsplit(target)
        host = parts.hostname or ""
        failure: httpx.ConnectError | None = None
        for address in addresses:
            literal = f"[{address}]" if ":" in address else address
            netloc = f"{literal}:{parts.port}" if parts.port else literal
            try:
                async with self.http.stream(
                    "POST",
                    parts._replace(netloc=netloc).geturl(),
                    content=raw,
                    headers={**headers, "Host": parts.netloc},
                    timeout=self.timeout,
                    extensions={"sni_hostname": host},
                ) as response:
                    return response.status_code
            except httpx.ConnectError as exc:
                failure = exc
        raise failure or httpx.ConnectError(f"{host} has no address to connect to")

    def _send_mail(self, message: Any) -> None:
        with smtplib.SMTP(self.smtp.host, self.smtp.port, timeout=self.timeout) as smtp:
            if self.smtp.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self.smtp.username:
                smtp.login(self.smtp.username, self.smtp.password)
            smtp.send_message(message)
