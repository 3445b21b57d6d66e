"""Every state change an agent makes on /ws/agent/ writes exactly one audit row (PROTOCOL.md
§3): claim, reply, note, assign, release, close, with the agent, the socket's IP and
before/after. Real uvicorn, real `websockets` clients."""

from __future__ import annotations

import uuid

import pytest
from asgiref.sync import sync_to_async

from apps.audit.models import AuditEntry
from apps.console.roles import role_join
from apps.conversations.services import message_create
from tests.support.factories import ConversationFactory, CustomerFactory
from tests.support.people import make_user, session_cookie
from tests.support.sockets import AgentClient

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@sync_to_async
def seeded():
    alice = make_user("alice@example.com", "Alice", "Lead")
    role_join(user=alice, role="supervisor")  # sees conversations of no team
    bob = make_user("bob@example.com", "Bob", "Agent")
    conversation = ConversationFactory(customer=CustomerFactory())
    message_create(conversation=conversation, role="customer", text="Hello?", client_msg_id=uuid.uuid4())
    return alice, bob, conversation, session_cookie(alice)


@sync_to_async
def rows() -> list[tuple]:
    return list(
        AuditEntry.objects.order_by("id").values_list(
            "action", "actor__username", "ip", "target_id", "before", "after"
        )
    )


async def settled(socket: AgentClient, ts: str) -> list[dict]:
    """Frames are handled in order: once this ping's pong is back, every earlier frame was."""
    await socket.send({"type": "ping", "ts": ts})
    return await socket.recv_until("pong", ts=ts)


async def test_each_agent_action_on_the_socket_writes_exactly_one_audit_row(web_server) -> None:
    server = web_server()
    alice, bob, conversation, cookie = await seeded()
    cid = str(conversation.pk)
    console = AgentClient(server.ws_url, cookie, server.http_url)
    assert (await console.connect())["type"] == "agent_ready"
    human = {"state": "human", "assignee_id": alice.pk, "team_id": None}
    steps = [
        (
            {"type": "claim"},
            ("conversation.claim", {"state": "bot", "assignee_id": None, "team_id": None}, human),
        ),
        (
            {"type": "reply", "client_msg_id": str(uuid.uuid4()), "text": "Hi, Alice here."},
            ("conversation.reply", None, human),
        ),
        (
            {"type": "note", "client_msg_id": str(uuid.uuid4()), "text": "Regular customer."},
            ("conversation.note", None, None),
        ),
        (
            {"type": "assign", "agent_id": bob.pk},
            ("conversation.assign", human, {**human, "assignee_id": bob.pk}),
        ),
        (
            {"type": "release"},
            (
                "conversation.release",
                {**human, "assignee_id": bob.pk},
                {**human, "state": "bot", "assignee_id": None},
            ),
        ),
        (
            {"type": "close"},
            (
                "conversation.close",
                {"state": "bot", "assignee_id": None, "team_id": None},
                {"state": "closed", "assignee_id": None, "team_id": None},
            ),
        ),
    ]
    for n, (frame, (action, before, after)) in enumerate(steps):
        await console.send({**frame, "conversation_id": cid})
        seen = await settled(console, f"t{n}")
        assert not [e for e in seen if e["type"] == "error"], seen
        written = await rows()
        assert len(written) == n + 1, (action, written)
        assert written[-1] == (action, "alice@example.com", "127.0.0.1", cid, before, after)
    # A frame that changes nothing writes nothing: a claim of the closed conversation is refused.
    await console.send({"type": "claim", "conversation_id": cid})
    assert [e["code"] for e in await settled(console, "again") if e["type"] == "error"] == ["conflict"]
    assert [r[0] for r in await rows()] == [s[1][0] for s in steps]
    await console.close()
