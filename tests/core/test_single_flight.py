"""Identical calls in flight together share one run (apps/core/single_flight.py)."""

import asyncio

import pytest

from apps.core.single_flight import SingleFlight


def run(coro):
    return asyncio.run(coro)


def test_callers_of_one_key_at_once_share_one_run_and_a_later_caller_starts_another():
    async def scenario():
        flights, release, started = SingleFlight(), asyncio.Event(), []

        async def work(key):
            started.append(key)
            await release.wait()
            return f"result {key}"

        callers = [asyncio.ensure_future(flights.run(key, lambda key=key: work(key))) for key in "aab" * 2]
        await asyncio.sleep(0)
        release.set()
        together = await asyncio.gather(*callers)
        later = await flights.run("a", lambda: work("a"))
        return together, later, started, flights.runs

    together, later, started, runs = run(scenario())
    assert together == ["result a", "result a", "result b"] * 2
    assert later == "result a"
    assert started == ["a", "b", "a"] and runs == 3  # the later call ran on its own


def test_a_failed_run_fails_every_caller_and_the_next_call_runs_again():
    async def scenario():
        flights, calls = SingleFlight(), []

        async def failing():
            calls.append(1)
            await asyncio.sleep(0)
            raise RuntimeError("search unavailable")

        results = await asyncio.gather(*(flights.run("q", failing) for _ in range(3)), return_exceptions=True)
        with pytest.raises(RuntimeError):
            await flights.run("q", failing)
        return results, calls

    results, calls = run(scenario())
    assert [str(r) for r in results] == ["search unavailable"] * 3
    assert calls == [1, 1]


def test_one_caller_cancelled_leaves_the_run_to_the_others_and_the_last_one_cancels_it():
    async def scenario():
        flights, release, landed = SingleFlight(), asyncio.Event(), []

        async def work():
            await release.wait()
            return "done"

        first = asyncio.ensure_future(flights.run("k", work, landed.append))
        second = asyncio.ensure_future(flights.run("k", work, landed.append))
        await asyncio.sleep(0)
        first.cancel()
        await asyncio.sleep(0)
        release.set()
        kept = await second

        release.clear()
        alone = asyncio.ensure_future(flights.run("k", work, landed.append))
        await asyncio.sleep(0)
        alone.cancel()
        await asyncio.gather(alone, return_exceptions=True)
        await asyncio.sleep(0)
        return first.cancelled(), kept, alone.cancelled(), [t.cancelled() for t in landed]

    first_cancelled, kept, alone_cancelled, landed = run(scenario())
    assert first_cancelled and kept == "done"
    assert alone_cancelled and landed == [False, True]
