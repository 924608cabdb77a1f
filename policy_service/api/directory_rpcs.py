"""Admin RPCs for orgs, roles, members and API keys."""

from __future__ import annotations

import grpc
from sqlalchemy import select

from policy_service._generated.monomcp.policy.v1 import admin_pb2
from policy_service.api import convert, validation
from policy_service.api.admin_base import AdminBase
from policy_service.api.errors import translated
from policy_service.identity import directory
from policy_service.permissions.admin_access import admin_org, require_operator
from policy_service.storage.models import ApiKey, Membership, Organization, Role, User


def _key(key: ApiKey, org_slug: str, role: str, owner_email: str = "") -> admin_pb2.ApiKey:
    return admin_pb2.ApiKey(
        owner_user_id=key.owner_user_id or "",
        owner_email=owner_email,
        id=key.id,
        org_slug=org_slug,
        name=key.name,
        role=role,
        created_at=convert.ts(key.created_at),
        expires_at=convert.ts(key.expires_at),
        revoked_at=convert.ts(key.revoked_at),
        last_used_at=convert.ts(key.last_used_at),
    )


class DirectoryRpcs(AdminBase):
    @translated
    async def WhoAmI(
        self, request: admin_pb2.WhoAmIRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.WhoAmIResponse:
        return admin_pb2.WhoAmIResponse(principal=convert.principal(await self._principal(context)))

    @translated
    async def CreateOrg(self, request: admin_pb2.CreateOrgRequest, context: grpc.aio.ServicerContext) -> admin_pb2.Org:
        require_operator(await self._principal(context))
        async with self._tx() as session:
            org = await directory.create_org(session, request.slug, request.name)
        return admin_pb2.Org(slug=org.slug, name=org.name, created_at=convert.ts(org.created_at))

    @translated
    async def ListOrgs(
        self, request: admin_pb2.ListOrgsRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.ListOrgsResponse:
        principal = await self._principal(context)
        async with self._sessions() as session:
            query = select(Organization).order_by(Organization.slug)
            if not principal.is_operator:
                query = query.where(Organization.id == principal.org_id)
            orgs = (await session.execute(query)).scalars().all()
        return admin_pb2.ListOrgsResponse(
            orgs=[admin_pb2.Org(slug=o.slug, name=o.name, created_at=convert.ts(o.created_at)) for o in orgs]
        )

    @translated
    async def CreateRole(
        self, request: admin_pb2.CreateRoleRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.Role:
        principal = await self._principal(context)
        async with self._tx() as session:
            org = await admin_org(session, principal, request.org_slug)
            role = await directory.create_role(session, org.id, request.name)
        return admin_pb2.Role(org_slug=org.slug, name=role.name)

    @translated
    async def ListRoles(
        self, request: admin_pb2.ListRolesRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.ListRolesResponse:
        principal = await self._principal(context)
        async with self._sessions() as session:
            org = await admin_org(session, principal, request.org_slug)
            roles = (await session.execute(select(Role).where(Role.org_id == org.id).order_by(Role.name))).scalars()
            return admin_pb2.ListRolesResponse(roles=[admin_pb2.Role(org_slug=org.slug, name=r.name) for r in roles])

    @translated
    async def AddMember(
        self, request: admin_pb2.AddMemberRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.Member:
        principal = await self._principal(context)
        validation.text(request.email, "email", 320)
        validation.text(request.role, "role")
        async with self._tx() as session:
            org = await admin_org(session, principal, request.org_slug)
            user, role = await directory.add_member(
                session, org.id, request.email, request.role or "member", by_operator=principal.is_operator
            )
        return admin_pb2.Member(org_slug=org.slug, user_id=user.id, email=user.email, role=role.name)

    @translated
    async def ListMembers(
        self, request: admin_pb2.ListMembersRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.ListMembersResponse:
        principal = await self._principal(context)
        async with self._sessions() as session:
            org = await admin_org(session, principal, request.org_slug)
            rows = await session.execute(
                select(User, Role.name)
                .join(Membership, Membership.user_id == User.id)
                .join(Role, Role.id == Membership.role_id)
                .where(Membership.org_id == org.id)
                .order_by(User.email)
            )
            members = [admin_pb2.Member(org_slug=org.slug, user_id=u.id, email=u.email, role=r) for u, r in rows.all()]
        return admin_pb2.ListMembersResponse(members=members)

    @translated
    async def CreateApiKey(
        self, request: admin_pb2.CreateApiKeyRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.CreateApiKeyResponse:
        """The key belongs to `owner` if given, else to the person behind the caller."""
        principal = await self._principal(context)
        validation.text(request.name, "name")
        validation.text(request.role, "role")
        validation.text(request.owner, "owner", 320)
        validation.ttl_seconds(request.ttl_seconds)
        role_name = request.role or "member"
        async with self._tx() as session:
            org = await admin_org(session, principal, request.org_slug)
            owner_id, owner_email = principal.person_id if principal.org_id == org.id else "", ""
            if request.owner:
                owner = await directory.key_owner(session, org.id, request.owner)
                owner_id, owner_email = owner.id, owner.email
            elif owner_id:
                owner_email = (await session.execute(select(User.email).where(User.id == owner_id))).scalar() or ""
            issued = await directory.create_api_key(
                session, org.id, request.name, role_name, request.ttl_seconds, owner_id
            )
        return admin_pb2.CreateApiKeyResponse(
            key=_key(issued.key, org.slug, role_name, owner_email), secret=issued.secret
        )

    @translated
    async def ListApiKeys(
        self, request: admin_pb2.ListApiKeysRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.ListApiKeysResponse:
        principal = await self._principal(context)
        async with self._sessions() as session:
            org = await admin_org(session, principal, request.org_slug)
            rows = await session.execute(
                select(ApiKey, Role.name, User.email)
                .join(Role, Role.id == ApiKey.role_id)
                .outerjoin(User, User.id == ApiKey.owner_user_id)
                .where(ApiKey.org_id == org.id)
                .order_by(ApiKey.created_at)
            )
            return admin_pb2.ListApiKeysResponse(keys=[_key(k, org.slug, r, e or "") for k, r, e in rows.all()])

    @translated
    async def RevokeApiKey(
        self, request: admin_pb2.RevokeApiKeyRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.ApiKey:
        principal = await self._principal(context)
        validation.text(request.id, "id")
        async with self._tx() as session:
            org = await admin_org(session, principal, request.org_slug)
            key = await directory.revoke_api_key(session, org.id, request.id)
            role = (await session.execute(select(Role.name).where(Role.id == key.role_id))).scalar_one()
            return _key(key, org.slug, role)
