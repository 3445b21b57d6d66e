"""The channel layer serves a process's own sockets from memory and the others' through Redis
(apps/core/channel_layer.py). Two layer instances stand for two processes on one Redis."""

import asyncio
import threading

import pytest
import redis
from asgiref.sync import async_to_sync
from django.conf import settings

from apps.core.channel_layer import LocalFanoutChannelLayer
from apps.devstack.embedded import EmbeddedRedis

GROUP = "conv.layer-test"


def _layer() -> LocalFanoutChannelLayer:
    return LocalFanoutChannelLayer(**settings.CHANNEL_LAYERS["default"]["CONFIG"])


def _redis_waiting(layer: LocalFanoutChannelLayer, channel: str) -> int:
    """Messages waiting in Redis for the process that holds `channel`."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        return client.zcard(layer.prefix + layer.non_local_name(channel))
    finally:
        client.close()


async def _socket_waiting(layer: LocalFanoutChannelLayer, *, settle_s: float) -> asyncio.Future:
    """A socket of `layer`'s process in GROUP, its receive already waiting (for `settle_s`)."""
    channel = await layer.new_channel()
    await layer.group_add(GROUP, channel)
    receiving = asyncio.ensure_future(layer.receive(channel))
    await asyncio.sleep(settle_s)
    return receiving


@pytest.fixture
async def two_processes():
    here, elsewhere = _layer(), _layer()
    yield here, elsewhere
    await here.flush()
    for layer in (here, elsewhere):
        await layer.close_pools()


async def test_a_group_send_reaches_members_here_from_memory_and_elsewhere_through_redis(two_processes):
    here, elsewhere = two_processes
    mine, theirs = await here.new_channel(), await elsewhere.new_channel()
    await here.group_add(GROUP, mine)
    await elsewhere.group_add(GROUP, theirs)

    await here.group_send(GROUP, {"type": "conv.event", "n": 1})

    assert _redis_waiting(here, mine) == 0  # nothing for this process went through Redis
    assert _redis_waiting(elsewhere, theirs) == 1
    assert await asyncio.wait_for(here.receive(mine), 2) == {"type": "conv.event", "n": 1}
    assert await asyncio.wait_for(elsewhere.receive(theirs), 2) == {"type": "conv.event", "n": 1}


async def test_members_here_receive_in_order_and_what_the_sender_changes_after_does_not_reach_them(
    two_processes,
):
    here, _ = two_processes
    first, second = await here.new_channel(), await here.new_channel()
    for channel in (first, second):
        await here.group_add(GROUP, channel)

    message = {"type": "conv.event", "event": {"seq": 0}}
    for seq in range(1, 51):
        message["event"]["seq"] = seq
        await here.group_send(GROUP, message)
    message["event"]["seq"] = 999

    for channel in (first, second):
        seqs = [(await asyncio.wait_for(here.receive(channel), 2))["event"]["seq"] for _ in range(50)]
        assert seqs == list(range(1, 51))


async def test_a_socket_here_hears_a_send_before_redis_answers_the_group_membership(two_processes):
    # Under a burst each Redis round trip waits a pass of a crowded loop: a token for a socket
    # of this process must not wait for the read of the group's members elsewhere.
    here, _ = two_processes
    receiving = await _socket_waiting(here, settle_s=0.2)
    with redis.Redis.from_url(settings.REDIS_URL) as other:
        other.execute_command("CLIENT", "PAUSE", 500)  # every command waits 0.5 s

    sending = asyncio.ensure_future(here.group_send(GROUP, {"type": "x", "n": 6}))

    assert await asyncio.wait_for(receiving, 2) == {"type": "x", "n": 6}
    assert not sending.done()  # the membership read is still waiting for Redis
    await sending


async def test_a_socket_that_left_the_group_receives_nothing_more(two_processes):
    here, elsewhere = two_processes
    mine, theirs = await here.new_channel(), await elsewhere.new_channel()
    await here.group_add(GROUP, mine)
    await elsewhere.group_add(GROUP, theirs)
    await here.group_discard(GROUP, mine)

    await here.group_send(GROUP, {"type": "conv.event", "n": 2})
    await elsewhere.group_send(GROUP, {"type": "conv.event", "n": 3})

    # Two senders: the one in the socket's own process is not held behind Redis.
    assert sorted([(await elsewhere.receive(theirs))["n"] for _ in range(2)]) == [2, 3]
    await here.send(mine, {"type": "marker"})  # through Redis: it would queue behind a leak
    assert await asyncio.wait_for(here.receive(mine), 2) == {"type": "marker"}


async def test_a_send_from_another_threads_loop_reaches_a_socket_here(two_processes):
    # Sync code run in a plain thread (a Celery task's, a pool's) sends with async_to_sync on a
    # loop of its own; the socket's loop must be woken, not the sender's.
    here, _ = two_processes
    receiving = await _socket_waiting(here, settle_s=0)

    sender = threading.Thread(target=async_to_sync(here.group_send), args=(GROUP, {"type": "x", "n": 4}))
    sender.start()
    await asyncio.to_thread(sender.join)

    assert await asyncio.wait_for(receiving, 2) == {"type": "x", "n": 4}


async def test_a_socket_already_waiting_hears_a_send_from_its_own_process(two_processes):
    # Its wait must not be a read from Redis that only a Redis message ends.
    here, _ = two_processes
    receiving = await _socket_waiting(here, settle_s=0.2)

    await here.group_send(GROUP, {"type": "x", "n": 5})

    assert await asyncio.wait_for(receiving, 2) == {"type": "x", "n": 5}


async def test_sockets_waiting_when_redis_goes_away_raise_instead_of_waiting_forever(tmp_path):
    scratch = EmbeddedRedis(tmp_path / "redis", run_dir=tmp_path / "run")
    scratch.start()
    layer = LocalFanoutChannelLayer(hosts=[{"address": scratch.url(), "socket_timeout": 2}])
    try:
        waiting = [asyncio.ensure_future(layer.receive(await layer.new_channel())) for _ in range(3)]
        await asyncio.sleep(0.2)
        scratch.stop()
        results = await asyncio.wait_for(asyncio.gather(*waiting, return_exceptions=True), 10)
    finally:
        scratch.stop()
    assert all(isinstance(r, Exception) for r in results), results  # CancelledError is not one


async def test_a_burst_of_sends_waits_for_the_pools_connections_instead_of_opening_more(two_processes):
    here, elsewhere = two_processes
    channels = [await elsewhere.new_channel() for _ in range(300)]
    await asyncio.gather(*(here.group_add(f"{GROUP}-{i}", c) for i, c in enumerate(channels)))
    await asyncio.gather(*(here.group_send(f"{GROUP}-{i}", {"type": "conv.event", "n": i})
                           for i in range(len(channels))))

    # 300 sends at once on a pool of 64: they waited for connections (channels-redis's own pool
    # raises "Too many connections" here), and used more than one.
    pool = here.connection(0).connection_pool
    opened = len(pool._available_connections) + len(pool._in_use_connections)
    # The pool is built from the settings' bound (the old chained assert), and that bound is 64.
    assert pool.max_connections == settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0]["max_connections"]
    assert pool.max_connections == 64
    assert 1 < opened <= pool.max_connections
    received = await asyncio.gather(*(asyncio.wait_for(elsewhere.receive(c), 5) for c in channels))
    assert [m["n"] for m in received] == list(range(300))


async def test_joining_a_group_keeps_membership_in_redis_for_the_group_expiry(two_processes):
    here, elsewhere = two_processes
    theirs = await elsewhere.new_channel()
    await here.group_add(GROUP, theirs)

    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        key = here._group_key(GROUP)
        assert client.zrange(key, 0, -1) == [theirs.encode()]
        assert here.group_expiry - 5 <= client.ttl(key) <= here.group_expiry
    finally:
        client.close()
    await here.group_send(GROUP, {"type": "conv.event", "n": 1})
    assert (await asyncio.wait_for(elsewhere.receive(theirs), 5))["n"] == 1


async def test_one_event_for_several_groups_is_one_round_trip_after_the_commands_that_go_first(
    two_processes, monkeypatch,
):
    # A durable event goes to the conversation's sockets, its agents and the customer's tabs, after its seq
    # mark (apps/conversations/publisher.py): mark and members' reads share one trip, and no
    # socket, here or elsewhere, hears of the event before that trip has set the mark.
    here, elsewhere = two_processes
    groups = [f"{GROUP}-many-{i}" for i in range(3)]
    mine = [await here.new_channel() for _ in groups]
    theirs = [await elsewhere.new_channel() for _ in groups]
    for group, a, b in zip(groups, mine, theirs, strict=True):
        await here.group_add(group, a)
        await elsewhere.group_add(group, b)
    mark = f"{settings.KEFU_REDIS_PREFIX}:test:mark"
    client = here.connection(0)
    await client.delete(mark)
    trips, heard_before_mark = [], []
    real_pipeline, real_deliver = client.pipeline, here._deliver_local
    monkeypatch.setattr(client, "pipeline", lambda **kw: trips.append(kw) or real_pipeline(**kw))

    def deliver(members, message):
        checker = redis.Redis.from_url(settings.REDIS_URL)
        try:
            if checker.get(mark) is None:
                heard_before_mark.append(message)
        finally:
            checker.close()
        real_deliver(members, message)

    monkeypatch.setattr(here, "_deliver_local", deliver)

    await here.group_send_many([(group, {"type": "conv.event", "n": i}) for i, group in enumerate(groups)],
                               first=lambda pipe: pipe.set(mark, "7"))

    assert len(trips) == 1 and heard_before_mark == []
    for i, (a, b) in enumerate(zip(mine, theirs, strict=True)):
        assert await asyncio.wait_for(here.receive(a), 2) == {"type": "conv.event", "n": i}
        assert await asyncio.wait_for(elsewhere.receive(b), 2) == {"type": "conv.event", "n": i}
    await client.delete(mark)
