"""One status table: every domain error a server sends reaches a client as the same error."""

from __future__ import annotations

import grpc
import pytest

from policy_service import errors
from policy_service.status_codes import CODES, code_of, error_for, status_name


@pytest.mark.parametrize("kind", list(CODES))
def test_every_domain_error_round_trips(kind: type[errors.PolicyError]) -> None:
    code = code_of(kind("x"))
    assert error_for(code) is kind
    assert error_for(grpc.StatusCode[status_name(code)]) is kind


def test_unreachable_or_late_is_unavailable_and_the_rest_is_a_plain_policy_error() -> None:
    assert error_for(grpc.StatusCode.UNAVAILABLE) is errors.PolicyUnavailable
    assert error_for(grpc.StatusCode.DEADLINE_EXCEEDED) is errors.PolicyUnavailable
    assert error_for(grpc.StatusCode.INTERNAL) is errors.PolicyError
    assert code_of(errors.PolicyError("bug")) == grpc.StatusCode.UNKNOWN.value[0]
    assert status_name(99) == "UNKNOWN"
