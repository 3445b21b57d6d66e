"""ConversationStreams, the exactly-once bookkeeping of a socket, when two tasks deliver at once:
the socket's own frame handling and the sweeper's gap repair run concurrently."""

from __future__ import annotations

import asyncio

from apps.realtime.delivery import ConversationStreams

CONVERSATION = "c-1"


def stored(seq: int) -> dict:
    return {"type": "message", "conversation_id": CONVERSATION, "seq": seq, "message": {"text": f"m{seq}"}}


def streams_with_log(events_in_postgres: list[dict]) -> tuple[ConversationStreams, list[int]]:
    sent: list[int] = []

    async def send(event: dict) -> None:
        await asyncio.sleep(0)  # a real send yields to the loop (the socket's write)
        sent.append(event["seq"])

    async def fetch(conversation_id: str, after_seq: int) -> list[dict]:
        await asyncio.sleep(0)  # a real fetch is a database round trip
        return [e for e in events_in_postgres if e["seq"] > after_seq]

    streams = ConversationStreams(send=send, fetch=fetch)
    streams.follow(CONVERSATION)
    return streams, sent


async def test_a_gap_repair_and_the_live_event_racing_send_it_once():
    streams, sent = streams_with_log([stored(1)])

    await asyncio.gather(streams.catch_up(CONVERSATION), streams.live(stored(1), {}))

    assert sent == [1]


async def test_two_repairs_and_live_events_at_once_keep_seq_order_without_repeats():
    events = [stored(n) for n in range(1, 6)]
    streams, sent = streams_with_log(events)

    await asyncio.gather(
        streams.catch_up(CONVERSATION),
        *(streams.live(e, {}) for e in events),
        streams.catch_up(CONVERSATION),
    )

    assert sent == [1, 2, 3, 4, 5]


async def test_a_replay_racing_a_live_event_sends_each_seq_once():
    events = [stored(1), stored(2)]
    streams, sent = streams_with_log(events)

    await asyncio.gather(streams.replay(events), streams.live(stored(2), {}), streams.live(stored(1), {}))

    assert sent == [1, 2]
