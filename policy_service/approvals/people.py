"""Who counts as the same person when deciding an approval (ADR 0004).

A JWT names a person (its user id). An API key names none yet: it is an org credential
with a role, and any admin of the org can mint as many admin keys as they like. So we
only accept an approver who is provably someone other than the requester. Pure: no I/O.
"""

from __future__ import annotations

from policy_service.identity.principal import Principal

SAME_CREDENTIAL = "nobody approves their own request"
UNPROVABLE_ADMIN = (
    "an admin's request needs a second admin who signs in as a person (a JWT of another user) "
    "or the operator: API keys do not name their holder, so an admin key may be the requester's own"
)


def approver_conflict(
    requester_kind: str, requester_id: str, requester_is_admin: bool, approver: Principal
) -> str | None:
    """Why `approver` may be the person who made the request; None when provably someone else.

    - the same credential, or the same user (all of one user's tokens): refused;
    - the operator stands outside every org and holds no member credential: accepted;
    - an admin's request, with an API key on either side: refused (an admin can hold
      several admin keys, and a signed-in admin may hold the requesting admin key);
    - a member's request, decided by an admin: accepted (members cannot mint keys).
    """
    if approver.kind == requester_kind and approver.id == requester_id:
        return SAME_CREDENTIAL
    if approver.is_operator:
        return None
    if requester_is_admin and "api_key" in (requester_kind, approver.kind):
        return UNPROVABLE_ADMIN
    return None
