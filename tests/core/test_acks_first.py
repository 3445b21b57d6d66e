"""apps.core.acks_first: what waits for pending acks, and for how long."""

import asyncio

from apps.core.acks_first import acking, acks_settled


async def test_nothing_waits_when_no_ack_is_pending():
    await asyncio.wait_for(acks_settled(max_wait_s=5), 0.1)


async def test_a_waiter_resumes_when_the_last_pending_ack_is_sent():
    first, second = acking(), acking()
    first.__enter__()
    second.__enter__()
    waiter = asyncio.create_task(acks_settled(max_wait_s=5))
    await asyncio.sleep(0.05)
    first.__exit__(None, None, None)
    await asyncio.sleep(0.05)
    assert not waiter.done()  # one ack still pending
    second.__exit__(None, None, None)
    await asyncio.wait_for(waiter, 0.1)


async def test_a_failed_ack_counts_as_settled():
    try:
        with acking():
            raise RuntimeError("the frame failed")
    except RuntimeError:
        pass
    await asyncio.wait_for(acks_settled(max_wait_s=5), 0.1)


async def test_a_waiter_gives_up_after_its_cap():
    with acking():
        loop = asyncio.get_running_loop()
        started = loop.time()
        await acks_settled(max_wait_s=0.2)
        assert loop.time() - started >= 0.2
