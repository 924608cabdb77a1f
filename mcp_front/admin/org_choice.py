"""Which org a console page shows. People and keys belong to one org; the operator belongs
to none and picks one on each page (the `org` parameter), the first org by default."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from mcp_front.admin.rest import AdminApi
from policy_service._generated.monomcp.policy.v1.types_pb2 import Principal


@dataclass(frozen=True, slots=True)
class OrgChoice:
    me: Principal
    # The orgs the operator picks from ([] for everyone else: their org is implied).
    orgs: list[str]
    # What to send as `org` in RPCs: the operator's pick, '' for an org's own people.
    org: str

    @property
    def missing(self) -> bool:
        """An operator on a gateway that has no orgs yet: nothing to show."""
        return self.me.kind == "operator" and not self.org


async def choose_org(api: AdminApi, request: Request, org: str, csrf: str | None = None) -> OrgChoice:
    me = await api.call(request, lambda c: c.whoami(), form_csrf=csrf)
    if me.kind != "operator":
        return OrgChoice(me, [], "")
    orgs = [o.slug for o in await api.call(request, lambda c: c.list_orgs(), form_csrf=csrf)]
    return OrgChoice(me, orgs, org if org in orgs else (orgs[0] if orgs else ""))
