"""Demo data (DESIGN "Demo data"): mono/seo public; acme/seo and acme/custom-growth-toolkit
private; globex to show the 404; admin and member keys per org; an admin person with a
password per org; every permission level, an org-wide default and a role override.
Idempotent; issues fresh keys and passwords on every run, and the previous run's demo keys
stop working (their secrets were shown once and are stored nowhere, so they cannot be shown
again): one set of demo keys is live after any number of runs (docs/adr/0051)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from policy_service.identity import directory, passwords, people
from policy_service.permissions import rules
from policy_service.storage.models import Organization

ORGS = {"mono": "Mono", "acme": "Acme Corp", "globex": "Globex"}
TOOLKITS = [
    ("mono", "seo", "SEO toolkit", "public", None),
    ("acme", "seo", "Acme SEO (private)", "private", None),
    (
        "acme",
        "custom-growth-toolkit",
        "Acme growth toolkit",
        "private",
        {"keyword_density", "readability", "slugify", "publish_page", "list_pages"},
    ),
]
MEMBERS = [("acme", "admin@acme.example", "admin"), ("acme", "dev@acme.example", "member")]
# One person per org who signs in with a password (console, /api/v1/auth/login); a fresh
# password is set and printed on every seed, like the demo keys.
PEOPLE = {"mono": "admin@mono.example", "acme": "admin@acme.example", "globex": "admin@globex.example"}
# The seed's keys, by name in the demo orgs: unowned, one per role (people's keys have an owner).
DEMO_KEY_NAMES = {role: f"demo {role}" for role in ("admin", "member")}


async def demo_catalogue() -> list[dict[str, Any]]:
    """The demo backend's tools/list, in process, with the owner defaults it ships."""
    from demo_backend.server import DEFAULT_PERMISSIONS, build_server

    tools = await build_server().list_tools()
    return [
        {
            "name": t.name,
            "description": t.description or "",
            "input_schema_json": json.dumps(t.input_schema),
            "output_schema_json": json.dumps(t.output_schema) if t.output_schema else "",
            "annotations_json": t.annotations.model_dump_json(exclude_none=True) if t.annotations else "",
            "default_permission": DEFAULT_PERMISSIONS.get(t.name, "always_allow"),
        }
        for t in tools
    ]


async def _org(session: AsyncSession, slug: str) -> Organization:
    org = (await session.execute(select(Organization).where(Organization.slug == slug))).scalar_one_or_none()
    return org if org is not None else await directory.create_org(session, slug, ORGS[slug])


async def seed(sessions: async_sessionmaker[AsyncSession], backend_url: str, public_url: str) -> dict[str, Any]:
    catalogue = await demo_catalogue()
    keys: dict[str, str] = {}
    people_passwords = {org: passwords.generate() for org in PEOPLE}
    hashes = {org: await passwords.hash_password(pw) for org, pw in people_passwords.items()}
    async with sessions() as session, session.begin():
        orgs = {slug: await _org(session, slug) for slug in ORGS}
        for org_slug, email, role_name in MEMBERS:
            await directory.add_member(session, orgs[org_slug].id, email, role_name, by_operator=True)
        for org_slug, email in PEOPLE.items():
            person = await people.create(
                session, orgs[org_slug].id, email, email.split("@")[0].title(), "admin", "", by_operator=True
            )
            await people.set_password(session, person, hashes[org_slug])
        toolkits = {}
        for org_slug, slug, name, visibility, subset in TOOLKITS:
            toolkit = await rules.upsert_toolkit(
                session,
                orgs[org_slug].id,
                {
                    "slug": slug,
                    "name": name,
                    "visibility": visibility,
                    "backend_url": backend_url,
                    "description": f"Demo {name}: deterministic SEO helpers and a page store.",
                },
            )
            tools = [t for t in catalogue if subset is None or t["name"] in subset]
            await rules.sync_tools(session, toolkit, tools, prune=True)
            toolkits[(org_slug, slug)] = toolkit
        # acme admins publish on their own toolkit directly; members still need approval.
        publish = await rules.find_tool(session, toolkits[("acme", "seo")], "publish_page")
        await rules.set_role_override(session, orgs["acme"].id, "admin", publish, "always_allow")
        # acme does not let anyone publish through mono's public toolkit.
        mono_publish = await rules.find_tool(session, toolkits[("mono", "seo")], "publish_page")
        await rules.set_org_default(session, orgs["acme"].id, mono_publish, "blocked")
        await directory.retire_unowned_keys(session, [org.id for org in orgs.values()], list(DEMO_KEY_NAMES.values()))
        for slug, org in orgs.items():
            for role_name, key_name in DEMO_KEY_NAMES.items():
                issued = await directory.create_api_key(session, org.id, key_name, role_name, 0)
                keys[f"{slug}:{role_name}"] = issued.secret
    endpoints = [f"{public_url.rstrip('/')}/{o}/{t}/mcp" for o, t, *_ in TOOLKITS]
    signs_in = {org: {"email": PEOPLE[org], "password": pw} for org, pw in people_passwords.items()}
    return {"api_keys": keys, "endpoints": endpoints, "people": signs_in}
