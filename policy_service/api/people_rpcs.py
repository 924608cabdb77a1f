"""Admin RPCs for people (accounts, passwords, disabling) and their sign-in (login,
refresh, logout, console sign-in with a password). Decisions live in identity/people.py
and identity/logins.py; this layer validates, authorizes and translates."""

from __future__ import annotations

import grpc

from policy_service._generated.monomcp.policy.v1 import admin_pb2
from policy_service.api import convert, metadata, validation
from policy_service.api.admin_base import AdminBase
from policy_service.api.errors import translated
from policy_service.api.metadata import bearer
from policy_service.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from policy_service.identity import passwords, people
from policy_service.identity.logins import Attempt, Logins, SignedIn
from policy_service.identity.services import ServiceDirectory
from policy_service.permissions.admin_access import admin_org


def person_message(view: people.PersonView, org_slug: str) -> admin_pb2.Person:
    user = view.user
    return admin_pb2.Person(
        user_id=user.id,
        email=user.email,
        display_name=user.display_name,
        org_slug=org_slug,
        role=view.role,
        created_at=convert.ts(user.created_at),
        disabled_at=convert.ts(user.disabled_at),
        has_password=bool(user.password_hash),
    )


async def _facts(
    given_address: str, given_agent: str, context: grpc.aio.ServicerContext, services: ServiceDirectory
) -> metadata.CallFacts:
    """Where a sign-in came from, by the one rule for stated facts (`metadata.call_facts`):
    the address is what the per-address sign-in limit counts and what the audit row keeps."""
    validation.text(given_address, "client_address", 64)
    validation.text(given_agent, "user_agent", 512)
    return await metadata.call_facts(context, services, client_address=given_address, user_agent=given_agent)


def _attempt(email: str, org_slug: str, facts: metadata.CallFacts) -> Attempt:
    validation.text(email, "email", 320)
    validation.text(org_slug, "org_slug", 63)
    if not email or not org_slug:
        raise InvalidArgument("email and org are required", "MISSING_FIELD")
    return Attempt(email.strip().lower(), org_slug.strip(), facts.client_address, facts.user_agent, facts.source)


class PeopleRpcs(AdminBase):
    def _sign_in(self) -> Logins:
        if self._logins is None:
            raise FailedPrecondition("password sign-in is not enabled on this server", "SIGN_IN_DISABLED")
        return self._logins

    @translated
    async def CreatePerson(
        self, request: admin_pb2.CreatePersonRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.CreatePersonResponse:
        principal = await self._principal(context)
        validation.text(request.display_name, "display_name", 200)
        validation.text(request.role, "role")
        generated = "" if request.password else passwords.generate()
        password_hash = await passwords.hash_password(passwords.check_strength(request.password or generated))
        async with self._tx() as session:
            org = await admin_org(session, principal, request.org_slug)
            view = await people.create(
                session,
                org.id,
                request.email,
                request.display_name,
                request.role or "member",
                password_hash,
                by_operator=principal.is_operator,
            )
            message = person_message(view, org.slug)
        fresh = message.has_password and view.user.password_hash == password_hash
        return admin_pb2.CreatePersonResponse(person=message, generated_password=generated if fresh else "")

    @translated
    async def ListPeople(
        self, request: admin_pb2.ListPeopleRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.ListPeopleResponse:
        principal = await self._principal(context)
        async with self._sessions() as session:
            org = await admin_org(session, principal, request.org_slug)
            found = await people.list_in_org(session, org.id)
            return admin_pb2.ListPeopleResponse(people=[person_message(v, org.slug) for v in found])

    @translated
    async def SetPersonDisabled(
        self, request: admin_pb2.SetPersonDisabledRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.Person:
        principal = await self._principal(context)
        validation.text(request.person, "person", 320)
        async with self._tx() as session:
            org = await admin_org(session, principal, request.org_slug)
            view = await people.manageable(session, org.id, request.person, principal.is_operator)
            if request.disabled and view.user.id == principal.person_id:
                raise PermissionDenied("you cannot disable your own account", "SELF_DISABLE")
            view = await people.set_disabled(session, view, request.disabled)
            return person_message(view, org.slug)

    @translated
    async def ResetPassword(
        self, request: admin_pb2.ResetPasswordRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.ResetPasswordResponse:
        principal = await self._principal(context)
        validation.text(request.person, "person", 320)
        generated = "" if request.new_password else passwords.generate()
        password_hash = await passwords.hash_password(passwords.check_strength(request.new_password or generated))
        async with self._tx() as session:
            org = await admin_org(session, principal, request.org_slug)
            view = await people.manageable(session, org.id, request.person, principal.is_operator)
            view = await people.set_password(session, view, password_hash)
            message = person_message(view, org.slug)
        return admin_pb2.ResetPasswordResponse(person=message, generated_password=generated)

    @translated
    async def ChangePassword(
        self, request: admin_pb2.ChangePasswordRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.ChangePasswordResponse:
        principal = await self._principal(context)
        if principal.kind != "user":
            raise PermissionDenied("sign in as the person (JWT or console) to change your password", "NOT_A_PERSON")
        new_hash = await passwords.hash_password(passwords.check_strength(request.new_password))
        async with self._sessions() as session:
            current = (await people.load_user(session, principal.id)).password_hash
        if not await passwords.verify(current, request.current_password):
            raise PermissionDenied("the current password is wrong", "WRONG_PASSWORD")
        async with self._tx() as session:
            view = people.PersonView(await people.load_user(session, principal.id), principal.role)
            await people.set_password(session, view, new_hash)
        return admin_pb2.ChangePasswordResponse()

    @translated
    async def Login(
        self, request: admin_pb2.LoginRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.LoginResponse:
        facts = await _facts(request.client_address, request.user_agent, context, self._services)
        attempt = _attempt(request.email, request.org_slug, facts)
        signed_in = await self._sign_in().login(attempt, request.password)
        return _tokens(signed_in)

    @translated
    async def Refresh(
        self, request: admin_pb2.RefreshRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.LoginResponse:
        validation.text(request.refresh_token, "refresh_token", 128)
        facts = await _facts(request.client_address, request.user_agent, context, self._services)
        attempt = Attempt("", "", facts.client_address, facts.user_agent, facts.source)
        return _tokens(await self._sign_in().refresh(request.refresh_token, attempt))

    @translated
    async def Logout(
        self, request: admin_pb2.LogoutRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.LogoutResponse:
        validation.text(request.refresh_token, "refresh_token", 128)
        await self._sign_in().logout(request.refresh_token, bearer(context))
        return admin_pb2.LogoutResponse()

    @translated
    async def CreatePasswordConsoleSession(
        self, request: admin_pb2.PasswordConsoleSessionRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.CreateConsoleSessionResponse:
        facts = await _facts(request.client_address, request.user_agent, context, self._services)
        attempt = _attempt(request.email, request.org_slug, facts)
        issued = await self._sign_in().console_session(attempt, request.password, int(request.ttl_seconds))
        return admin_pb2.CreateConsoleSessionResponse(
            token=issued.token,
            session_id=issued.session_id,
            expires_at=convert.ts(issued.expires_at),
            principal=convert.principal(issued.principal),
        )


def _tokens(signed_in: SignedIn) -> admin_pb2.LoginResponse:
    return admin_pb2.LoginResponse(
        access_token=signed_in.access.token,
        token_type="Bearer",
        expires_in=signed_in.access.expires_in,
        refresh_token=signed_in.refresh.token,
        refresh_expires_at=convert.ts(signed_in.refresh.expires_at),
        principal=convert.principal(signed_in.principal),
    )
