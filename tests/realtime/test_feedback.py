"""What became of an answer, and what the customer thought of it, on the wire (PROTOCOL.md §2):
`message_end.outcome` + `suggestions` live and after resume, and the `feedback` frame: stored,
replaced when sent again, refused for anything but the customer's own assistant answers, seen
live by the agents who have the conversation open (and on the console page), and sent to
outgoing webhook subscribers as `feedback.received`. Real uvicorn, real `websockets` clients."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
import pytest
from asgiref.sync import sync_to_async
from standardwebhooks.webhooks import Webhook

from apps.conversations.models import Conversation, Message, MessageFeedback
from apps.conversations.services import message_create
from apps.knowledge.ingestion import documents_index_inline
from apps.knowledge.services import document_upsert, knowledge_base_get_or_create
from apps.webhooks.models import WebhookEndpoint
from tests.support.factories import CustomerFactory
from tests.support.people import make_user, session_cookie, token_for
from tests.support.sockets import AgentClient, Customer, ask
from tests.support.webhooks import receiver

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

KB = "feedback-help"  # the server answers from it (KB_DEFAULT_SLUG)
RETURNS = (
    "# Returning an item\n\n"
    "You can return an unused item within 30 days of delivery for a full refund. Start a return "
    "from your account page and print the prepaid return label."
)
SHIPPING = (
    "# Shipping costs\n\n"
    "Standard delivery costs 4.95 euros and takes two to four working days. Orders over 60 euros "
    "ship for free."
)
ANSWERABLE = "How do I return an unused item within 30 days of delivery for a full refund?"
OFF_TOPIC = "What is the capital of Mongolia?"
SECRET = "whsec_c3Vic2NyaWJlci1zZWNyZXQtb2YtMzItYnl0ZXMhIQ=="
# A first answer waits for the embedding model to load (seconds to a minute on a busy machine).
FIRST_ANSWER_S = 180


def help_center_load() -> None:
    kb = knowledge_base_get_or_create(slug=KB, name="Feedback test help center")
    docs = [
        document_upsert(kb=kb, external_id=slug, filename=f"{slug}.md", data=text.encode(),
                        source_url=f"https://help.example/articles/{slug}")[0]
        for slug, text in (("returns", RETURNS), ("shipping-costs", SHIPPING))
    ]
    documents_index_inline(docs)


async def settled(socket, ts: str) -> list[dict]:
    """What the socket sent until the pong of a ping sent now: frames are handled in order, so
    every frame sent before it has been handled."""
    await socket.send({"type": "ping", "ts": ts})
    return await socket.recv_until("pong", ts=ts)


def feedback_rows() -> list[tuple[str, bool, str]]:
    return [(str(f.message_id), f.helpful, f.comment) for f in MessageFeedback.objects.order_by("pk")]


async def new_customer():
    return await sync_to_async(CustomerFactory)()


async def asked_and_declined(server, customer) -> tuple[Customer, str, str]:
    """A customer's socket, their conversation and the assistant's (declining) answer in it."""
    socket = Customer(server.ws_url, await sync_to_async(token_for)(customer))
    socket.timeout = FIRST_ANSWER_S
    await socket.connect()
    end = (await ask(socket, OFF_TOPIC))[-1]
    return socket, end["conversation_id"], end["message_id"]


async def test_an_answer_and_a_decline_carry_their_outcome_live_and_after_resume(web_server) -> None:
    await sync_to_async(help_center_load)()
    server = web_server(KB_DEFAULT_SLUG=KB, ASSISTANT_TOKEN_DELAY_S="0")
    customer = await new_customer()
    token = await sync_to_async(token_for)(customer)
    live = Customer(server.ws_url, token)
    live.timeout = FIRST_ANSWER_S
    await live.connect()

    answered = await ask(live, ANSWERABLE)
    conversation_id = answered[0]["conversation_id"]
    declined = await ask(live, OFF_TOPIC, conversation_id)
    ends = [answered[-1], declined[-1]]
    assert [(e["seq"], e["outcome"], e["suggestions"], e["stopped"]) for e in ends] == [
        (3, "answered", [], False),
        (6, "declined", [], False),
    ]
    assert [c["title"] for c in ends[0]["citations"]] == ["Returning an item"]
    assert ends[1]["citations"] == []
    stored = await sync_to_async(list)(Message.objects.filter(role="assistant").order_by("seq"))
    assert [(str(m.pk), m.outcome, m.suggestions) for m in stored] == [
        (ends[0]["message_id"], "answered", []),
        (ends[1]["message_id"], "declined", []),
    ]
    await live.close()

    again = Customer(server.ws_url, token)
    await again.connect()
    await again.send({"type": "resume", "conversation_id": conversation_id, "last_seq": 0})
    replay = await again.recv_until("resumed")
    assert [e for e in replay if e["type"] == "message_end"] == ends  # the same, field for field
    await again.close()


async def test_a_stopped_answer_ends_with_the_outcome_stopped(web_server) -> None:
    server = web_server(ASSISTANT_TOKEN_DELAY_S="0.2")
    socket = Customer(server.ws_url, await sync_to_async(token_for)(await new_customer()))
    socket.timeout = FIRST_ANSWER_S
    await socket.connect()
    await socket.send({"type": "message", "client_msg_id": str(uuid.uuid4()), "text": OFF_TOPIC})
    conversation_id = (await socket.recv_until("token"))[0]["conversation_id"]
    await socket.send({"type": "stop", "conversation_id": conversation_id})
    end = (await socket.recv_until("message_end"))[-1]
    assert (end["stopped"], end["outcome"], end["suggestions"]) == (True, "stopped", [])
    stored = await sync_to_async(Message.objects.get)(pk=end["message_id"])
    assert (stored.stopped, stored.outcome) == (True, "stopped")
    await socket.close()


async def test_feedback_is_stored_and_sending_it_again_replaces_it(web_server) -> None:
    server = web_server(ASSISTANT_TOKEN_DELAY_S="0")
    socket, conversation_id, answer_id = await asked_and_declined(server, await new_customer())
    frame = {"type": "feedback", "conversation_id": conversation_id, "message_id": answer_id}

    await socket.send({**frame, "helpful": False, "comment": "It did not answer my question."})
    assert [e["type"] for e in await settled(socket, "first")] == ["pong"]  # no answer, no error
    assert await sync_to_async(feedback_rows)() == [(answer_id, False, "It did not answer my question.")]

    await socket.send({**frame, "helpful": True})
    assert [e["type"] for e in await settled(socket, "second")] == ["pong"]
    assert await sync_to_async(feedback_rows)() == [(answer_id, True, "")]
    await socket.close()


def agent_message(conversation_id: str, agent) -> str:
    conversation = Conversation.objects.get(pk=conversation_id)
    return str(message_create(conversation=conversation, role="agent", text="Hi, Alice here.",
                              author_id=agent.pk).pk)


async def test_feedback_on_anything_but_the_customers_own_answer_is_refused(web_server) -> None:
    server = web_server(ASSISTANT_TOKEN_DELAY_S="0")
    ada, grace = await new_customer(), await new_customer()
    socket, conversation_id, answer_id = await asked_and_declined(server, ada)
    other, other_conversation_id, other_answer_id = await asked_and_declined(server, grace)
    agent = await sync_to_async(make_user)("alice@example.com", "Alice", "Agent")
    agent_message_id = await sync_to_async(agent_message)(conversation_id, agent)
    await socket.recv_until("message", where=lambda e: e["message"]["id"] == agent_message_id)
    question_id = (await sync_to_async(Message.objects.get)(conversation_id=conversation_id, seq=1)).pk

    refused = [
        (conversation_id, other_answer_id, "not_found"),  # Grace's answer, named in Ada's conversation
        (other_conversation_id, other_answer_id, "forbidden"),  # Grace's conversation
        (conversation_id, str(uuid.uuid4()), "not_found"),
        (conversation_id, agent_message_id, "invalid"),
        (conversation_id, str(question_id), "invalid"),  # Ada's own question
    ]
    for n, (conversation, message, code) in enumerate(refused):
        await socket.send({"type": "feedback", "conversation_id": conversation, "message_id": message,
                           "helpful": False})
        seen = await settled(socket, f"refused-{n}")
        assert [(e["type"], e.get("code")) for e in seen] == [("error", code), ("pong", None)], message
    await socket.send({"type": "feedback", "conversation_id": conversation_id, "message_id": answer_id,
                       "helpful": True, "comment": "x" * 1001})
    [error, _] = await settled(socket, "too-long")
    assert (error["type"], error["code"], error["message"]) == (
        "error", "invalid", "`comment` must be a string of at most 1000 characters."
    )
    assert await sync_to_async(feedback_rows)() == []
    await socket.close()
    await other.close()


async def test_an_agent_with_the_conversation_open_sees_the_feedback_live_and_on_the_page(web_server) -> None:
    server = web_server(ASSISTANT_TOKEN_DELAY_S="0")
    socket, conversation_id, answer_id = await asked_and_declined(server, await new_customer())
    agent = await sync_to_async(make_user)("alice@example.com", "Alice", "Agent")
    cookie = await sync_to_async(session_cookie)(agent)
    console = AgentClient(server.ws_url, cookie, server.http_url)
    assert (await console.connect())["type"] == "agent_ready"
    await console.send({"type": "subscribe", "conversation_id": conversation_id, "last_seq": 0})
    replay = await console.recv_until("subscribed")
    [end] = [e for e in replay if e["type"] == "message_end"]  # the agents get §2's message_end too
    assert (end["message_id"], end["outcome"], end["suggestions"]) == (answer_id, "declined", [])

    for n, (helpful, comment) in enumerate([(False, "Not what I asked."), (True, "")]):
        frame = {"type": "feedback", "conversation_id": conversation_id, "message_id": answer_id,
                 "helpful": helpful}
        await socket.send({**frame, "comment": comment} if comment else frame)
        [feedback] = [e for e in await console.recv_until("feedback") if e["type"] == "feedback"]
        stored = await sync_to_async(MessageFeedback.objects.get)(message_id=answer_id)
        assert feedback == {
            "type": "feedback",
            "conversation_id": conversation_id,
            "message_id": answer_id,
            "helpful": helpful,
            "comment": comment,
            "updated_at": stored.updated_at.isoformat(),
        }, n
        async with httpx.AsyncClient(cookies={"sessionid": cookie}) as client:
            page = (await client.get(f"{server.http_url}/console/c/{conversation_id}/")).text
        shown = "👍" if helpful else "👎 “Not what I asked.”"
        assert f'data-helpful="{str(helpful).lower()}"' in page and shown in page
    assert [e["type"] for e in await settled(socket, "done")] == ["pong"]  # the customer hears nothing
    await console.close()
    await socket.close()


async def test_a_webhook_subscriber_receives_feedback_received(web_server, celery_worker_live) -> None:
    with receiver([204]) as hooks:
        await sync_to_async(WebhookEndpoint.objects.create)(
            url=hooks.url, secret=SECRET, event_types=["feedback.received"]
        )
        server = web_server(ASSISTANT_TOKEN_DELAY_S="0")
        customer = await new_customer()
        socket, conversation_id, answer_id = await asked_and_declined(server, customer)
        await socket.send({"type": "feedback", "conversation_id": conversation_id, "message_id": answer_id,
                           "helpful": False, "comment": "Please add an article about this."})
        for _ in range(300):
            if hooks.requests:
                break
            await asyncio.sleep(0.1)
        stored = await sync_to_async(MessageFeedback.objects.get)(message_id=answer_id)
        await socket.close()
    [request] = hooks.requests
    body = Webhook(SECRET).verify(request.body.decode(), request.headers)
    assert body == json.loads(request.body)
    assert (body["type"], body["data"]) == ("feedback.received", {
        "customer_id": str(customer.pk),
        "conversation_id": conversation_id,
        "message_id": answer_id,
        "helpful": False,
        "comment": "Please add an article about this.",
        "updated_at": stored.updated_at.isoformat(),
    })
