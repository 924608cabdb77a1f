"""Who is calling, once the credential has been checked."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Principal:
    kind: str  # "api_key" | "user" | "operator"
    id: str
    org_id: str
    org_slug: str
    role_id: str
    role: str
    is_admin: bool
    display: str
    # The person behind the credential: the user of a JWT or console session, the owner of
    # an API key ('' for an unowned key and the operator). Approvals compare people by it.
    person_id: str = ""

    @property
    def is_operator(self) -> bool:
        return self.kind == "operator"


OPERATOR = Principal(
    kind="operator",
    id="operator",
    org_id="",
    org_slug="",
    role_id="",
    role="operator",
    is_admin=True,
    display="operator",
)
