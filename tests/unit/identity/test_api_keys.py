from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from policy_service.identity import api_keys


def test_generated_key_has_prefix_id_and_valid_checksum() -> None:
    key = api_keys.generate()
    assert key.token.startswith("mmcp_") and len(key.token) == api_keys.TOKEN_LEN
    assert api_keys.parse_key_id(key.token) == key.key_id
    assert api_keys.matches(key.token, key.token_hash)
    assert key.token not in key.token_hash


def test_keys_are_unique() -> None:
    assert len({api_keys.generate().token for _ in range(200)}) == 200


def test_any_single_character_change_fails_the_checksum_or_hash() -> None:
    key = api_keys.generate()
    for i in range(5, len(key.token)):
        c = "A" if key.token[i] != "A" else "B"
        forged = key.token[:i] + c + key.token[i + 1 :]
        assert api_keys.parse_key_id(forged) is None or not api_keys.matches(forged, key.token_hash)


@given(st.text(max_size=80))
def test_parse_never_raises(text: str) -> None:
    api_keys.parse_key_id(text)
