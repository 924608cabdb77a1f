from __future__ import annotations

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from policy_service.identity import sessions
from policy_service.storage.models import utcnow

WELL_FORMED = "mmcs_" + "A" * 16 + "_" + "b" * 32


def test_well_formed_token_parses_to_its_id() -> None:
    assert sessions.parse_session_id(WELL_FORMED) == "A" * 16
    assert sessions.matches(WELL_FORMED, sessions.hash_token(WELL_FORMED))
    assert not sessions.matches(WELL_FORMED[:-1] + "c", sessions.hash_token(WELL_FORMED))


@given(st.text(max_size=80))
def test_anything_else_is_malformed_not_an_error(token: str) -> None:
    parsed = sessions.parse_session_id(token)
    assert parsed is None or (token.startswith("mmcs_") and len(token) == sessions.TOKEN_LEN)


def test_api_keys_are_not_sessions() -> None:
    assert not sessions.looks_like_session("mmcp_" + "A" * 54)


def test_expiry_is_capped_at_twelve_hours_and_by_the_credential() -> None:
    longest = timedelta(seconds=sessions.MAX_SECONDS)
    assert sessions.expiry(0) - utcnow() <= longest
    assert sessions.expiry(10**12) - utcnow() <= longest
    assert sessions.expiry(-5) - utcnow() <= longest
    assert sessions.expiry(60) - utcnow() <= timedelta(seconds=60)
    key_ends = utcnow() + timedelta(minutes=5)
    assert sessions.expiry(0, key_ends, None) == key_ends
