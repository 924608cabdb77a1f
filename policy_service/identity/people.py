"""People: accounts (email, display name, argon2id password, disabled flag) and their
membership and role per org. Pure data operations; hashing happens before, in the caller.

A person is global (one email, one password) while admins are per org, so an org admin
may reset or disable only a person who belongs to no other org: otherwise one org's admin
could take over or lock out another org's member. The operator may do either for anyone.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from policy_service.errors import AlreadyExists, NotFound, PermissionDenied
from policy_service.identity import directory, refresh_tokens
from policy_service.storage.models import ConsoleSession, Membership, Role, User, utcnow


@dataclass(frozen=True, slots=True)
class PersonView:
    user: User
    role: str


async def find_in_org(session: AsyncSession, org_id: str, who: str) -> PersonView:
    """A member of the org by email or user id; NotFound otherwise (other orgs' people included)."""
    key = who.strip().lower()
    row = (
        await session.execute(
            select(User, Role.name)
            .join(Membership, Membership.user_id == User.id)
            .join(Role, Role.id == Membership.role_id)
            .where(Membership.org_id == org_id, (User.id == who.strip()) | (func.lower(User.email) == key))
        )
    ).first()
    if row is None:
        raise NotFound(f"no person {who!r} in this org", "PERSON_NOT_FOUND")
    return PersonView(row[0], row[1])


async def list_in_org(session: AsyncSession, org_id: str) -> list[PersonView]:
    rows = await session.execute(
        select(User, Role.name)
        .join(Membership, Membership.user_id == User.id)
        .join(Role, Role.id == Membership.role_id)
        .where(Membership.org_id == org_id)
        .order_by(User.email)
    )
    return [PersonView(u, r) for u, r in rows.all()]


async def create(
    session: AsyncSession,
    org_id: str,
    email: str,
    display_name: str,
    role_name: str,
    password_hash: str,
    *,
    by_operator: bool,
) -> PersonView:
    """Add a person to the org (creating the account when new). An existing account keeps
    its password: giving one for it is refused rather than silently ignored. An account of
    another org is the operator's to add (`directory.add_member`)."""
    email = directory.normalise_email(email)
    existing = (await session.execute(select(User).where(func.lower(User.email) == email))).scalar_one_or_none()
    if existing is not None and existing.password_hash and password_hash:
        raise AlreadyExists("this person already has an account with a password; add them without one", "PERSON_EXISTS")
    user, role = await directory.add_member(
        session, org_id, existing.email if existing else email, role_name, by_operator=by_operator
    )
    if password_hash and user.password_hash:  # given one by a concurrent call meanwhile
        raise AlreadyExists("this person already has an account with a password; add them without one", "PERSON_EXISTS")
    if display_name:
        user.display_name = display_name
    if password_hash and not user.password_hash:
        user.password_hash = password_hash
    return PersonView(user, role.name)


async def _only_in(session: AsyncSession, user_id: str, org_id: str) -> bool:
    orgs = (await session.execute(select(Membership.org_id).where(Membership.user_id == user_id))).scalars().all()
    return set(orgs) <= {org_id}


async def manageable(session: AsyncSession, org_id: str, who: str, by_operator: bool) -> PersonView:
    """The person an org admin may reset or disable (see the module docstring)."""
    person = await find_in_org(session, org_id, who)
    if not by_operator and not await _only_in(session, person.user.id, org_id):
        raise PermissionDenied(
            "this person also belongs to another org: ask the operator to reset or disable the account",
            "PERSON_IN_OTHER_ORGS",
        )
    return person


async def end_sign_ins(session: AsyncSession, user_id: str) -> None:
    """Revoke every refresh-token family and console session of the person."""
    await refresh_tokens.revoke_for_user(session, user_id)
    await session.execute(
        update(ConsoleSession)
        .where(
            ConsoleSession.principal_kind == "user",
            ConsoleSession.principal_id == user_id,
            ConsoleSession.revoked_at.is_(None),
        )
        .values(revoked_at=utcnow())
    )


async def set_disabled(session: AsyncSession, person: PersonView, disabled: bool) -> PersonView:
    if disabled and person.user.disabled_at is None:
        person.user.disabled_at = utcnow()
        await end_sign_ins(session, person.user.id)
    elif not disabled:
        person.user.disabled_at = None
    return person


async def set_password(session: AsyncSession, person: PersonView, password_hash: str) -> PersonView:
    person.user.password_hash = password_hash
    await end_sign_ins(session, person.user.id)
    return person


async def load_user(session: AsyncSession, user_id: str) -> User:
    user = (await session.execute(select(User).where(User.id == user_id))).scalar_one_or_none()
    if user is None:
        raise NotFound("no such person", "PERSON_NOT_FOUND")
    return user
