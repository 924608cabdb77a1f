"""`monomcp domains add|verify|list|remove`: an org's custom domains."""

from __future__ import annotations

import typer

from monomcp_cli.admin_client import call
from monomcp_cli.output import console, emit
from policy_service.domain_client import DomainClient

JSON = typer.Option(False, "--json", help="Machine-readable output.")
ORG = typer.Option("", "--org", help="Org slug (default: the credential's org).")
COLUMNS = ["domain", "org_slug", "verified", "created_at", "verified_at"]


def register(app: typer.Typer) -> None:
    domains = typer.Typer(help="Custom domains: https://<domain>/<toolkit>/mcp for your org.", no_args_is_help=True)
    app.add_typer(domains, name="domains")

    @domains.command("add")
    def add(domain: str, org: str = ORG, as_json: bool = JSON) -> None:
        """Claim a domain and print how to prove it (a DNS TXT record or an HTTP token)."""
        claimed = call(lambda c: DomainClient(c).add_domain(org, domain))
        if as_json:
            emit(claimed, True, [])
            return
        console.print(f"Prove that you control {claimed.domain}, then run `monomcp domains verify {claimed.domain}`:")
        console.print(f'  DNS:  TXT {claimed.txt_record_name}  "{claimed.txt_record_value}"')
        console.print(f"  or HTTP: serve {claimed.verification_token} at {claimed.http_url}")

    @domains.command("verify")
    def verify(
        domain: str,
        method: str = typer.Option("", help="dns or http (default: try both)"),
        org: str = ORG,
        as_json: bool = JSON,
    ) -> None:
        """Check the proof now; once verified the domain routes to your org's toolkits."""
        emit(call(lambda c: DomainClient(c).verify_domain(org, domain, method)), as_json, COLUMNS)

    @domains.command("list")
    def list_(org: str = ORG, as_json: bool = JSON) -> None:
        """The org's domains, verified or pending."""
        emit(call(lambda c: DomainClient(c).list_domains(org)), as_json, COLUMNS)

    @domains.command("remove")
    def remove(domain: str, org: str = ORG, as_json: bool = JSON) -> None:
        """Release the domain (it stops routing within a second)."""
        removed = call(lambda c: DomainClient(c).remove_domain(org, domain))
        if as_json:
            emit(removed, True, COLUMNS)
            return
        # It printed the removed domain's row alone, which reads as if it were still there.
        console.print(f"Removed {removed.domain} from org {removed.org_slug} (nothing routes on it within a second)")
