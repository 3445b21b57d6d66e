"""apps/core/redis.py: a loop's short commands share a bounded pool; blocking reads have their own."""

import asyncio

from apps.core.redis import POOL_SIZE, redis_async, redis_async_waits, redis_key


def _opened(client) -> int:
    pool = client.connection_pool
    return len(pool._available_connections) + len(pool._in_use_connections)


async def test_a_burst_of_commands_waits_for_a_connection_instead_of_opening_hundreds():
    client = redis_async()
    key = redis_key("pool-test")
    try:
        results = await asyncio.gather(*(client.incr(key) for _ in range(500)))
        assert sorted(results) == list(range(1, 501))
        # 500 at once on a pool of 64: they waited for connections and used more than one.
        assert POOL_SIZE == 64
        assert client.connection_pool.max_connections == POOL_SIZE
        assert 1 < _opened(client) <= POOL_SIZE
    finally:
        await client.delete(key)


async def test_blocking_reads_do_not_hold_the_connections_of_short_commands():
    waits = [asyncio.ensure_future(redis_async_waits().blpop([redis_key("pool-test-wait", i)], timeout=2))
             for i in range(POOL_SIZE + 10)]
    await asyncio.sleep(0.3)
    assert await asyncio.wait_for(redis_async().ping(), 1)  # every waits-pool connection is blocked
    assert _opened(redis_async_waits()) == POOL_SIZE + 10
    assert await asyncio.gather(*waits) == [None] * (POOL_SIZE + 10)
