"""/ws/agent/ through the real ASGI routing (session cookie + Origin check), real Postgres and
Redis channel layer: what an agent and a customer see."""

from __future__ import annotations

import uuid

import pytest
from asgiref.sync import sync_to_async

from apps.assistant.models import AssistantTurn
from apps.assistant.turn_store import turn_context, turn_create
from apps.console.consumers import AgentConsumer
from apps.console.models import Note
from apps.conversations.models import Conversation, ConversationEvent, Message
from apps.conversations.selectors import event_list, message_history
from apps.conversations.services import conversation_close, message_create
from tests.support.factories import ConversationFactory
from tests.support.people import session_cookie
from tests.support.sockets import Chat, communicator

pytestmark = pytest.mark.django_db(transaction=True)


@sync_to_async
def conversation_with(customer, *texts: str, state: str = "bot", assignee=None) -> Conversation:
    conversation = ConversationFactory(customer=customer, state=state, assignee=assignee)
    for text in texts:
        message_create(conversation=conversation, role="customer", text=text, client_msg_id=uuid.uuid4())
    conversation.refresh_from_db()
    return conversation


async def refused(cookie: str | None, origin: str | None) -> tuple[bool, int | None]:
    comm = communicator(cookie, origin)
    connected, code = await comm.connect(timeout=10)
    if connected:
        await comm.disconnect()
    return connected, code


async def test_only_staff_with_an_allowed_origin_get_a_console_socket(agent, shopper) -> None:
    agent_cookie = await sync_to_async(session_cookie)(agent)
    shopper_cookie = await sync_to_async(session_cookie)(shopper)

    assert await refused(None, "http://127.0.0.1:8000") == (False, 4403)  # signed out
    assert await refused(shopper_cookie, "http://127.0.0.1:8000") == (False, 4403)  # not staff
    assert (await refused(agent_cookie, "https://evil.example"))[0] is False  # forged Origin
    assert (await refused(agent_cookie, None))[0] is False  # no Origin at all
    assert (await refused(agent_cookie, "http://127.0.0.1:8000"))[0] is True


async def test_the_widget_socket_still_accepts_other_origins() -> None:
    socket = Chat()
    socket.comm.scope["headers"] = [(b"origin", b"https://shop.example")]
    await socket.connect()
    await socket.send({"type": "ping", "ts": 1})
    assert await socket.recv() == {
        "type": "error",
        "code": "unauthenticated",
        "message": "Send `auth` with your widget token first.",
    }
    await socket.close()


async def test_agent_ready_lists_the_queue_waiting_first(
    agent, agent_socket, customer, other_customer
) -> None:
    chatting = await conversation_with(customer, "Where is my order?")
    waiting = await conversation_with(other_customer, "I want a person", state="waiting")

    socket = await agent_socket(agent)

    assert socket.ready["agent"] == {"id": agent.pk, "name": "Alice Agent"}
    assert [entry["id"] for entry in socket.ready["queue"]] == [str(waiting.pk), str(chatting.pk)]
    entry = socket.ready["queue"][1]
    assert entry["customer"] == {
        "id": str(customer.pk),
        "name": "Ada",
        "email": customer.email,
        "external_id": None,
    }
    assert entry["state"] == "bot" and entry["assignee"] is None and entry["unread"] == 1
    assert entry["last_message"]["role"] == "customer"
    assert entry["last_message"]["text"] == "Where is my order?"


async def test_claim_stops_the_assistant_and_the_customer_sees_the_agent(
    agent, other_agent, agent_socket, chat, customer
) -> None:
    conversation = await conversation_with(customer, "Hello?")
    due = await sync_to_async(turn_create)(conversation_id=conversation.pk)
    customer_socket = await chat(customer)
    alice, bob = await agent_socket(agent), await agent_socket(other_agent)

    await alice.send({"type": "claim", "conversation_id": str(conversation.pk)})

    handoff = (await customer_socket.recv_until("handoff"))[-1]
    assert handoff == {
        "type": "handoff",
        "conversation_id": str(conversation.pk),
        "seq": 2,
        "state": "human",
        "agent": "Alice Agent",
    }
    entry = (await bob.recv_until("conversation"))[-1]["conversation"]
    assert entry["state"] == "human" and entry["assignee"] == {"id": agent.pk, "name": "Alice Agent"}
    assert await sync_to_async(AssistantTurn.objects.filter(pk=due.pk, stop_requested=True).count)() == 1

    await bob.send({"type": "claim", "conversation_id": str(conversation.pk)})
    error = (await bob.recv_until("error"))[-1]
    assert error["code"] == "conflict"
    assert "Alice Agent has this conversation" in error["message"]


async def test_replies_reach_the_customer_and_are_idempotent(agent, agent_socket, chat, customer) -> None:
    conversation = await conversation_with(customer, "Hi", state="human", assignee=agent)
    customer_socket = await chat(customer)
    alice = await agent_socket(agent)
    client_msg_id = str(uuid.uuid4())
    reply = {
        "type": "reply",
        "conversation_id": str(conversation.pk),
        "client_msg_id": client_msg_id,
        "text": "<b>Hello</b>, I'm here",
    }

    await alice.send(reply)
    ack = (await alice.recv_until("ack"))[-1]
    await alice.send(reply)  # a retry after a reconnect
    again = (await alice.recv_until("ack"))[-1]

    assert ack == again
    assert ack["seq"] == 2 and ack["client_msg_id"] == client_msg_id
    message = (await customer_socket.recv_until("message"))[-1]
    assert message["seq"] == 2
    assert message["message"]["role"] == "agent"
    assert message["message"]["text"] == "<b>Hello</b>, I'm here"
    assert message["message"]["author"] == "Alice Agent"
    assert await customer_socket.nothing()
    assert await sync_to_async(Message.objects.filter(role="agent").count)() == 1


async def test_the_replying_agent_gets_the_ack_then_the_reply_then_one_queue_entry(
    agent, agent_socket, customer
) -> None:
    """The reply's events leave after the ack (apps/console/consumers.py `on_reply`) and its queue
    entry is built off the loop after them: the agent's socket still gets each exactly once."""
    conversation = await conversation_with(customer, "Hi", state="human", assignee=agent)
    cid = str(conversation.pk)
    alice = await agent_socket(agent)
    await alice.send({"type": "subscribe", "conversation_id": cid, "last_seq": 1})
    await alice.recv_until("subscribed")
    reply = {"type": "reply", "conversation_id": cid, "client_msg_id": str(uuid.uuid4())}

    await alice.send({**reply, "text": "On its way"})
    frames = await alice.recv_until("conversation", where=lambda f: _entry_shows(f, cid, "On its way"))
    await alice.send({"type": "ping", "ts": 1})  # a pong after anything the reply still sends
    frames += await alice.recv_until("pong")

    seen = [(f["type"], f.get("seq")) for f in frames if f["type"] in ("ack", "message")]
    assert seen == [("ack", 2), ("message", 2)]
    entries = [f["conversation"] for f in frames if f["type"] == "conversation"]
    showing = [e["unread"] for e in entries if _entry_shows({"conversation": e}, cid, "On its way")]
    assert showing == [0]  # one entry for the reply, its read mark included


def _entry_shows(frame: dict, conversation_id: str, text: str) -> bool:
    entry = frame["conversation"]
    return entry["id"] == conversation_id and (entry["last_message"] or {}).get("text") == text


async def test_a_stored_reply_reaches_the_customer_even_when_the_agents_ack_fails(
    agent, agent_socket, chat, customer, monkeypatch
) -> None:
    """The agent's tab goes away as the ack is sent: the reply is stored, so it still goes out."""
    conversation = await conversation_with(customer, "Hi", state="human", assignee=agent)
    customer_socket = await chat(customer)
    alice = await agent_socket(agent)
    send_event = AgentConsumer.send_event

    async def broken_at_the_ack(self, event):
        if event["type"] == "ack":
            raise ConnectionResetError("the agent's tab closed")
        await send_event(self, event)

    monkeypatch.setattr(AgentConsumer, "send_event", broken_at_the_ack)
    await alice.send(
        {"type": "reply", "conversation_id": str(conversation.pk), "client_msg_id": str(uuid.uuid4()),
         "text": "Still here"}
    )

    message = (await customer_socket.recv_until("message"))[-1]
    assert (message["seq"], message["message"]["text"]) == (2, "Still here")


async def test_a_reply_to_a_closed_or_someone_elses_conversation_is_a_conflict(
    agent, other_agent, agent_socket, customer, other_customer
) -> None:
    bobs = await conversation_with(customer, "Hi", state="human", assignee=other_agent)
    closed = await conversation_with(other_customer, "Bye", state="human", assignee=agent)
    await sync_to_async(conversation_close)(conversation_id=closed.pk)
    unclaimed = await conversation_with(other_customer, "Anyone?", state="waiting")
    alice = await agent_socket(agent)

    codes = []
    for conversation in (bobs, closed, unclaimed):
        client_msg_id = str(uuid.uuid4())
        await alice.send(
            {
                "type": "reply",
                "conversation_id": str(conversation.pk),
                "client_msg_id": client_msg_id,
                "text": "Hello",
            }
        )
        error = (await alice.recv_until("error"))[-1]
        assert error["client_msg_id"] == client_msg_id
        codes.append(error["code"])

    assert codes == ["conflict", "conflict", "conflict"]
    assert await sync_to_async(Message.objects.filter(role="agent").count)() == 0


async def test_notes_reach_agents_only(agent, other_agent, agent_socket, chat, customer) -> None:
    conversation = await conversation_with(
        customer, "My card was charged twice", state="human", assignee=agent
    )
    customer_socket = await chat(customer)
    alice, bob = await agent_socket(agent), await agent_socket(other_agent)
    await bob.send({"type": "subscribe", "conversation_id": str(conversation.pk), "last_seq": 1})
    await bob.recv_until("subscribed")
    secret = "Customer is a known chargeback risk"

    await alice.send(
        {
            "type": "note",
            "conversation_id": str(conversation.pk),
            "client_msg_id": str(uuid.uuid4()),
            "text": secret,
        }
    )
    ack = (await alice.recv_until("ack"))[-1]
    note = (await bob.recv_until("note"))[-1]

    assert note["note"]["text"] == secret and note["note"]["id"] == ack["note_id"]
    assert note["note"]["author"] == {"id": agent.pk, "name": "Alice Agent"}
    # Never a customer event, nor in the replay, the event log, or the assistant's prompt.
    assert await customer_socket.nothing(0.5)
    await customer_socket.send({"type": "resume", "conversation_id": str(conversation.pk), "last_seq": 0})
    replayed = await customer_socket.recv_until("resumed")
    assert secret not in str(replayed)
    assert [e["type"] for e in replayed] == ["message", "resumed"]
    assert secret not in str(await sync_to_async(event_list)(conversation_id=conversation.pk, after_seq=0))
    await sync_to_async(Conversation.objects.filter(pk=conversation.pk).update)(state="bot", assignee=None)
    turn = await sync_to_async(turn_create)(conversation_id=conversation.pk)
    prompt = await sync_to_async(turn_context)(turn_id=str(turn.pk))
    assert secret not in str(prompt.history) and secret not in prompt.question
    assert secret not in str(await sync_to_async(message_history)(conversation_id=conversation.pk))
    # It took no customer seq.
    conversation_after = await sync_to_async(Conversation.objects.get)(pk=conversation.pk)
    assert conversation_after.last_seq == 1
    assert await sync_to_async(ConversationEvent.objects.filter(conversation=conversation).count)() == 1
    assert await sync_to_async(Note.objects.count)() == 1


async def test_an_agent_who_reconnects_misses_nothing(agent, agent_socket, customer) -> None:
    conversation = await conversation_with(customer, "one", "two", state="human", assignee=agent)
    first = await agent_socket(agent)
    await first.send({"type": "subscribe", "conversation_id": str(conversation.pk), "last_seq": 0})
    got = await first.recv_until("subscribed")
    held = [e["seq"] for e in got if "seq" in e]
    assert held == [1, 2] and got[-1]["last_seq"] == 2
    await first.close()

    # While the agent is away: a customer message, a note and a CRM update.
    await sync_to_async(message_create)(conversation=conversation, role="customer", text="three")
    await sync_to_async(Note.objects.create)(conversation=conversation, author=agent, text="remember")
    from apps.conversations.events import event_emit

    await sync_to_async(event_emit)(
        conversation=conversation,
        type="update",
        payload={"kind": "order", "title": "Shipped", "body": "", "data": {}},
    )

    second = await agent_socket(agent)
    await second.send({"type": "subscribe", "conversation_id": str(conversation.pk), "last_seq": 2})
    got = await second.recv_until("subscribed")

    assert [(e["type"], e.get("seq")) for e in got if e["type"] != "conversation"] == [
        ("message", 3),
        ("update", 4),
        ("note", None),
        ("subscribed", None),
    ]
    assert got[-1]["last_seq"] == 4
    # Live from here on, exactly once.
    await sync_to_async(message_create)(conversation=conversation, role="customer", text="four")
    live = (await second.recv_until("message"))[-1]
    assert live["seq"] == 5 and live["message"]["text"] == "four"


async def test_bad_frames_are_answered_and_the_socket_stays_open(agent, agent_socket) -> None:
    socket = await agent_socket(agent)
    await socket.send({"type": "dance"})
    assert (await socket.recv())["code"] == "unknown_type"
    await socket.comm.send_to(text_data="{nope")
    assert (await socket.recv())["code"] == "bad_json"
    await socket.send(
        {"type": "reply", "conversation_id": "x", "client_msg_id": str(uuid.uuid4()), "text": "hi"}
    )
    assert (await socket.recv())["code"] == "invalid"
    await socket.comm.send_to(text_data='{"type": "note", "text": "' + "x" * 70_000 + '"}')
    assert (await socket.recv())["code"] == "too_large"
    await socket.send({"type": "subscribe", "conversation_id": str(uuid.uuid4()), "last_seq": 0})
    assert (await socket.recv())["code"] == "not_found"
    await socket.send({"type": "ping", "ts": 7})
    assert await socket.recv() == {"type": "pong", "ts": 7}


def names(*agents) -> set[str]:
    return {f"{a.first_name} {a.last_name}" for a in agents}


def showing(viewing=(), typing=None):
    """A presence event whose viewing (and typing) agents are exactly these."""

    def check(event) -> bool:
        if {a["name"] for a in event["viewing"]} != names(*viewing):
            return False
        return typing is None or {a["name"] for a in event["typing"]} == names(*typing)

    return check


async def test_presence_and_typing_reach_the_right_people(
    agent, other_agent, agent_socket, chat, customer
) -> None:
    conversation = await conversation_with(customer, "Hi", state="human", assignee=agent)
    cid = str(conversation.pk)
    customer_socket = await chat(customer)
    alice, bob = await agent_socket(agent), await agent_socket(other_agent)
    await alice.send({"type": "subscribe", "conversation_id": cid, "last_seq": 1})
    await alice.recv_until("subscribed")
    await bob.send({"type": "subscribe", "conversation_id": cid, "last_seq": 1})
    await bob.recv_until("subscribed")

    await alice.recv_until("presence", where=showing([agent, other_agent], typing=[]))

    # Alice (the assignee) types: the customer sees an agent typing; Bob sees who.
    await alice.send({"type": "typing", "conversation_id": cid, "on": True})
    assert (await customer_socket.recv_until("typing"))[-1] == {
        "type": "typing",
        "conversation_id": cid,
        "role": "agent",
        "on": True,
    }
    await bob.recv_until("presence", where=showing([agent, other_agent], typing=[agent]))
    # Bob is not the assignee: his typing shows to agents only.
    await bob.send({"type": "typing", "conversation_id": cid, "on": True})
    await alice.recv_until("presence", where=showing([agent, other_agent], typing=[agent, other_agent]))
    assert await customer_socket.nothing(0.5)
    # The customer types: agents following the conversation see it.
    await customer_socket.send({"type": "typing", "conversation_id": cid, "on": True})
    assert (await bob.recv_until("typing", role="customer"))[-1] == {
        "type": "typing",
        "conversation_id": cid,
        "role": "customer",
        "on": True,
    }
    # Bob leaves: Alice sees only herself.
    await bob.send({"type": "unsubscribe", "conversation_id": cid})
    await alice.recv_until("presence", where=showing([agent]))


async def test_assign_gives_the_conversation_to_a_named_agent(
    agent, other_agent, agent_socket, chat, customer
) -> None:
    conversation = await conversation_with(customer, "Hi", state="waiting")
    customer_socket = await chat(customer)
    alice, bob = await agent_socket(agent), await agent_socket(other_agent)

    await alice.send({"type": "assign", "conversation_id": str(conversation.pk), "agent_id": other_agent.pk})

    assert (await customer_socket.recv_until("handoff"))[-1]["agent"] == "Bob Agent"
    entry = (await bob.recv_until("conversation"))[-1]["conversation"]
    assert entry["assignee"] == {"id": other_agent.pk, "name": "Bob Agent"} and entry["state"] == "human"
    # Now Alice may not reply, Bob may.
    await alice.send(
        {
            "type": "reply",
            "conversation_id": str(conversation.pk),
            "client_msg_id": str(uuid.uuid4()),
            "text": "Me?",
        }
    )
    assert (await alice.recv_until("error"))[-1]["code"] == "conflict"
    await bob.send(
        {
            "type": "reply",
            "conversation_id": str(conversation.pk),
            "client_msg_id": str(uuid.uuid4()),
            "text": "Bob here",
        }
    )
    assert (await bob.recv_until("ack"))[-1]["seq"] == 3  # after the message and the handoff
    await alice.send({"type": "assign", "conversation_id": str(conversation.pk), "agent_id": 999999})
    assert (await alice.recv_until("error"))[-1]["code"] == "not_found"


async def test_round_robin_assignment_respects_the_limit(settings, agent, other_agent, agent_socket) -> None:
    from apps.conversations.services import conversation_request_human
    from tests.support.factories import CustomerFactory

    settings.CONSOLE_AUTO_ASSIGN = True
    settings.CONSOLE_AUTO_ASSIGN_LIMIT = 1
    await agent_socket(agent)
    await agent_socket(other_agent)  # both online

    @sync_to_async
    def ask_for_a_person() -> Conversation:
        conversation = ConversationFactory(customer=CustomerFactory())
        conversation_request_human(conversation_id=conversation.pk)
        conversation.refresh_from_db()
        return conversation

    first, second, third = [await ask_for_a_person() for _ in range(3)]

    assert {first.assignee_id, second.assignee_id} == {agent.pk, other_agent.pk}
    assert first.state == second.state == "human"
    assert third.assignee_id is None and third.state == "waiting"  # both agents at their limit


async def test_closing_asks_for_a_rating_and_a_later_message_opens_a_new_queue_entry(
    agent, agent_socket, chat, customer
) -> None:
    conversation = await conversation_with(customer, "Hi", state="human", assignee=agent)
    customer_socket = await chat(customer)
    alice = await agent_socket(agent)

    await alice.send({"type": "close", "conversation_id": str(conversation.pk)})
    csat = (await customer_socket.recv_until("csat_request"))[-1]
    assert csat["seq"] == 2
    closed = (await alice.recv_until("conversation", where=lambda e: e["conversation"]["state"] == "closed"))[
        -1
    ]
    assert closed["conversation"]["id"] == str(conversation.pk)
    await customer_socket.send(
        {"type": "csat", "conversation_id": str(conversation.pk), "score": 5, "comment": "Quick and kind"}
    )
    await customer_socket.send(
        {"type": "message", "client_msg_id": str(uuid.uuid4()), "text": "One more thing"}
    )
    ack = (await customer_socket.recv_until("ack"))[-1]

    assert ack["conversation_id"] != str(conversation.pk)
    entry = await alice.recv_until(
        "conversation", where=lambda e: e["conversation"]["id"] == ack["conversation_id"]
    )
    assert entry[-1]["conversation"]["state"] == "bot"
    assert entry[-1]["conversation"]["last_message"]["text"] == "One more thing"
    rated = await sync_to_async(Conversation.objects.get)(pk=conversation.pk)
    assert (rated.csat_score, rated.csat_comment) == (5, "Quick and kind")
    # Closing again is a conflict, not a second rating question.
    await alice.send({"type": "close", "conversation_id": str(conversation.pk)})
    assert (await alice.recv_until("error"))[-1]["code"] == "conflict"


async def test_a_session_ended_by_a_password_change_or_logout_is_refused(agent, other_agent) -> None:
    from django.contrib.sessions.models import Session

    cookie = await sync_to_async(session_cookie)(agent)
    assert (await refused(cookie, "http://127.0.0.1:8000"))[0] is True

    @sync_to_async
    def change_password() -> None:
        agent.set_password("new secret")
        agent.save()

    await change_password()
    assert await refused(cookie, "http://127.0.0.1:8000") == (False, 4403)
    other_cookie = await sync_to_async(session_cookie)(other_agent)
    await sync_to_async(Session.objects.filter(session_key=other_cookie).delete)()  # signed out
    assert await refused(other_cookie, "http://127.0.0.1:8000") == (False, 4403)


async def test_a_last_seq_from_the_future_hides_nothing(agent, agent_socket, customer) -> None:
    conversation = await conversation_with(customer, "one", state="human", assignee=agent)
    socket = await agent_socket(agent)
    await socket.send({"type": "subscribe", "conversation_id": str(conversation.pk), "last_seq": 99})
    assert (await socket.recv_until("subscribed"))[-1]["last_seq"] == 1
    await sync_to_async(message_create)(conversation=conversation, role="customer", text="two")
    assert (await socket.recv_until("message"))[-1]["seq"] == 2


async def test_an_agent_who_subscribes_mid_answer_sees_exactly_the_final_text(
    agent, agent_socket, chat, customer
) -> None:
    customer_socket = await chat(customer)
    await customer_socket.send(
        {
            "type": "message",
            "client_msg_id": str(uuid.uuid4()),
            "text": "Tell me everything about shipping and returns, please.",
        }
    )
    ack = (await customer_socket.recv_until("ack"))[-1]
    await customer_socket.recv_until("token")  # the answer is being generated now
    socket = await agent_socket(agent)

    await socket.send(
        {"type": "subscribe", "conversation_id": ack["conversation_id"], "last_seq": ack["seq"]}
    )
    seen = await socket.recv_until("message_end", timeout=30)

    shown = ""
    for event in seen:
        if event["type"] == "partial":
            shown = event["text"]
        elif event["type"] == "token":
            shown += event["text"]
    end = seen[-1]
    assert [e["type"] for e in seen if "seq" in e] == ["message", "message_end"]
    # What the agent watched being written is a beginning of the final answer, never a tail
    # without its start (when the partial was already gone, only the final message shows).
    assert end["text"].startswith(shown)
    assert shown == end["text"] or not any(e["type"] == "partial" for e in seen)
