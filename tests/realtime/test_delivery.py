"""ConversationStreams, the exactly-once bookkeeping of a socket, when two tasks deliver at once:
the socket's own frame handling and the heartbeat's gap repair run concurrently."""

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

    async def fetch(conversation_id: str, after_seq: int, upto_seq: int | None, limit: int) -> list[dict]:
        await asyncio.sleep(0)  # a real fetch is a database round trip
        upto = upto_seq if upto_seq is not None else float("inf")
        return [e for e in events_in_postgres if after_seq < e["seq"] <= upto][:limit]

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

    await asyncio.gather(
        streams.replay(CONVERSATION, after_seq=0, upto_seq=2),
        streams.live(stored(2), {}),
        streams.live(stored(1), {}),
    )

    assert sent == [1, 2]


def paged(events_in_postgres: list[dict], page_size: int) -> tuple[ConversationStreams, list, list]:
    """Streams over a fake Postgres that records each page read: (after_seq, upto_seq, limit, rows)."""
    sent: list[int] = []
    reads: list[tuple] = []

    async def send(event: dict) -> None:
        sent.append(event["seq"])

    async def fetch(conversation_id: str, after_seq: int, upto_seq: int | None, limit: int) -> list[dict]:
        upto = upto_seq if upto_seq is not None else float("inf")
        page = [e for e in events_in_postgres if after_seq < e["seq"] <= upto][:limit]
        reads.append((after_seq, upto_seq, limit, len(page)))
        return page

    return ConversationStreams(send=send, fetch=fetch, page_size=page_size), sent, reads


async def test_a_replay_reads_a_page_at_a_time_and_stops_at_upto_seq():
    streams, sent, reads = paged([stored(n) for n in range(1, 351)], page_size=100)
    streams.follow(CONVERSATION)

    await streams.replay(CONVERSATION, after_seq=20, upto_seq=300)

    assert sent == list(range(21, 301))
    assert reads == [(20, 300, 100, 100), (120, 300, 100, 100), (220, 300, 100, 80)]


async def test_a_gap_repair_reads_pages_until_a_short_one():
    streams, sent, reads = paged([stored(n) for n in range(1, 201)], page_size=100)
    streams.follow(CONVERSATION, delivered_seq=5)

    await streams.catch_up(CONVERSATION)

    assert sent == list(range(6, 201))
    assert reads == [(5, None, 100, 100), (105, None, 100, 95)]
