"""Builds the external-identity pieces of the authenticator from Settings."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from policy_service.config import Settings
from policy_service.identity.audiences import AudiencePolicy
from policy_service.identity.external_tokens import ExternalIdpSettings, ExternalTokens, parse_role_map


def idp_settings(settings: Settings) -> ExternalIdpSettings:
    return ExternalIdpSettings(
        issuer=settings.oidc_issuer,
        jwks_url=settings.oidc_jwks_url,
        audience=settings.oidc_audience,
        algorithms=tuple(a.strip() for a in settings.oidc_algorithms.split(",") if a.strip()),
        org_claim=settings.oidc_org_claim,
        fixed_org=settings.oidc_org,
        role_claim=settings.oidc_role_claim,
        role_map=parse_role_map(settings.oidc_role_map),
        default_role=settings.oidc_default_role,
        jwks_max_age=settings.oidc_jwks_cache_seconds,
        jwks_min_refresh=settings.oidc_jwks_min_refresh_seconds,
    )


def external_identity(
    settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> tuple[ExternalTokens | None, AudiencePolicy]:
    """The provider's token verifier (None when not configured) and the audience rule."""
    idp = idp_settings(settings)
    audiences = AudiencePolicy(
        idp.audience,
        settings.oauth_resource_server,
        settings.public_url,
        sessions,
        max(settings.cache_ttl_seconds, 0.5),
    )
    return (ExternalTokens(idp) if idp.enabled else None), audiences
