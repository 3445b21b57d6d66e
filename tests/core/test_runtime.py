"""The process runtime's per-loop entries are closed with their loop, and start-up objects are
kept out of the garbage collector's way."""

from __future__ import annotations

import asyncio
import gc
import warnings

import aiohttp

from apps.core.memory import heap_freeze
from apps.core.runtime import Runtime


def test_a_loop_that_ends_without_a_stop_closes_its_entries():
    rt = Runtime()
    closed: list[str] = []

    async def use() -> aiohttp.ClientSession:
        async def close(session: aiohttp.ClientSession) -> None:
            await session.close()
            closed.append("session")

        return rt.loop_get("session", aiohttp.ClientSession, close=close)

    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        session = asyncio.run(use())
        gc.collect()

    assert closed == ["session"]
    assert session.closed


def test_a_stopped_loop_closes_its_entries_once():
    rt = Runtime()
    closed: list[str] = []

    async def use_and_stop() -> None:
        rt.loop_get("thing", object, close=lambda _thing: closed.append("thing"))
        await rt.stop()
        rt.loop_get("thing", object, close=lambda _thing: closed.append("again"))  # made again on use

    asyncio.run(use_and_stop())

    assert closed == ["thing", "again"]  # the second by the loop's end


def test_frozen_start_up_objects_are_out_of_the_collectors_reach():
    made_at_start_up = [[i] for i in range(1000)]  # lists: always tracked by the collector
    try:
        heap_freeze()
        collected = {id(o) for generation in range(3) for o in gc.get_objects(generation)}
        assert gc.get_freeze_count() >= len(made_at_start_up)
        assert not any(id(o) in collected for o in made_at_start_up)
        made_later = [0]
        assert any(o is made_later for o in gc.get_objects(0))  # what comes later is collected
    finally:
        gc.unfreeze()
