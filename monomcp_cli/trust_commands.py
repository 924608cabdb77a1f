"""Service identities and the audit digest chain kept outside the database (operator token)."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import typer

from monomcp_cli.admin_client import call
from monomcp_cli.output import console, emit
from policy_service.audit import chain, digest_wire

JSON = typer.Option(False, "--json", help="Machine-readable output.")
SERVICE_COLUMNS = ["id", "name", "scopes", "created_at", "revoked_at"]


def read_export(path: Path, option: str) -> list[chain.Link]:
    """A digest export (`audit digests export`: one JSON object a line); a file that is missing
    or is not one is a usage error naming it (both were tracebacks)."""
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {path}: {exc.strerror}", param_hint=option) from None
    links = []
    for number, line in enumerate(lines, 1):
        if line.strip():
            try:
                links.append(chain.Link.from_json(json.loads(line)))
            except (ValueError, KeyError, TypeError) as exc:
                said = f"{path} line {number} is not a digest from `monomcp audit digests export` ({exc})"
                raise typer.BadParameter(said, param_hint=option) from None
    return links


def register(app: typer.Typer, audit: typer.Typer) -> None:
    services = typer.Typer(help="Service identities for the policy RPCs (operator).", no_args_is_help=True)
    digests = typer.Typer(help="The audit digest chain, kept outside the database.", no_args_is_help=True)
    app.add_typer(services, name="services")
    audit.add_typer(digests, name="digests")

    @services.command("create")
    def services_create(
        name: str,
        scope: list[str] = typer.Option(["front"], "--scope", help="front | read | execute | record (repeatable)"),
        as_json: bool = JSON,
    ) -> None:
        """Issue a service credential; the secret is printed once."""
        created = call(lambda c: c.create_service_identity(name, scope))
        if as_json:
            emit(created, True, [])
            return
        emit(created.identity, False, SERVICE_COLUMNS)
        console.print("[bold]Credential[/bold] (shown once; set it as MONOMCP_SERVICE_TOKEN on the front):")
        print(created.secret)

    @services.command("list")
    def services_list(as_json: bool = JSON) -> None:
        """Service identities and their scopes (never the secret)."""
        emit(call(lambda c: c.list_service_identities()), as_json, SERVICE_COLUMNS)

    @services.command("revoke")
    def services_revoke(id_or_name: str, as_json: bool = JSON) -> None:
        """Revoke at once (every policy replica refuses it within the cache period)."""
        emit(call(lambda c: c.revoke_service_identity(id_or_name)), as_json, SERVICE_COLUMNS)

    @digests.command("export")
    def digests_export() -> None:
        """Every digest as JSON Lines, oldest first: keep the output somewhere the database's
        writers cannot reach (object storage with retention lock, another account)."""
        for d in call(lambda c: c.export_audit_digests()):
            print(json.dumps(digest_wire.from_message(d).to_json()))

    @digests.command("check")
    def digests_check(path: Path, retention: bool = typer.Option(False, help="Retention is configured.")) -> None:
        """Check an export offline: links, and signatures when MONOMCP_AUDIT_SIGNING_KEY is set."""
        key = os.environ.get("MONOMCP_AUDIT_SIGNING_KEY", "")
        previous = chain.previous_keys(os.environ.get("MONOMCP_AUDIT_PREVIOUS_SIGNING_KEYS", ""))
        problems = chain.check_links(read_export(path, "PATH"), key, retention, previous)
        for problem in problems:
            console.print(f"[red]✗[/red] {problem}")
        console.print("[green]digest chain intact[/green]" if not problems else "[red]digest chain broken[/red]")
        if problems:
            raise typer.Exit(1)

    @audit.command("verify")
    def audit_verify(
        against: Path = typer.Option(None, help="A digest export; its digests must still be in the database."),
        as_json: bool = JSON,
    ) -> None:
        """Check the digest chain and every digested row (operator token). Read-only.
        Exits 1 when anything was tampered with."""
        known = [digest_wire.to_message(link) for link in read_export(against, "--against")] if against else []
        result = call(lambda c: c.verify_audit(known))
        if as_json:
            emit(result, True, [])
        else:
            console.print(f"{result.digests_checked} digests, {result.rows_checked} rows checked")
            for problem in result.problems:
                console.print(f"[red]✗[/red] {problem}")
            console.print("[green]audit log intact[/green]" if result.ok else "[red]audit log tampered[/red]")
        if not result.ok:
            raise typer.Exit(1)

    @audit.command("retention")
    def audit_retention(
        before: str = typer.Option(..., help="Remove the rows of calls before this date (YYYY-MM-DD, UTC)."),
        yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
        as_json: bool = JSON,
    ) -> None:
        """Remove old audit rows (whole months on Postgres) and anchor the digest chain (operator).
        Audited. Export the digests first (`monomcp audit digests export`) to keep them."""
        when = _utc_date(before)
        if not yes and not typer.confirm(f"Remove every audit row of calls before {when:%Y-%m-%d %H:%M} UTC?"):
            raise typer.Exit(1)
        result = call(lambda c: c.apply_audit_retention(when))
        if as_json:
            emit(result, True, [])
            return
        boundary = result.boundary.ToDatetime().strftime("%Y-%m-%d %H:%M")
        console.print(f"{result.rows_removed} rows of calls before {boundary} UTC removed")
        for name in result.partitions_dropped:
            console.print(f"  dropped partition {name}")
        if result.note:
            console.print(result.note)

    @audit.command("partitions")
    def audit_partitions(
        ahead: int = typer.Option(0, help="Months after this one to create (default 3)."),
        as_json: bool = JSON,
    ) -> None:
        """Create the audit log's month partitions ahead and list them (Postgres; operator)."""
        result = call(lambda c: c.prepare_audit_partitions(ahead))
        if as_json:
            emit(result, True, [])
            return
        if not result.partitioned:
            console.print("the audit log is not partitioned (SQLite): nothing to prepare")
            return
        for name in result.created:
            console.print(f"created {name}")
        for p in result.partitions:
            span = (
                f"{p.start.ToDatetime():%Y-%m-%d} .. {p.end.ToDatetime():%Y-%m-%d}"
                if p.HasField("start")
                else "default (rows outside every month; should stay empty)"
            )
            console.print(f"{p.name}  {span}  ~{p.estimated_rows} rows")


def _utc_date(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)", param_hint="--before") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
