"""In-process per-key limits (the Redis limiter is exercised end to end)."""

from __future__ import annotations

from mcp_front.edge.limits import LimitSettings, LocalLimiter


async def test_token_bucket_allows_the_burst_then_refuses_with_a_retry_hint() -> None:
    limiter = LocalLimiter(LimitSettings(rate_per_second=0.01, burst=2, max_concurrent=0))
    results = [await limiter.admit("k") for _ in range(3)]
    assert [r.allowed for r in results] == [True, True, False]
    assert results[2].retry_after > 1
    assert (await limiter.admit("other")).allowed


async def test_concurrency_slot_is_freed_on_release() -> None:
    limiter = LocalLimiter(LimitSettings(rate_per_second=0, burst=0, max_concurrent=1))
    first = await limiter.admit("k")
    assert first.allowed and not (await limiter.admit("k")).allowed
    assert (await limiter.admit("other")).allowed
    await first.release()
    assert (await limiter.admit("k")).allowed


async def test_a_refusal_for_concurrency_spends_no_token() -> None:
    limiter = LocalLimiter(LimitSettings(rate_per_second=0.01, burst=3, max_concurrent=2))
    first, second = await limiter.admit("k"), await limiter.admit("k")
    assert first.allowed and second.allowed
    for _ in range(5):
        assert not (await limiter.admit("k")).allowed  # in flight: refused, bucket untouched
    await first.release()
    assert (await limiter.admit("k")).allowed  # the third token is still there
