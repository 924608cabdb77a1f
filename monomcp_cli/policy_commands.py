"""`monomcp policy export|diff|apply`: an org's permissions as a reviewable file (ADR 0021)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from monomcp_cli.admin_client import call
from monomcp_cli.output import console, to_dict
from policy_service._generated.monomcp.policy.v1 import admin_pb2

ORG = typer.Option("", "--org", help="Org slug (default: the credential's org).")
FILE = typer.Option(..., "--file", "-f", help="The policy file ('-' reads standard input).")
JSON = typer.Option(False, "--json", help="Machine-readable output.")


def _read(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        console.print(f"[red]error[/red] cannot read {path}: {exc.strerror}")
        raise typer.Exit(2) from None


def _line(change: admin_pb2.PolicyChange) -> str:
    what = f"{change.toolkit} {change.tool} {change.field.replace(':', ' ')}"
    if change.action == "add":
        return f"+ {what}: {change.after}"
    if change.action == "remove":
        return f"- {what}: {change.before}"
    return f"~ {what}: {change.before} -> {change.after}"


def _report(response: admin_pb2.ApplyPolicyResponse, as_json: bool, verb: str) -> None:
    if as_json:
        print(json.dumps(to_dict(response) | {"changes": [to_dict(c) for c in response.changes]}, indent=2))
        return
    for change in response.changes:
        print(_line(change))
    if not response.changes:
        print(f"no changes (live policy version {response.live.version})")
    elif response.applied:
        print(f"applied: policy version {response.live.version}")
    else:
        print(f"{len(response.changes)} change(s) {verb}")


def register(app: typer.Typer) -> None:
    policy = typer.Typer(help="Permissions as code: export, diff and apply an org's policy file.", no_args_is_help=True)
    app.add_typer(policy, name="policy")

    @policy.command("export")
    def export(org: str = ORG, as_json: bool = JSON) -> None:
        """Print the org's live policy file (stable: export, apply, export gives the same text)."""
        exported = call(lambda c: c.export_policy(org))
        if as_json:
            print(json.dumps(to_dict(exported), indent=2))
            return
        sys.stdout.write(exported.yaml)

    @policy.command("diff")
    def diff(file: str = FILE, org: str = ORG, as_json: bool = JSON) -> None:
        """What applying FILE would change (exit code 0 either way; errors exit 1 with line numbers)."""
        text = _read(file)
        _report(call(lambda c: c.apply_policy(text, org, dry_run=True)), as_json, "would be applied")

    @policy.command("apply")
    def apply(
        file: str = FILE,
        org: str = ORG,
        dry_run: bool = typer.Option(False, "--dry-run", help="Check and show the changes; change nothing."),
        as_json: bool = JSON,
    ) -> None:
        """Make the org's rules exactly FILE's: all or nothing, one new policy version, audited."""
        text = _read(file)
        verb = "would be applied (dry run)" if dry_run else "applied"
        _report(call(lambda c: c.apply_policy(text, org, dry_run=dry_run)), as_json, verb)
