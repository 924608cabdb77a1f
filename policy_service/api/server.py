"""Builds the policy service from Settings and runs it: gRPC, health, reflection,
background jobs (audit digests, abandoned-row sweep) and graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from policy_service._generated.monomcp.policy.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    domains_pb2,
    domains_pb2_grpc,
    policy_pb2,
    policy_pb2_grpc,
    tasks_pb2,
    tasks_pb2_grpc,
)
from policy_service.api.admin_audit import AdminAuditInterceptor
from policy_service.api.admin_servicer import AdminServicer
from policy_service.api.admin_snapshots import Snapshots
from policy_service.api.call_stream import OpenStreams
from policy_service.api.domain_rpcs import DomainServicer, gateway_hosts, release_row
from policy_service.api.health import DatabaseHealth
from policy_service.api.policy_servicer import PolicyServicer
from policy_service.api.task_rpcs import TaskRpcs
from policy_service.approvals.watch import ApprovalWatcher
from policy_service.audit.chain import previous_keys
from policy_service.audit.digests import AuditDigester, DigestPolicy
from policy_service.audit.redaction import Redactor
from policy_service.audit.writer import AuditLog
from policy_service.config import Settings
from policy_service.domains.recheck import DomainRechecker, RecheckPolicy
from policy_service.domains.verification import DomainVerifier, resolver_for
from policy_service.gate import Gate, approval_ttls
from policy_service.identity.authenticator import Authenticator
from policy_service.identity.jwt_tokens import JwtSettings
from policy_service.identity.logins import Logins, login_settings
from policy_service.identity.services import ServiceDirectory
from policy_service.identity.setup import external_identity
from policy_service.notifications.channels import NotifyConfig
from policy_service.notifications.dispatcher import DispatchSettings, NotificationDispatcher
from policy_service.notifications.senders import SmtpSettings
from policy_service.observability.metrics import MetricsInterceptor, PolicyMetrics
from policy_service.observability.tracing import server_interceptors
from policy_service.permissions.catalogue import Catalogue
from policy_service.permissions.condition_rules import OrgConditions
from policy_service.storage.checkpoints import WalCheckpointer
from policy_service.storage.database import WriteGuard, create_engine, is_sqlite, session_factory
from policy_service.storage.models import Approval, utcnow
from policy_service.storage.policy_version import PolicyVersion
from policy_service.toolkits.egress import EgressPolicy

log = logging.getLogger(__name__)

_HEALTH_INTERVAL_SECONDS = 2.0
_GAUGE_INTERVAL_SECONDS = 5.0

SERVICE_NAMES = (
    policy_pb2.DESCRIPTOR.services_by_name["PolicyService"].full_name,
    admin_pb2.DESCRIPTOR.services_by_name["AdminService"].full_name,
    tasks_pb2.DESCRIPTOR.services_by_name["TaskService"].full_name,
    domains_pb2.DESCRIPTOR.services_by_name["DomainService"].full_name,
)


@dataclass
class PolicyServer:
    server: grpc.aio.Server
    port: int
    engine: AsyncEngine
    audit: AuditLog
    watcher: ApprovalWatcher
    digester: AuditDigester
    jobs: asyncio.Task[None]
    metrics: PolicyMetrics
    version: PolicyVersion
    metrics_server: Any = None
    notifications: NotificationDispatcher | None = None
    streams: OpenStreams | None = None

    async def stop(self, grace: float = 5.0) -> None:
        """Stop taking calls, let in-flight ones finish, flush audit rows, close the pool.
        Open CallStreams stop reading first and end once their items are answered (ADR 0029)."""
        if self.streams is not None:
            self.streams.drain()
        await self.server.stop(grace)
        if self.metrics_server is not None:
            self.metrics_server.shutdown()
        self.jobs.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.jobs
        await self.watcher.stop()
        if self.notifications is not None:
            await self.notifications.stop()
        await self.audit.stop()
        await self.version.stop()
        await self.engine.dispose()


async def _background_jobs(
    db_health: DatabaseHealth,
    digester: AuditDigester,
    interval: float,
    retention_days: int,
    sessions: async_sessionmaker[AsyncSession],
    metrics: PolicyMetrics,
    domain_rechecks: Coroutine[Any, Any, None] | None,
    checkpoints: WalCheckpointer | None,
) -> None:
    """Health probe; sweep abandoned calls, digest, apply retention; prove verified domains
    again; SQLite's WAL checkpoints; a failed round retries next time."""
    async with asyncio.TaskGroup() as jobs:
        jobs.create_task(db_health.run(_HEALTH_INTERVAL_SECONDS))
        jobs.create_task(_audit_maintenance(digester, interval, retention_days))
        jobs.create_task(_approval_gauge(sessions, metrics))
        if domain_rechecks is not None:
            jobs.create_task(domain_rechecks)
        if checkpoints is not None:
            jobs.create_task(checkpoints.run())


async def _approval_gauge(sessions: async_sessionmaker[AsyncSession], metrics: PolicyMetrics) -> None:
    """Pending approvals, counted every few seconds for the metrics scrape."""
    while True:
        try:
            async with sessions() as session:
                pending = select(func.count()).select_from(Approval).where(Approval.status == "pending")
                count = (await session.execute(pending)).scalar_one()
            metrics.approvals_pending.set(count)
        except Exception as exc:
            log.debug("approval gauge failed: %s", exc)
        await asyncio.sleep(_GAUGE_INTERVAL_SECONDS)


async def _audit_maintenance(digester: AuditDigester, interval: float, retention_days: int) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await digester.prepare_partitions()
            await digester.sweep_abandoned()
            await digester.write_digest()
            if retention_days > 0:
                removed = await digester.apply_retention(utcnow() - timedelta(days=retention_days))
                if removed:
                    log.info("audit retention removed %d rows older than %d days", removed, retention_days)
        except Exception:
            log.exception("audit maintenance failed")


def digest_policy(settings: Settings) -> DigestPolicy:
    return DigestPolicy(
        abandon_after=timedelta(seconds=settings.audit_abandon_after_seconds),
        settle=timedelta(seconds=settings.audit_digest_settle_seconds),
        signing_key=settings.audit_signing_key,
        previous_signing_keys=previous_keys(settings.audit_previous_signing_keys),
        retention=settings.audit_retention_days > 0,
        stale_after=max(timedelta(minutes=10), 10 * timedelta(seconds=settings.audit_digest_interval_seconds)),
    )


def notify_config(settings: Settings) -> NotifyConfig:
    return NotifyConfig(
        settings.notify_signing_key or settings.jwt_secret, bool(settings.smtp_host), settings.public_url
    )


def dispatch_settings(settings: Settings) -> DispatchSettings:
    smtp = SmtpSettings(
        settings.smtp_host,
        settings.smtp_port,
        settings.smtp_from,
        settings.smtp_username,
        settings.smtp_password,
        settings.smtp_starttls,
    )
    return DispatchSettings(
        notify_config(settings).signing_key,
        settings.public_url,
        smtp,
        settings.notify_max_attempts,
        settings.notify_retry_base_seconds,
        settings.notify_timeout_seconds,
        settings.notify_poll_seconds,
    )


def _listen(server: grpc.aio.Server, address: str, settings: Settings) -> int:
    """Plain TCP, TLS (cert + key) or mutual TLS (plus a client CA that signs callers' certs)."""
    if not settings.policy_tls_cert:
        return int(server.add_insecure_port(address))
    with open(settings.policy_tls_cert, "rb") as cert, open(settings.policy_tls_key, "rb") as key:
        pair = (key.read(), cert.read())
    client_ca = None
    if settings.policy_client_ca:
        with open(settings.policy_client_ca, "rb") as ca:
            client_ca = ca.read()
    credentials = grpc.ssl_server_credentials(
        [pair], root_certificates=client_ca, require_client_auth=client_ca is not None
    )
    return int(server.add_secure_port(address, credentials))


def _domain_servicer(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    gate: Gate,
    services: ServiceDirectory,
    verifier: DomainVerifier,
) -> DomainServicer:
    reserved = gateway_hosts(settings.public_url, settings.allowed_host_list)
    return DomainServicer(sessions, gate.authenticator, services, verifier, reserved)


def _domain_rechecks(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], gate: Gate, verifier: DomainVerifier
) -> Coroutine[Any, Any, None] | None:
    """Verified domains proven again in the background (domains/recheck.py), unless turned off."""
    if settings.domain_recheck_seconds <= 0:
        return None
    policy = RecheckPolicy(
        timedelta(seconds=settings.domain_recheck_seconds), timedelta(seconds=settings.domain_recheck_grace_seconds)
    )
    return DomainRechecker(sessions, verifier, policy, release_row(gate)).run()


async def start(settings: Settings, listen: str | None = None) -> PolicyServer:
    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    guard = WriteGuard(is_sqlite(settings.database_url))
    metrics = PolicyMetrics()
    audit = AuditLog(engine, guard, metrics)
    audit.start()
    version = PolicyVersion(engine)
    version.start()
    metrics.audit_queue_depth.set_function(lambda: audit.queue_depth)
    ttls = approval_ttls(settings.approval_pending_ttl_seconds, settings.approval_approved_ttl_seconds)
    authenticator = Authenticator(
        sessions,
        JwtSettings(settings.jwt_secret, settings.jwt_issuer, settings.jwt_audience),
        settings.operator_token,
        settings.cache_ttl_seconds,
        *external_identity(settings, sessions),
        version,
    )
    gate = Gate(
        sessions,
        authenticator,
        Catalogue(sessions, settings.cache_ttl_seconds, version),
        audit,
        Redactor(settings.redact_keys, settings.audit_max_payload_bytes),
        ttls,
        guard,
    )
    watcher = ApprovalWatcher(sessions)
    notifications = NotificationDispatcher(
        sessions, guard, dispatch_settings(settings), EgressPolicy.from_settings(settings)
    )

    def approvals_changed() -> None:
        watcher.poke()
        notifications.poke()

    gate.on_approval_change = approvals_changed
    gate.conditions = OrgConditions(sessions, settings.cache_ttl_seconds, version)
    digester = AuditDigester(sessions, digest_policy(settings))
    # Kept per policy version (revocation reaches every replica at once); at least half a
    # second of TTL while the version source is down: identities are looked up on every RPC.
    services = ServiceDirectory(sessions, max(settings.cache_ttl_seconds, 0.5), version)

    server = grpc.aio.server(
        interceptors=[
            *server_interceptors(),
            MetricsInterceptor(metrics),
            AdminAuditInterceptor(gate, Snapshots(sessions), services),
        ],
        options=[
            ("grpc.max_receive_message_length", 16 * 1024 * 1024),
            # Fronts ping an idle CallStream every 30 s (rpc_channel.py); accept pings that often
            # (gRPC's default floor is 5 minutes, past which a server may answer too_many_pings).
            ("grpc.http2.min_recv_ping_interval_without_data_ms", 10_000),
        ],
    )
    servicer = PolicyServicer(gate, services, metrics)
    policy_pb2_grpc.add_PolicyServiceServicer_to_server(servicer, server)
    logins = Logins(sessions, authenticator, audit, authenticator.jwt_settings, login_settings(settings))
    admin = AdminServicer(
        sessions, gate, ttls, watcher, digester, services, EgressPolicy.from_settings(settings), logins
    )
    admin.notify_config = notify_config(settings)
    admin.notify_poke = notifications.poke  # a test send goes out now, not at the next poll
    admin_pb2_grpc.add_AdminServiceServicer_to_server(admin, server)
    tasks_pb2_grpc.add_TaskServiceServicer_to_server(TaskRpcs(gate, services, sessions, audit), server)
    verifier = DomainVerifier(
        resolver_for(settings.dns_nameservers), settings.domain_http_port, settings.backend_allow_private
    )
    domains = _domain_servicer(settings, sessions, gate, services, verifier)
    domains_pb2_grpc.add_DomainServiceServicer_to_server(domains, server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection((*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    port = _listen(server, listen or settings.policy_listen, settings)
    if port == 0:
        raise RuntimeError(f"cannot listen on {listen or settings.policy_listen}")
    db_health = DatabaseHealth(health_servicer, engine, ("", *SERVICE_NAMES), metrics)
    await db_health.check()
    await server.start()
    jobs = asyncio.get_running_loop().create_task(
        _background_jobs(
            db_health,
            digester,
            settings.audit_digest_interval_seconds,
            settings.audit_retention_days,
            sessions,
            metrics,
            _domain_rechecks(settings, sessions, gate, verifier),
            WalCheckpointer(engine) if is_sqlite(settings.database_url) else None,
        )
    )
    metrics_server = metrics.serve(settings.policy_metrics_listen) if settings.policy_metrics_listen else None
    notifications.start()
    log.info("policy service listening on port %d", port)
    return PolicyServer(
        server,
        port,
        engine,
        audit,
        watcher,
        digester,
        jobs,
        metrics,
        version,
        metrics_server,
        notifications,
        servicer.streams,
    )


async def serve(settings: Settings, listen: str | None = None) -> None:
    """Run until SIGINT/SIGTERM, then shut down gracefully."""
    running = await start(settings, listen)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await running.stop()
