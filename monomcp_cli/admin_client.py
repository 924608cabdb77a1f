"""Runs one admin call against the policy service with MONOMCP_TOKEN, with clean errors."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer

from monomcp_cli.output import console
from policy_service.client import PolicyClient, channel_tls
from policy_service.config import Settings
from policy_service.errors import PolicyError, PolicyUnavailable

T = TypeVar("T")


def call(fn: Callable[[PolicyClient], Awaitable[T]], timeout: float = 30.0) -> T:
    """Runs `fn` with a client; a domain error is printed and exits 1. `timeout` is per RPC
    (a watch passes a long one)."""
    settings = Settings()
    token = os.environ.get("MONOMCP_TOKEN", "")
    if not token:
        console.print("[red]MONOMCP_TOKEN is not set[/red] (an org admin's API key or JWT, or the operator token)")
        raise typer.Exit(2)

    async def run() -> T:
        tls = channel_tls(settings.policy_ca, settings.policy_client_cert, settings.policy_client_key)
        async with PolicyClient(settings.policy_addr, token, timeout=timeout, tls=tls, source="cli") as client:
            return await fn(client)

    try:
        return asyncio.run(run())
    except PolicyError as exc:
        console.print(f"[red]error[/red] {exc.reason}: {exc.message}")
        if isinstance(exc, PolicyUnavailable):
            # gRPC's words name no setting; say which address was tried and how to change it.
            console.print(
                f"No policy service answers at {settings.policy_addr} (MONOMCP_POLICY_ADDR): start one"
                " (`make run`, `monomcp dev` or `monomcp serve policy`) or point MONOMCP_POLICY_ADDR at it."
            )
        raise typer.Exit(1) from None


def call_until_interrupted(fn: Callable[[PolicyClient], Awaitable[None]]) -> None:
    """For commands that run until Ctrl-C (a watch): the interrupt ends them quietly."""
    with contextlib.suppress(KeyboardInterrupt):
        call(fn, timeout=24 * 3600.0)
