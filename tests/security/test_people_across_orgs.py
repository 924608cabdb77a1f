"""Attack matrix: an org admin acting on people of another org. A person (email, password) is
global; memberships are per org. An org admin may neither disturb another org's member nor
hand another org an account whose password it knows.

Regressions:
- `AddMember` matched emails exactly while sign-in matches them lower-cased: an admin of any
  org adding `Admin@Victim.example` created a second account, and every password sign-in of
  the victim's `admin@victim.example` then failed (INTERNAL), in every org.
- `AddMember` / `CreatePerson` added an account of another org to the caller's org: that org's
  admins could then no longer reset or disable their own member (`PERSON_IN_OTHER_ORGS`), and an
  account one org created (with a password its admin was shown) could be added by another.
- Two concurrent `AddMember` calls for one new email (in any case) both found no account and
  both inserted one: the loser failed with INTERNAL (a unique-key conflict), and before emails
  were normalised the two made two accounts. The loser now runs again and finds the winner's."""

from __future__ import annotations

import asyncio

import pytest

from policy_service import errors
from tests.support.attack_stack import Stack

pytestmark = pytest.mark.asyncio(loop_scope="module")

PASSWORD = "correct horse battery staple 7"


async def _person(stack: Stack, org: str, email: str) -> None:
    async with stack.client(f"{org}:admin") as admin:
        await admin.create_person("", email, "Victim", "admin", PASSWORD)


async def test_a_case_variant_of_another_orgs_email_does_not_lock_its_person_out(stack: Stack) -> None:
    await _person(stack, "globex", "vic.case@globex.example")
    async with stack.client("acme:admin") as acme:
        with pytest.raises(errors.PermissionDenied):
            await acme.add_member("", "Vic.Case@Globex.Example", "member")
        with pytest.raises(errors.PermissionDenied):
            await acme.add_member("", " VIC.CASE@globex.example", "admin")
    assert (await stack.operator.login("vic.case@globex.example", PASSWORD, "globex")).access_token
    assert not await stack.rows_where("lower(actor_display) = :v AND status = 'internal'", "vic.case@globex.example")


async def test_concurrent_case_variants_of_a_new_email_end_in_one_account(stack: Stack) -> None:
    async with stack.client("acme:admin") as acme:
        for n in range(8):
            spellings = (f"Race.{n}@Acme.example", f"race.{n}@acme.EXAMPLE")
            added = await asyncio.gather(*(acme.add_member("", email, "member") for email in spellings))
            assert {m.email for m in added} == {f"race.{n}@acme.example"}
            assert added[0].user_id == added[1].user_id
        emails = [p.email for p in await acme.list_people("") if p.email.startswith("race.")]
    assert sorted(emails) == sorted({f"race.{n}@acme.example" for n in range(8)})
    assert not await stack.rows_where("method = :v AND status = 'internal'", "admin/AddMember")


async def test_an_org_admin_cannot_add_another_orgs_person(stack: Stack) -> None:
    await _person(stack, "globex", "vic.lock@globex.example")
    async with stack.client("acme:admin") as acme:
        with pytest.raises(errors.PermissionDenied):
            await acme.add_member("", "vic.lock@globex.example", "member")
        with pytest.raises((errors.PermissionDenied, errors.AlreadyExists)):
            await acme.create_person("", "vic.lock@globex.example", "Renamed by acme", "member", "")
        assert all(p.email != "vic.lock@globex.example" for p in await acme.list_people(""))
    async with stack.client("globex:admin") as globex:  # globex keeps control of its member
        disabled = await globex.set_person_disabled("", "vic.lock@globex.example", True)
        assert disabled.HasField("disabled_at") and disabled.display_name == "Victim"


async def test_an_account_one_org_created_is_not_added_by_another_org(stack: Stack) -> None:
    """acme's admin creates `vic.pre@globex.example` first and is shown its password; globex's
    admin, told the account exists, must not be able to add it (the operator can)."""
    async with stack.client("acme:admin") as acme:
        created = await acme.create_person("", "vic.pre@globex.example", "Pre", "member", "")
    assert created.generated_password
    async with stack.client("globex:admin") as globex:
        with pytest.raises(errors.PermissionDenied):
            await globex.add_member("", "vic.pre@globex.example", "admin")
    with pytest.raises(errors.PolicyError):
        await stack.operator.login("vic.pre@globex.example", created.generated_password, "globex")
    assert (await stack.operator.add_member("globex", "vic.pre@globex.example", "member")).email


async def test_an_org_admin_still_adds_new_people_and_changes_roles(stack: Stack) -> None:
    async with stack.client("acme:admin") as acme:
        added = await acme.add_member("", "New.Person@Acme.example", "member")
        assert added.email == "new.person@acme.example"
        assert (await acme.add_member("", "new.person@acme.example", "admin")).role == "admin"
        assert (await acme.add_member("", "NEW.PERSON@acme.example", "member")).user_id == added.user_id


async def test_an_org_admin_changes_the_role_of_its_own_member_who_is_in_another_org_too(stack: Stack) -> None:
    """The refusal is for adding another org's person; a person the operator put in both orgs
    is already acme's member, and acme's admin sets their role in acme (AddMember is the only
    way to). Before, that was refused too (PERSON_IN_OTHER_ORGS)."""
    await _person(stack, "globex", "vic.both@globex.example")
    await stack.operator.add_member("acme", "vic.both@globex.example", "member")
    async with stack.client("acme:admin") as acme:
        assert (await acme.add_member("", "vic.both@globex.example", "admin")).role == "admin"
    async with stack.client("globex:admin") as globex:  # globex's own membership is untouched
        members = {p.email: p.role for p in await globex.list_people("")}
    assert members["vic.both@globex.example"] == "admin"
