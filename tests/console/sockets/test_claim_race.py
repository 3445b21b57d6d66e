"""Two agents on two server processes claim the same waiting conversation at once: exactly one
wins, the other gets `conflict`, and the customer sees one handoff."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async

from apps.conversations.models import Conversation, ConversationEvent
from apps.conversations.services import conversation_request_human
from tests.support.factories import ConversationFactory
from tests.support.people import make_user, session_cookie
from tests.support.sockets import AgentClient

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def waiting_conversation() -> Conversation:
    conversation = ConversationFactory()
    return conversation_request_human(conversation_id=conversation.pk)


async def test_two_agents_in_two_processes_claim_at_once_and_exactly_one_wins(web_server) -> None:
    alice = await sync_to_async(make_user)("alice@example.com", "Alice", "Agent")
    bob = await sync_to_async(make_user)("bob@example.com", "Bob", "Agent")
    servers = [web_server(), web_server()]
    clients = [
        AgentClient(servers[0].ws_url, await sync_to_async(session_cookie)(alice), servers[0].http_url),
        AgentClient(servers[1].ws_url, await sync_to_async(session_cookie)(bob), servers[1].http_url),
    ]
    for client in clients:
        assert (await client.connect())["type"] == "agent_ready"
    try:
        for round_ in range(5):  # several races, so the winner is not decided by who starts first
            conversation = await sync_to_async(waiting_conversation)()
            frame = {"type": "claim", "conversation_id": str(conversation.pk)}
            await asyncio.gather(*(client.send(frame) for client in clients))
            # A ping after the claim: its pong comes after the claim's outcome on each socket.
            await asyncio.gather(*(client.send({"type": "ping", "ts": round_}) for client in clients))
            seen = await asyncio.gather(*(client.recv_until("pong", ts=round_) for client in clients))

            errors = [[e for e in events if e["type"] == "error"] for events in seen]
            assert sorted(len(e) for e in errors) == [0, 1], seen
            assert [e[0]["code"] for e in errors if e] == ["conflict"]
            winner = [alice, bob][[len(e) for e in errors].index(0)]
            stored = await sync_to_async(Conversation.objects.get)(pk=conversation.pk)
            assert stored.state == "human" and stored.assignee_id == winner.pk
            handoffs = await sync_to_async(list)(
                ConversationEvent.objects.filter(
                    conversation=conversation, type="handoff", payload__state="human"
                )
            )
            assert [h.payload["agent"] for h in handoffs] == [f"{winner.first_name} Agent"]
    finally:
        for client in clients:
            await client.close()


async def test_the_console_socket_is_refused_from_a_forged_origin(web_server) -> None:
    alice = await sync_to_async(make_user)("alice@example.com", "Alice", "Agent")
    server = web_server()
    cookie = await sync_to_async(session_cookie)(alice)
    import websockets

    with pytest.raises(websockets.InvalidStatus) as refused:
        await AgentClient(server.ws_url, cookie, "https://evil.example").connect()
    assert refused.value.response.status_code == 403
    with pytest.raises(websockets.InvalidStatus) as refused:
        await AgentClient(server.ws_url, "not-a-session", server.http_url).connect()
    assert refused.value.response.status_code == 403
