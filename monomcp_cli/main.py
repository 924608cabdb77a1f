"""The `monomcp` command: serve the processes, migrate, seed, and administer."""

from __future__ import annotations

import asyncio
import json

import typer

from monomcp_cli import admin_commands, approval_commands, policy_commands, trust_commands
from monomcp_cli.output import console
from policy_service.config import Settings

app = typer.Typer(help="MonoMCP Gateway: serve, migrate, seed and administer.", no_args_is_help=True)
serve_app = typer.Typer(help="Run one process.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
demo_app = typer.Typer(help="Demo data.", no_args_is_help=True)
app.add_typer(serve_app, name="serve")
app.add_typer(db_app, name="db")
app.add_typer(demo_app, name="demo")
admin_commands.register(app)
trust_commands.register(app, approval_commands.register(app))
policy_commands.register(app)


def _logging() -> None:
    from monomcp_cli.log_setup import configure

    configure()


def _tracing(service_name: str) -> None:
    """OpenTelemetry traces when the standard OTEL_* variables configure an exporter."""
    from policy_service.observability.tracing import configure

    try:
        configure(service_name)
    except ValueError as exc:
        console.print(f"[red]cannot start:[/red] {exc}")
        raise typer.Exit(2) from None


@serve_app.command("policy")
def serve_policy(
    listen: str = typer.Option(None, help="HOST:PORT (default MONOMCP_POLICY_LISTEN)"),
    tls_cert: str = typer.Option("", help="PEM certificate: serve gRPC over TLS (MONOMCP_POLICY_TLS_CERT)"),
    tls_key: str = typer.Option("", help="PEM private key of --tls-cert (MONOMCP_POLICY_TLS_KEY)"),
    client_ca: str = typer.Option("", help="PEM CA: require client certificates it signed (MONOMCP_POLICY_CLIENT_CA)"),
) -> None:
    """Run the policy service (gRPC)."""
    from monomcp_cli.runtime import run_async, tune_gc
    from policy_service.api.server import serve

    _logging()
    _tracing("monomcp-policy")
    settings = Settings()
    overrides = {"policy_tls_cert": tls_cert, "policy_tls_key": tls_key, "policy_client_ca": client_ca}
    settings = settings.model_copy(update={k: v for k, v in overrides.items() if v})
    if bool(settings.policy_tls_cert) != bool(settings.policy_tls_key):
        raise typer.BadParameter("--tls-cert and --tls-key go together")
    if settings.policy_client_ca and not settings.policy_tls_cert:
        raise typer.BadParameter("--client-ca needs --tls-cert and --tls-key")
    from policy_service.storage.migrate import schema_problem

    if problem := schema_problem(settings.database_url):
        console.print(f"[red]cannot start the policy service:[/red] {problem}")
        raise typer.Exit(2)
    tune_gc()
    run_async(serve(settings, listen))


@serve_app.command("front")
def serve_front(
    listen: str = typer.Option(None, help="HOST:PORT (default MONOMCP_FRONT_LISTEN)"),
    policy: str = typer.Option(None, help="policy service HOST:PORT (default MONOMCP_POLICY_ADDR)"),
) -> None:
    """Run the MCP front end (streamable HTTP)."""
    from monomcp_cli.runtime import serve_front as run

    settings = Settings()
    missing = settings.missing_front_secrets()
    if missing:
        for line in missing:
            console.print(f"[red]cannot start the front:[/red] {line}")
        console.print("(or set MONOMCP_ENV=development to run with per-process secrets)")
        raise typer.Exit(2)
    _logging()
    _tracing("monomcp-front")
    run(settings, listen, policy)


@serve_app.command("demo-backend")
def serve_demo_backend(listen: str = typer.Option("127.0.0.1:8766", help="HOST:PORT")) -> None:
    """Run the demo SEO toolkit backend (an MCP server)."""
    import uvicorn

    _logging()
    from demo_backend.server import build_app

    host, port = listen.rsplit(":", 1)
    uvicorn.run(build_app(), host=host, port=int(port), log_level="warning")


@db_app.command("upgrade")
def db_upgrade(create: bool = typer.Option(False, "--create", help="Create the Postgres database if missing.")) -> None:
    """Apply all migrations to DATABASE_URL."""
    from policy_service.storage.migrate import DatabaseProblem, ensure_database, upgrade

    settings = Settings()
    try:
        ensure_database(settings.database_url, create)
        upgrade(settings.database_url)
    except DatabaseProblem as exc:
        console.print(f"[red]error[/red] {exc}")
        raise typer.Exit(1) from None
    console.print("database is at the latest revision")


@db_app.command("check")
def db_check() -> None:
    """Report the schema revision of DATABASE_URL; exits 1 unless it is the latest."""
    from policy_service.storage.migrate import DatabaseProblem, revisions

    try:
        current, head = revisions(Settings().database_url)
    except DatabaseProblem as exc:
        console.print(f"[red]error[/red] {exc}")
        raise typer.Exit(1) from None
    console.print(f"schema revision {current or 'none'} (latest {head})")
    if current != head:
        console.print("run `monomcp db upgrade`")
        raise typer.Exit(1)


@demo_app.command("seed")
def demo_seed(
    as_json: bool = typer.Option(False, "--json", help="Print keys and endpoints as JSON."),
    backend_url: str = typer.Option("http://127.0.0.1:8766/mcp", help="Demo backend URL stored on the toolkits."),
) -> None:
    """Create the demo data if missing and issue fresh demo API keys."""
    from monomcp_cli.runtime import seed_demo

    result = asyncio.run(seed_demo(Settings(), backend_url))
    if as_json:
        print(json.dumps(result, indent=2))
        return
    from monomcp_cli.output import print_demo

    print_demo(result)


@app.command("dev")
def dev(
    front: str = typer.Option("127.0.0.1:8765", help="front HOST:PORT"),
    policy: str = typer.Option("127.0.0.1:50051", help="policy service HOST:PORT"),
    backend: str = typer.Option("127.0.0.1:8766", help="demo backend HOST:PORT"),
) -> None:
    """Migrate, seed the demo, and run policy service, front and demo backend (Ctrl-C stops all)."""
    from monomcp_cli.log_setup import configure
    from monomcp_cli.runtime import run_dev

    configure("text")
    run_dev(Settings(), front, policy, backend)


if __name__ == "__main__":
    app()
