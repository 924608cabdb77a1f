"""Who counts as the same person when deciding an approval (ADR 0004).

A JWT or console session names a person (its user id); an API key names the person it
belongs to (`api_keys.owner_user_id`, set when a person creates it) or nobody (keys the
operator made, and keys made with unowned keys). We accept only an approver who is
provably someone other than the requester. Pure: no I/O; the requester's person is looked
up by the caller (`directory.person_of`).
"""

from __future__ import annotations

from policy_service.identity.principal import Principal

SAME_CREDENTIAL = "nobody approves their own request"
SAME_PERSON = "nobody approves their own request: the request was made with another of your keys or tokens"
UNPROVABLE_ADMIN = (
    "an admin's request needs a second admin who is provably another person (a JWT of another user, "
    "a key owned by another person) or the operator: an unowned admin key may be the requester's own"
)


def approver_conflict(
    requester_kind: str,
    requester_id: str,
    requester_is_admin: bool,
    approver: Principal,
    requester_person: str = "",
) -> str | None:
    """Why `approver` may be the person who made the request; None when provably someone else.

    - the same credential: refused;
    - the operator stands outside every org and holds no member credential: accepted;
    - both sides name a person (JWTs, console sessions, owned keys): refused when it is the
      same person, whichever of their keys or tokens each side used; accepted otherwise;
    - an admin's request, with an unowned API key on either side: refused (an admin can hold
      several admin keys, and a signed-in admin may hold the requesting admin key);
    - a member's request, decided by an admin: accepted (members cannot mint keys).
    """
    if approver.kind == requester_kind and approver.id == requester_id:
        return SAME_CREDENTIAL
    if approver.is_operator:
        return None
    requester_person = requester_person or (requester_id if requester_kind == "user" else "")
    approver_person = approver.person_id or (approver.id if approver.kind == "user" else "")
    if requester_person and approver_person:
        return SAME_PERSON if requester_person == approver_person else None
    if requester_is_admin and "api_key" in (requester_kind, approver.kind):
        return UNPROVABLE_ADMIN
    return None
