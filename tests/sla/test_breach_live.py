"""A breach seen by the people it concerns, against a real server: the customer asks for a
person through the chat socket (the clocks start in the server process), the breach task runs
here; a supervisor's console hears `sla_breach` and the red queue entry, the customer hears
nothing of it, an agent of no team sees nothing, and subscribers get `sla.breached`."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from asgiref.sync import sync_to_async

from apps.console.roles import role_join
from apps.conversations.services import message_create
from apps.sla.models import SlaClock, SlaPolicy
from apps.sla.tasks import sla_breaches_check_task
from apps.teams.models import Team
from apps.webhooks.models import EventPayload, WebhookEndpoint
from tests.support.factories import ConversationFactory
from tests.support.people import make_user, session_cookie, token_for
from tests.support.sockets import AgentClient, Customer

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SECRET = "whsec_c3Vic2NyaWJlci1zZWNyZXQtb2YtMzItYnl0ZXMhIQ=="
LONG_AGO = datetime(2025, 1, 8, 10, 0, tzinfo=UTC)


@sync_to_async
def setup(customer):
    SlaPolicy.objects.create(first_response_s=300, resolution_s=3600)
    WebhookEndpoint.objects.create(url="http://127.0.0.1:9/", secret=SECRET, event_types=["sla.breached"])
    team = Team.objects.create(name="Billing", slug="billing")
    conversation = ConversationFactory(customer=customer, team=team)
    message_create(
        conversation=conversation, role="customer", text="My invoice is wrong", client_msg_id=uuid.uuid4()
    )
    supervisor = make_user("sue@example.com", "Sue", "Supervisor")
    role_join(user=supervisor, role="supervisor")
    outsider = make_user("bob@example.com", "Bob", "Agent")  # an agent in no team
    role_join(user=outsider, role="agent")
    return conversation, session_cookie(supervisor), session_cookie(outsider)


def entry_of(conversation_id: str):
    return lambda e: e["conversation"]["id"] == conversation_id


async def test_a_breach_turns_the_entry_red_for_its_agents_and_reaches_no_customer(web_server, customer):
    server = web_server()
    conversation, lead_cookie, outsider_cookie = await setup(customer)
    conversation_id = str(conversation.pk)

    chat = Customer(server.ws_url, await sync_to_async(token_for)(customer))
    assert (await chat.connect())["conversation_id"] == conversation_id
    lead = AgentClient(server.ws_url, lead_cookie, server.http_url)
    outsider = AgentClient(server.ws_url, outsider_cookie, server.http_url)
    assert (await lead.connect())["type"] == "agent_ready"
    assert [e["id"] for e in (await outsider.connect())["queue"]] == []

    await chat.send({"type": "request_human", "conversation_id": conversation_id})
    entry = (await lead.recv_until("conversation", where=entry_of(conversation_id)))[-1]["conversation"]
    clock = await sync_to_async(SlaClock.objects.get)(conversation_id=conversation_id, kind="first_response")
    assert entry["state"] == "waiting"
    assert entry["sla"] == {
        "kind": "first_response", "due_at": clock.due_at.isoformat(), "breached": False,
        "started_at": clock.started_at.isoformat(),
    }

    # Time passes: the first response is overdue, the resolution clock is not.
    await sync_to_async(SlaClock.objects.filter(pk=clock.pk).update)(due_at=LONG_AGO)
    assert await sync_to_async(sla_breaches_check_task)() == 1
    assert await sync_to_async(sla_breaches_check_task)() == 0

    heard = await lead.recv_until("sla_breach")
    assert heard[-1] == {
        "type": "sla_breach", "conversation_id": conversation_id, "kind": "first_response",
        "due_at": LONG_AGO.isoformat(),
    }
    red = (await lead.recv_until("conversation", where=entry_of(conversation_id)))[-1]["conversation"]
    assert red["sla"] == {
        "kind": "first_response", "due_at": LONG_AGO.isoformat(), "breached": True,
        "started_at": clock.started_at.isoformat(),
    }

    # The customer and an agent who may not see the conversation hear nothing of it.
    await chat.send({"type": "ping", "ts": 1})
    customer_frames = await chat.recv_until("pong")
    assert [f["type"] for f in customer_frames if f["type"] not in ("handoff", "message")] == ["pong"]
    await outsider.send({"type": "ping", "ts": 2})
    assert [f["type"] for f in await outsider.recv_until("pong")] == ["pong"]

    payloads = await sync_to_async(list)(EventPayload.objects.filter(event_type="sla.breached"))
    assert [p.payload["data"] for p in payloads] == [{
        "customer_id": str(customer.pk), "conversation_id": conversation_id, "kind": "first_response",
        "due_at": LONG_AGO.isoformat(),
    }]
    for socket in (chat, lead, outsider):
        await socket.close()
