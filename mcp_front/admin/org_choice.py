"""Which org a console page shows. People and keys belong to one org; the operator belongs
to none and picks one on each page (the `org` parameter), the first org by default."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from mcp_front.admin.rest import AdminApi
from policy_service.wire_views import PrincipalView, principal_view


@dataclass(frozen=True, slots=True)
class OrgChoice:
    me: PrincipalView
    # The orgs the operator picks from ([] for everyone else: their org is implied).
    orgs: list[str]
    # What to send as `org` in RPCs: the operator's pick, '' for an org's own people.
    org: str

    @property
    def missing(self) -> bool:
        """An operator on a gateway that has no orgs yet: nothing to show."""
        return self.me.kind == "operator" and not self.org


async def whoami(api: AdminApi, request: Request, csrf: str | None = None) -> PrincipalView:
    """Who the signed-in caller is (WhoAmI, with the caller's own credential)."""
    return principal_view(await api.call(request, lambda c: c.whoami(), form_csrf=csrf))


async def choose_org(api: AdminApi, request: Request, org: str, csrf: str | None = None) -> OrgChoice:
    me = await whoami(api, request, csrf)
    if me.kind != "operator":
        return OrgChoice(me, [], "")
    orgs = [o.slug for o in await api.call(request, lambda c: c.list_orgs(), form_csrf=csrf)]
    return OrgChoice(me, orgs, org if org in orgs else (orgs[0] if orgs else ""))
