"""The answer budget's rules on their own (docs/adr/0050): small answers never wait, large
ones are admitted first come first served, one larger than the budget is refused at once,
and everything a request held is given back when it ends. The front end to end:
tests/security/test_answer_budget.py."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from mcp_front.backends.answer_budget import MIB, AnswerBudget, AnswerOverBudget, hold_answer, own_holding


async def _held_until(
    budget: AnswerBudget, size: int, release: asyncio.Event, order: list[int], admitted: asyncio.Event
) -> None:
    with budget.holding():
        await hold_answer(size)
        order.append(size)
        admitted.set()
        await release.wait()


async def test_outside_a_request_nothing_is_held() -> None:
    await hold_answer(100 * MIB)  # a catalogue sync: bounded on its own


async def test_small_answers_pass_a_full_budget_and_are_counted() -> None:
    budget = AnswerBudget(4 * MIB, wait_seconds=0.0)
    with budget.holding():
        await hold_answer(4 * MIB)
        with budget.holding():
            await hold_answer(MIB)  # past the budget: a small answer never waits
            assert budget.in_use == 5 * MIB
        assert budget.in_use == 4 * MIB
    assert budget.in_use == 0


async def test_a_large_answer_that_does_not_fit_is_refused_after_its_wait() -> None:
    budget = AnswerBudget(4 * MIB, wait_seconds=0.0)
    with budget.holding():
        await hold_answer(3 * MIB)
        with budget.holding(), pytest.raises(AnswerOverBudget, match="too many large answers"):
            await hold_answer(2 * MIB)
    assert budget.in_use == 0


async def test_an_answer_larger_than_the_budget_is_refused_at_once() -> None:
    budget = AnswerBudget(4 * MIB, wait_seconds=3600.0)
    with budget.holding(), pytest.raises(AnswerOverBudget, match=r"larger than .* \(4 MiB\)"):
        await hold_answer(4 * MIB + 1)
    assert budget.in_use == 0


async def test_a_request_holds_its_largest_answer_not_the_sum() -> None:
    budget = AnswerBudget(4 * MIB, wait_seconds=0.0)
    with budget.holding():
        for size in (2 * MIB, 3 * MIB, MIB, 3 * MIB):  # a handshake, a retry, a stream's events
            await hold_answer(size)
        assert budget.in_use == 3 * MIB


async def test_waiting_answers_are_admitted_in_order_as_room_is_given_back() -> None:
    budget = AnswerBudget(4 * MIB, wait_seconds=3600.0)
    release = [asyncio.Event() for _ in range(3)]
    admitted = [asyncio.Event() for _ in range(3)]
    order: list[int] = []
    sizes = (3 * MIB, 3 * MIB, 2 * MIB)
    runs = []
    for n, size in enumerate(sizes):
        runs.append(asyncio.ensure_future(_held_until(budget, size, release[n], order, admitted[n])))
        await asyncio.sleep(0)  # each reaches the line before the next
    await admitted[0].wait()
    assert order == [3 * MIB] and budget.in_use == 3 * MIB  # the 2 MiB one does not jump the line
    release[0].set()
    await admitted[1].wait()
    assert order == [3 * MIB, 3 * MIB] and not admitted[2].is_set()
    release[1].set()
    release[2].set()
    await asyncio.gather(*runs)
    assert order == [3 * MIB, 3 * MIB, 2 * MIB] and budget.in_use == 0


async def test_a_run_outliving_its_request_holds_its_own_share() -> None:
    budget = AnswerBudget(4 * MIB, wait_seconds=0.0)
    with budget.holding():
        with own_holding():
            await hold_answer(2 * MIB)
            assert budget.in_use == 2 * MIB
        assert budget.in_use == 0  # given back when the run ended, whatever its request does


def test_a_budget_below_a_small_answer_is_refused() -> None:
    with pytest.raises(ValueError):
        AnswerBudget(MIB - 1, wait_seconds=1.0)


async def test_work_a_request_started_holds_nothing_once_the_request_ended() -> None:
    """A backend's standalone stream opened during a call inherits the call's context; after
    the call it reads events bounded one by one, not against the ended request's share."""
    budget = AnswerBudget(4 * MIB, wait_seconds=0.0)
    ended = asyncio.Event()

    async def stream_reader() -> None:
        await ended.wait()
        await hold_answer(3 * MIB)

    with budget.holding():
        reader = asyncio.ensure_future(stream_reader())
    ended.set()
    await reader
    assert budget.in_use == 0


async def test_a_holding_that_ends_while_a_task_of_its_request_waits_leaks_nothing() -> None:
    """Red team (review 2): a task its request started (the SDK's handler, a relayed call)
    may still wait for room when the request ends and gives its holding back; admitted later,
    its share was counted on a closed holding and never given back (in_use never reached 0)."""
    budget = AnswerBudget(4 * MIB, wait_seconds=3600.0)
    with budget.holding() as first:
        await hold_answer(3 * MIB)
        with budget.holding():
            waiting = asyncio.ensure_future(hold_answer(2 * MIB))  # shares the second request's holding
            await asyncio.sleep(0)
        first.close()  # the first answer is written: room for the one still waiting
        await waiting
    assert budget.in_use == 0


async def test_two_reads_of_one_request_waiting_at_once_leak_nothing() -> None:
    """Red team (review 2): two reads sharing a request's holding (a task it started, such as a
    backend listener before review 2, beside its own answer) both waited for room from the same
    high-water mark; each took its own `extra` but the holding kept only the larger size, so
    the other's share was never given back."""
    budget = AnswerBudget(8 * MIB, wait_seconds=3600.0)
    with budget.holding() as first:
        await hold_answer(7 * MIB)
        with budget.holding():
            both = asyncio.gather(hold_answer(3 * MIB), hold_answer(2 * MIB))
            await asyncio.sleep(0)
            first.close()
            await both
    assert budget.in_use == 0


async def test_one_orgs_answers_leave_another_org_room() -> None:
    """A backend that announces big answers (or many small ones) and sends nothing pins only
    its own org's share, as others see it: another org's large answer still gets in at once."""
    budget = AnswerBudget(8 * MIB, wait_seconds=0.0)
    with contextlib.ExitStack() as held:
        for _ in range(8):  # small answers never wait: they fill the whole budget
            held.enter_context(budget.holding("noisy"))
            await hold_answer(MIB)
        assert budget.in_use == 8 * MIB
        with budget.holding("quiet"):
            await hold_answer(3 * MIB)  # the noisy org counts as its half (4 MiB) here
            with budget.holding("quiet"), pytest.raises(AnswerOverBudget):
                await hold_answer(2 * MIB)  # but the quiet org's own answers still count in full
    assert budget.in_use == 0


async def test_an_orgs_waiting_line_never_blocks_another_org() -> None:
    budget = AnswerBudget(8 * MIB, wait_seconds=3600.0)
    release = asyncio.Event()
    admitted = [asyncio.Event() for _ in range(4)]
    order: list[int] = []

    async def held(org: str, size: int, n: int) -> None:
        with budget.holding(org):
            await hold_answer(size)
            order.append(size)
            admitted[n].set()
            await release.wait()

    runs = [asyncio.ensure_future(held("noisy", 3 * MIB, n)) for n in range(2)]
    await asyncio.gather(admitted[0].wait(), admitted[1].wait())
    runs.append(asyncio.ensure_future(held("noisy", 3 * MIB, 2)))  # 9 MiB would pass the budget: it waits
    await asyncio.sleep(0)
    assert not admitted[2].is_set()
    with budget.holding("quiet"):
        await hold_answer(2 * MIB)  # not behind the noisy org's line
    release.set()
    await asyncio.gather(*runs)
    assert order == [3 * MIB, 3 * MIB, 3 * MIB] and budget.in_use == 0
