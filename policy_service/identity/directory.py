"""Orgs, roles, members and API keys."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

from sqlalchemy import Select, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from policy_service.errors import AlreadyExists, InvalidArgument, NotFound, PermissionDenied
from policy_service.identity import api_keys
from policy_service.storage.models import ApiKey, Membership, Organization, Role, User, utcnow

SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
BUILTIN_ROLES = {"admin": True, "member": False}


def check_slug(value: str, what: str) -> str:
    if not SLUG.match(value or ""):
        raise InvalidArgument(f"invalid {what} {value!r}: lowercase letters, digits and dashes", "BAD_SLUG")
    return value


_Row = TypeVar("_Row", User, Membership)


async def create_org(session: AsyncSession, slug: str, name: str) -> Organization:
    check_slug(slug, "org slug")
    org = Organization(slug=slug, name=name or slug)
    try:
        async with session.begin_nested():
            session.add(org)
            await session.flush()
            for role_name, is_admin in BUILTIN_ROLES.items():
                session.add(Role(org_id=org.id, name=role_name, is_admin=is_admin))
    except IntegrityError as exc:
        raise AlreadyExists(f"org {slug!r} exists", "ORG_EXISTS") from exc
    return org


async def role(session: AsyncSession, org_id: str, name: str) -> Role:
    found = (await session.execute(select(Role).where(Role.org_id == org_id, Role.name == name))).scalar_one_or_none()
    if found is None:
        raise NotFound(f"role {name!r} not found", "ROLE_NOT_FOUND")
    return found


async def create_role(session: AsyncSession, org_id: str, name: str) -> Role:
    check_slug(name, "role name")
    new = Role(org_id=org_id, name=name, is_admin=False)
    try:
        async with session.begin_nested():
            session.add(new)
    except IntegrityError as exc:
        raise AlreadyExists(f"role {name!r} exists", "ROLE_EXISTS") from exc
    return new


def normalise_email(email: str) -> str:
    """The one spelling of an account's email: sign-in and every lookup compare lower-cased,
    so an account stored as `Admin@Org.example` beside `admin@org.example` would make both
    ambiguous (and fail every sign-in of the person, whichever org added the other)."""
    value = email.strip().lower()
    local, at, domain = value.partition("@")
    if not at or not local or "." not in domain or len(value) > 320 or any(c.isspace() for c in value):
        raise InvalidArgument("email must be an address like name@example.com", "BAD_EMAIL")
    return value


async def _inserted_or_found(session: AsyncSession, existing: Select[_Row], new: _Row) -> _Row:
    """The row `existing` selects, or `new` inserted when there is none. Two concurrent calls
    (an account and a membership for a new email) both find none and both insert: a unique
    index refuses the second, whose savepoint rolls back, and it takes the first's row."""
    found = (await session.execute(existing)).scalar_one_or_none()
    if found is not None:
        return found
    try:
        async with session.begin_nested():
            session.add(new)
            await session.flush()
        return new
    except IntegrityError:
        return (await session.execute(existing)).scalar_one()


async def add_member(
    session: AsyncSession, org_id: str, email: str, role_name: str, *, by_operator: bool
) -> tuple[User, Role]:
    """Adds the person (a new account for a new email) to the org, or sets their role in it.

    An account that already belongs to another org (and not yet to this one) is the operator's
    to add: an org admin who could would take that org's control of its own member away (an
    org admin resets or disables only a person of no other org, `people.manageable`), and
    could hand the other org an account whose password it chose. A member of this org (the
    operator added them) keeps having their role here set by this org's admins."""
    email = normalise_email(email)
    target_role = await role(session, org_id, role_name)
    user = await _inserted_or_found(session, select(User).where(func.lower(User.email) == email), User(email=email))
    if not by_operator:
        orgs = set((await session.execute(select(Membership.org_id).where(Membership.user_id == user.id))).scalars())
        if orgs and org_id not in orgs:  # a member here already: only their role here changes
            raise PermissionDenied(
                "this person already belongs to another org: ask the operator to add them", "PERSON_IN_OTHER_ORGS"
            )
    membership = await _inserted_or_found(
        session,
        select(Membership).where(Membership.org_id == org_id, Membership.user_id == user.id),
        Membership(org_id=org_id, user_id=user.id, role_id=target_role.id),
    )
    membership.role_id = target_role.id
    return user, target_role


@dataclass(frozen=True, slots=True)
class IssuedKey:
    key: ApiKey
    secret: str


async def create_api_key(
    session: AsyncSession, org_id: str, name: str, role_name: str, ttl_seconds: int, owner_user_id: str = ""
) -> IssuedKey:
    """A new key; `owner_user_id` is the person it belongs to ('' = nobody)."""
    if ttl_seconds < 0:
        raise InvalidArgument("ttl_seconds must be ≥ 0", "BAD_TTL")
    target_role = await role(session, org_id, role_name)
    new = api_keys.generate()
    key = ApiKey(
        id=new.key_id,
        org_id=org_id,
        role_id=target_role.id,
        name=name or "key",
        secret_hash=new.token_hash,
        created_at=utcnow(),
        expires_at=utcnow() + timedelta(seconds=ttl_seconds) if ttl_seconds else None,
        owner_user_id=owner_user_id or None,
    )
    session.add(key)
    return IssuedKey(key, new.token)


async def revoke_api_key(session: AsyncSession, org_id: str, key_id: str) -> ApiKey:
    key = (
        await session.execute(select(ApiKey).where(ApiKey.org_id == org_id, ApiKey.id == key_id))
    ).scalar_one_or_none()
    if key is None:
        raise NotFound("API key not found", "KEY_NOT_FOUND")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
    return key


async def retire_unowned_keys(session: AsyncSession, org_ids: list[str], names: list[str]) -> None:
    """Unowned keys of these names in these orgs (a seed's own, minted afresh on every run):
    the live ones are revoked (kept, so `keys list` and a client still holding one say
    "revoked" rather than "unknown"); those revoked already are deleted (their audit rows keep
    the key's id and name), so keys never pile up."""
    seeded = (ApiKey.org_id.in_(org_ids), ApiKey.name.in_(names), ApiKey.owner_user_id.is_(None))
    await session.execute(delete(ApiKey).where(*seeded, ApiKey.revoked_at.is_not(None)))
    await session.execute(update(ApiKey).where(*seeded, ApiKey.revoked_at.is_(None)).values(revoked_at=utcnow()))


async def person_of(session: AsyncSession, kind: str, principal_id: str) -> str:
    """The person behind a recorded principal: a user's id, an API key's owner, or ''."""
    if kind == "user":
        return principal_id
    if kind == "api_key":
        owner = (await session.execute(select(ApiKey.owner_user_id).where(ApiKey.id == principal_id))).scalar()
        return owner or ""
    return ""


async def key_owner(session: AsyncSession, org_id: str, who: str) -> User:
    """The member of the org a new key is given to, by email or user id."""
    user = (
        await session.execute(
            select(User)
            .join(Membership, Membership.user_id == User.id)
            .where(Membership.org_id == org_id, (User.id == who) | (User.email == who.strip().lower()))
        )
    ).scalar_one_or_none()
    if user is None:
        raise NotFound(f"no person {who!r} in this org to own the key", "PERSON_NOT_FOUND")
    return user
