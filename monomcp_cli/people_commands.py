"""People verbs (`monomcp people …`, `monomcp password change`) and `monomcp login`.

Passwords are read from a hidden prompt or the MONOMCP_PASSWORD / MONOMCP_NEW_PASSWORD
environment variables (for scripts), never from command-line arguments, which other users
of the machine can see in the process list.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import typer

from monomcp_cli.admin_client import call
from monomcp_cli.output import console, emit
from policy_service.client import PolicyClient, channel_tls
from policy_service.config import Settings
from policy_service.errors import PolicyError

JSON = typer.Option(False, "--json", help="Machine-readable output.")
ORG = typer.Option("", "--org", help="Org slug (default: the credential's org).")
COLUMNS = ["user_id", "email", "display_name", "role", "disabled_at", "has_password"]


def _secret(variable: str, prompt: str, confirm: bool = False) -> str:
    return os.environ.get(variable) or str(typer.prompt(prompt, hide_input=True, confirmation_prompt=confirm, err=True))


def register(app: typer.Typer) -> None:
    people = typer.Typer(help="People: accounts that sign in with a password.", no_args_is_help=True)
    password = typer.Typer(help="Your own password.", no_args_is_help=True)
    app.add_typer(people, name="people")
    app.add_typer(password, name="password")

    @people.command("add")
    def people_add(
        email: str,
        name: str = typer.Option("", help="Display name"),
        role: str = typer.Option("member", help="admin or member"),
        set_password: bool = typer.Option(False, "--set-password", help="Type a password instead of generating one"),
        org: str = ORG,
        as_json: bool = JSON,
    ) -> None:
        """Create a person (or add an existing one to the org); a generated password is printed once."""
        chosen = _secret("MONOMCP_NEW_PASSWORD", "Password", confirm=True) if set_password else ""
        created = call(lambda c: c.create_person(org, email, name, role, chosen))
        if as_json:
            emit(created, True, [])
            return
        emit(created.person, False, COLUMNS)
        if created.generated_password:
            console.print(f"password, shown once: {created.generated_password}")

    @people.command("list")
    def people_list(org: str = ORG, as_json: bool = JSON) -> None:
        """The org's people and their roles."""
        emit(call(lambda c: c.list_people(org)), as_json, COLUMNS)

    @people.command("disable")
    def people_disable(person: str, org: str = ORG, as_json: bool = JSON) -> None:
        """Refuse the person's sign-ins, tokens, sessions and keys (within a second)."""
        emit(call(lambda c: c.set_person_disabled(org, person, True)), as_json, COLUMNS)

    @people.command("enable")
    def people_enable(person: str, org: str = ORG, as_json: bool = JSON) -> None:
        """Let a disabled person sign in again (their keys work again)."""
        emit(call(lambda c: c.set_person_disabled(org, person, False)), as_json, COLUMNS)

    @people.command("reset-password")
    def people_reset(
        person: str,
        set_password: bool = typer.Option(False, "--set-password", help="Type a password instead of generating one"),
        org: str = ORG,
        as_json: bool = JSON,
    ) -> None:
        """Set a new password (generated unless --set-password); the person's sign-ins end."""
        chosen = _secret("MONOMCP_NEW_PASSWORD", "New password", confirm=True) if set_password else ""
        reset = call(lambda c: c.reset_password(org, person, chosen))
        if as_json:
            emit(reset, True, [])
        elif reset.generated_password:
            console.print(f"new password for {reset.person.email}, shown once: {reset.generated_password}")
        else:
            console.print(f"password of {reset.person.email} changed")

    @password.command("change")
    def password_change() -> None:
        """Change your own password (MONOMCP_TOKEN must be your JWT from `monomcp login`)."""
        current = _secret("MONOMCP_PASSWORD", "Current password")
        new = _secret("MONOMCP_NEW_PASSWORD", "New password", confirm=True)
        call(lambda c: c.change_password(current, new))
        console.print("password changed; your other sign-ins were ended")

    @app.command("login")
    def login(
        email: str = typer.Option(..., help="Your email"),
        org: str = typer.Option(..., help="Org slug"),
        as_json: bool = JSON,
    ) -> None:
        """Sign in with your password; prints an access token for MONOMCP_TOKEN."""
        secret = _secret("MONOMCP_PASSWORD", "Password")
        settings = Settings()

        async def run() -> Any:
            tls = channel_tls(settings.policy_ca, settings.policy_client_cert, settings.policy_client_key)
            async with PolicyClient(settings.policy_addr, timeout=30.0, tls=tls, source="cli") as client:
                return await client.login(email, secret, org, user_agent="monomcp-cli")

        try:
            tokens = asyncio.run(run())
        except PolicyError as exc:
            console.print(f"[red]error[/red] {exc.reason}: {exc.message}")
            raise typer.Exit(1) from None
        if as_json:
            emit(tokens, True, [])
        else:
            print(tokens.access_token)
