"""The channel layer: channels-redis, with this process's own sockets served from memory.

channels-redis hands every group message for a socket through Redis, even when the sender
and the socket share the process: the receive side then pops one message at a time under one
lock per process, four Redis round trips each, so under a burst a token flushed by the turn
runner waited seconds to reach a socket of the same process (issue 18's trace). Here a group
send delivers to the group's members in this process straight into their receive buffers (the
queue channels-redis's own receive fills), and sends through Redis only to the members other
processes hold. Membership stays in Redis too, so other processes still reach our sockets.

What a receiver sees is unchanged: the message as msgpack would carry it (a copy the sender
can no longer change), at most `capacity` waiting per socket (the oldest give way, as in
channels-redis's own buffer). Point-to-point `send` still goes through Redis (the health check
relies on it).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from channels_redis.core import RedisChannelLayer

from .redis import POOL_WAIT_S

logger = logging.getLogger(__name__)

# Per Redis key: drop expired messages, then add ours unless the key is at capacity (what
# channels-redis does in a pipeline and a script, in one round trip).
_GROUP_SEND = """
local now = tonumber(ARGV[#ARGV - 1])
local expiry = tonumber(ARGV[#ARGV])
local over_capacity = 0
for i = 1, #KEYS do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], 0, math.floor(now) - expiry)
  if redis.call('ZCOUNT', KEYS[i], '-inf', '+inf') < tonumber(ARGV[i + #KEYS]) then
    redis.call('ZADD', KEYS[i], now, ARGV[i])
    redis.call('EXPIRE', KEYS[i], expiry)
  else
    over_capacity = over_capacity + 1
  end
end
return over_capacity
"""


# How long a pump outlives its last receiver (a socket between two messages is not receiving),
# and the longest it waits in Redis before it checks whether it should stop.
PUMP_LINGER_S = 2.0
PUMP_READ_S = 1.0


@dataclass(frozen=True)
class _PumpFailed:
    """Put in the buffers of the sockets waiting when the pump failed: their receive raises it."""

    error: Exception


class LocalFanoutChannelLayer(RedisChannelLayer):
    """`channels_redis.core.RedisChannelLayer` whose group sends reach this process's members
    without Redis (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # group -> {channel of this process: the event loop its consumer receives on}. Group
        # sends may come from another thread's loop (async_to_sync): the lock guards the maps.
        self._local: dict[str, dict[str, asyncio.AbstractEventLoop]] = {}
        self._local_lock = threading.Lock()
        # (event loop, the process's Redis channel) -> its pump, and how many receive on it.
        self._pumps: dict[tuple[asyncio.AbstractEventLoop, str], asyncio.Task] = {}
        self._receiving: collections.Counter[tuple[asyncio.AbstractEventLoop, str]] = collections.Counter()

    def _is_local(self, channel: str) -> bool:
        return "!" in channel and self.non_local_name(channel).endswith(self.client_prefix + "!")

    async def group_add(self, group: str, channel: str) -> None:
        # channels-redis's own group_add, its ZADD and EXPIRE in one round trip instead of two
        # (every chat socket joins a group or two as it connects).
        assert self.require_valid_group_name(group), "Group name not valid"
        assert self.require_valid_channel_name(channel), "Channel name not valid"
        group_key = self._group_key(group)
        pipe = self.connection(self.consistent_hash(group)).pipeline(transaction=False)
        pipe.zadd(group_key, {channel: time.time()})
        pipe.expire(group_key, self.group_expiry)
        await pipe.execute()
        if self._is_local(channel):
            loop = asyncio.get_running_loop()
            with self._local_lock:
                self._local.setdefault(group, {})[channel] = loop

    async def group_discard(self, group: str, channel: str) -> None:
        with self._local_lock:  # first: nothing more reaches a socket that is leaving
            members = self._local.get(group)
            if members is not None:
                members.pop(channel, None)
                if not members:
                    del self._local[group]
        await super().group_discard(group, channel)

    async def receive(self, channel: str) -> dict[str, Any]:
        if not self._is_local(channel):
            return await super().receive(channel)
        loop = asyncio.get_running_loop()
        key = (loop, self.non_local_name(channel))
        self._pump(key)
        queue = self.receive_buffer[channel]
        self._receiving[key] += 1
        try:
            message = await queue.get()
        except asyncio.CancelledError:
            self.receive_buffer.pop(channel, None)  # its consumer is gone
            raise
        finally:
            self._receiving[key] -= 1
            if not self._receiving[key]:
                del self._receiving[key]
                loop.call_later(PUMP_LINGER_S, self._pump_stop_if_idle, key)
        if queue.empty() and self.receive_buffer.get(channel) is queue:
            del self.receive_buffer[channel]
        if isinstance(message, _PumpFailed):
            raise message.error
        return message

    def _pump(self, key: tuple[asyncio.AbstractEventLoop, str]) -> None:
        pump = self._pumps.get(key)
        if pump is None or pump.done():
            self._pumps[key] = key[0].create_task(self._pump_run(key))

    async def _pump_run(self, key: tuple[asyncio.AbstractEventLoop, str]) -> None:
        try:
            await self._pump_loop(key)
        except Exception as exc:  # Redis unreachable: every socket waiting here hears of it
            failed = _PumpFailed(exc)
            for channel, queue in list(self.receive_buffer.items()):
                if self._is_local(channel) and self.non_local_name(channel) == key[1]:
                    queue.put_nowait(failed)

    async def _pump_loop(self, key: tuple[asyncio.AbstractEventLoop, str]) -> None:
        """Move what arrives through Redis into the receive buffers until stopped (its entry
        gone). Never cancelled: redis-py 8 can swallow a cancellation that lands in a read and
        retry the command, so a stop is seen between short blocking reads instead. The steps
        are channels-redis's `receive_single`, with a read that returns empty-handed."""
        real_channel = key[1]
        channel_key = self.prefix + real_channel
        index = self.consistent_hash(real_channel)
        while self._pumps.get(key) is asyncio.current_task():
            await self.receive_clean_locks.acquire(channel_key)
            try:
                content = await self._brpop_with_clean(index, channel_key, timeout=PUMP_READ_S)
            except BaseException:
                self.receive_clean_locks.release(channel_key)
                raise
            if content is None:
                self.receive_clean_locks.release(channel_key)
                continue
            # Drop the message's in-flight backup; the lock keeps the next read from restoring it.
            cleaner = asyncio.ensure_future(self._clean_receive_backup(index, channel_key))
            self.receive_cleaners.append(cleaner)
            cleaner.add_done_callback(lambda done: self._cleaned(done, channel_key))
            message = self.deserialize(content)
            target = message.pop("__asgi_channel__", real_channel)
            for channel in target if isinstance(target, list) else [target]:
                self.receive_buffer[channel].put_nowait(message)

    def _cleaned(self, cleaner: asyncio.Future, channel_key: str) -> None:
        self.receive_cleaners.remove(cleaner)
        self.receive_clean_locks.release(channel_key)

    def _pump_stop_if_idle(self, key: tuple[asyncio.AbstractEventLoop, str]) -> None:
        if not self._receiving[key]:
            self._pumps.pop(key, None)

    def create_pool(self, index: int) -> Any:
        """A pool that waits for a free connection when all are busy (at most
        `max_connections`), where channels-redis's opens more until the cap and then raises:
        a burst would open hundreds (apps/core/redis.py). The pump's blocking read takes one."""
        host = dict(self.hosts[index])
        if "address" not in host:  # Sentinel: channels-redis's own pool
            return super().create_pool(index)
        address = host.pop("address")
        host.setdefault("timeout", POOL_WAIT_S)
        return aioredis.BlockingConnectionPool.from_url(address, **host)

    async def close_pools(self) -> None:
        loop = asyncio.get_running_loop()
        stopping = [self._pumps.pop(key) for key in list(self._pumps) if key[0] is loop]
        if stopping:
            await asyncio.wait(stopping, timeout=PUMP_READ_S + 1)
        await super().close_pools()

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        assert self.require_valid_group_name(group), "Group name not valid"
        # This process's members first: they need nothing from Redis, so a token reaches a
        # socket here without waiting for the membership read (a pass of a crowded loop).
        self._deliver_here(group, message)
        key = self._group_key(group)
        connection = self.connection(self.consistent_hash(group))
        pipe = connection.pipeline(transaction=False)
        pipe.zremrangebyscore(key, min=0, max=int(time.time()) - self.group_expiry)
        pipe.zrange(key, 0, -1)
        _, members = await pipe.execute()
        await self._send_elsewhere(group, members, message)

    async def group_send_many(
        self, sends: list[tuple[str, dict[str, Any]]], *, first: Callable[[Any], None] | None = None
    ) -> None:
        """`group_send` of each (group, message), in order, with one Redis round trip for all
        their members' reads (an event for a conversation's sockets and the customer's tabs: one
        trip, not two). `first(pipeline)` adds commands that run before those reads, on the same
        trip to the first Redis host (a durable event's seq mark, apps/conversations/publisher.py);
        nothing is delivered, here or elsewhere, before that trip returns."""
        for group, _ in sends:
            assert self.require_valid_group_name(group), "Group name not valid"
        by_host: dict[int, list[int]] = {0: []} if first is not None else {}
        for n, (group, _) in enumerate(sends):
            by_host.setdefault(self.consistent_hash(group), []).append(n)
        members: list[list[bytes]] = [[] for _ in sends]
        expired = int(time.time()) - self.group_expiry
        for index, ns in by_host.items():
            pipe = self.connection(index).pipeline(transaction=False)
            skip = 0
            if first is not None and index == 0:
                first(pipe)
                skip = len(pipe)
            for n in ns:
                key = self._group_key(sends[n][0])
                pipe.zremrangebyscore(key, min=0, max=expired)
                pipe.zrange(key, 0, -1)
            replies = await pipe.execute()
            for n, found in zip(ns, replies[skip + 1 :: 2], strict=True):
                members[n] = found
        for (group, message), found in zip(sends, members, strict=True):
            self._deliver_here(group, message)
            await self._send_elsewhere(group, found, message)

    def _deliver_here(self, group: str, message: dict[str, Any]) -> None:
        """To the group's members in this process (no Redis)."""
        with self._local_lock:
            local = list(self._local.get(group, {}).items())
        if local:
            self._deliver_local(local, message)

    async def _send_elsewhere(self, group: str, members: list[bytes], message: dict[str, Any]) -> None:
        """To the group's members (as read from Redis) that live in other processes."""
        remote = [name for name in (m.decode("utf8") for m in members) if not self._is_local(name)]
        if remote:
            await self._send_remote(group, remote, message)

    def _deliver_local(
        self, members: list[tuple[str, asyncio.AbstractEventLoop]], message: dict[str, Any]
    ) -> None:
        copy = self.deserialize(self.serialize(message))  # what Redis would have carried
        here = asyncio.get_running_loop()
        for channel, loop in members:
            if loop is here:
                self.receive_buffer[channel].put_nowait(copy)
                continue
            try:
                loop.call_soon_threadsafe(self._buffer_put, channel, copy)
            except RuntimeError:  # that loop has closed: its consumers are gone
                pass

    def _buffer_put(self, channel: str, message: dict[str, Any]) -> None:
        self.receive_buffer[channel].put_nowait(message)

    async def _send_remote(self, group: str, channels: list[str], message: dict[str, Any]) -> None:
        by_connection, messages, capacities = self._map_channel_keys_to_connection(channels, message)
        for index, keys in by_connection.items():
            args = [messages[k] for k in keys] + [capacities[k] for k in keys]
            over = await self.connection(index).eval(
                _GROUP_SEND, len(keys), *keys, *args, time.time(), self.expiry
            )
            if over:
                logger.info("%s of %s channels over capacity in group %s", over, len(channels), group)
