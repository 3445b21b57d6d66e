"""The chat socket's message write in one statement (`kefu_chat_message_receive`, realtime
migration 0001) against the Python path it stands in for (`message_receive_in` + `turn_create`):
the same rows, the same receipts and events, the same refusals; one round trip in the common case.
These run in autocommit (transactional tests), as the socket's database threads do."""

import asyncio
import uuid

import pytest
from django.db import transaction

from apps.assistant.models import AssistantTurn
from apps.assistant.turn_store import turn_create
from apps.conversations import services
from apps.conversations.errors import ConversationForbidden, ConversationNotFound
from apps.conversations.events import broadcasts_deferred
from apps.conversations.models import Conversation, ConversationEvent, Message
from apps.conversations.services import conversation_close, conversation_request_human, message_receive_in
from apps.realtime import chat_queries
from apps.realtime.chat_queries import message_receive, message_receive_deferred
from apps.teams.models import Team, TeamRule
from tests.support.factories import ConversationFactory, CustomerFactory

pytestmark = pytest.mark.django_db(transaction=True)


def python_path(**kwargs):
    """What the chat socket did before the SQL function, kept for the cases it leaves to Python."""
    with broadcasts_deferred() as pending, transaction.atomic():
        receipt = message_receive_in(**kwargs)
        if receipt.answer_due:
            turn_create(conversation_id=receipt.conversation.pk, trigger_message_id=receipt.message.pk)
    return receipt, pending


def snapshot(customer):
    """The customer's conversations as rows, without ids and times (they differ by nature)."""
    rows = []
    for conversation in Conversation.objects.filter(customer=customer).order_by("created_at"):
        messages = list(Message.objects.filter(conversation=conversation).order_by("seq").values_list(
            "role", "text", "seq", "citations", "stopped", "outcome", "suggestions", "author_id"))
        events = []
        for event in ConversationEvent.objects.filter(conversation=conversation).order_by("seq"):
            payload = dict(event.payload)
            if "message" in payload:
                payload["message"] = {
                    k: v for k, v in payload["message"].items() if k not in ("id", "created_at")}
            events.append((event.seq, event.type, payload))
        turns = list(
            AssistantTurn.objects.filter(conversation=conversation).order_by("created_at").values_list(
                "state", "stop_requested", "owner", "attempts", "tool_call_id", "trigger_message__seq"))
        rows.append(((conversation.state, conversation.team_id, conversation.language, conversation.last_seq,
                      conversation.priority, conversation.csat_comment), messages, events, turns))
    return rows


def receipt_view(receipt, pending):
    return (receipt.created, receipt.answer_due, receipt.message.seq, receipt.message.text,
            receipt.conversation.state, receipt.conversation.language, receipt.conversation.last_seq,
            [(item.wire["type"], item.wire["seq"]) for item in pending])


def conversation_life(customer, receive):
    """One customer's messages through `receive`: what each returned, and the rows left."""
    said = []

    def say(text, named=True, **kwargs):
        open_one = Conversation.objects.filter(customer=customer).exclude(state="closed").first()
        receipt, pending = receive(
            customer_id=customer.pk, client_msg_id=uuid.uuid4(), text=text,
            conversation_id=open_one.pk if named and open_one else None, new_conversation_id=uuid.uuid4(),
            **kwargs,
        )
        said.append(receipt_view(receipt, pending))
        return receipt

    first = say("Where is the money for my invoice 42?", named=False, language="de-DE")
    say("And when does it arrive?")
    say("我的订单在哪里？")  # the customer's language changes with what they write
    conversation_request_human(conversation_id=first.conversation.pk)
    say("Hello? Anyone there?")  # waiting: no answer due, the agents' hook runs
    conversation_close(conversation_id=first.conversation.pk)
    say("One more thing", language="zh-CN", language_fixed=True)  # names the closed one: a new one
    second = say("Thanks", named=False, team="billing")  # to the open one, whatever the widget's team
    conversation_close(conversation_id=second.conversation.pk)
    say("Something else", named=False, team="billing")  # a new one: the widget's team over the rules
    return said, snapshot(customer)


def test_a_conversations_life_writes_what_the_python_path_writes(monkeypatch):
    billing = Team.objects.create(name="Billing", slug="billing")
    TeamRule.objects.create(team=billing, keywords="invoice", order=1)
    waiting = []
    monkeypatch.setattr(
        services, "_waiting_handlers", [lambda conversation_id: waiting.append(conversation_id)])

    said, rows = conversation_life(CustomerFactory(), message_receive_deferred)
    assert (said, rows) == conversation_life(CustomerFactory(), python_path)
    assert [(view[0], view[1]) for view in said] == [(True, True)] * 3 + [(True, False)] + [(True, True)] * 3
    assert [view[5] for view in said] == ["en", "en", "zh-hans", "en", "zh-hans", "zh-hans", "en"]
    assert [row[0][:3] for row in rows] == [
        ("closed", billing.pk, "en"), ("closed", None, "zh-hans"), ("bot", billing.pk, "en")]
    # Per customer: the request for a person, then the message while waiting.
    assert len(waiting) == 4 and waiting[0] == waiting[1] != waiting[2] == waiting[3]


def test_on_the_loops_connection_a_conversations_life_writes_what_the_python_path_writes(
    monkeypatch, settings
):
    """The socket's own path (`message_receive`): the statement sent from the event loop on its
    connection, whose rows and receipts are the thread's (one connection, reused all along)."""
    settings.DB_LOOP_CONNECTIONS = 1
    billing = Team.objects.create(name="Billing", slug="billing")
    TeamRule.objects.create(team=billing, keywords="invoice", order=1)
    monkeypatch.setattr(services, "_waiting_handlers", [lambda conversation_id: None])
    sent = []
    monkeypatch.setattr(chat_queries, "loop_fetchone", recording_results(chat_queries.loop_fetchone, sent))

    with asyncio.Runner() as runner:  # one loop for the whole life, as a web process has

        def on_the_loop(**kwargs):
            async def receive():
                stored = await message_receive(**kwargs)
                return await stored.settled()

            return runner.run(receive())

        said, rows = conversation_life(CustomerFactory(), on_the_loop)

    assert (said, rows) == conversation_life(CustomerFactory(), python_path)
    # All nine on the loop: one a message, and first a `route` for each new conversation that
    # names no team while rules exist (matched in Python between the two).
    assert sent == ["route", "stored", "stored", "stored", "stored", "route", "stored", "stored", "stored"]


def recording_results(function, results):
    async def call(*args, **kwargs):
        row = await function(*args, **kwargs)
        results.append(row[0])
        return row

    return call


def test_a_retry_is_acked_as_the_original_and_writes_nothing():
    customer = CustomerFactory()
    client_msg_id = uuid.uuid4()
    kwargs = dict(
        customer_id=customer.pk, client_msg_id=client_msg_id, text="Hi", new_conversation_id=uuid.uuid4())
    first, _ = message_receive_deferred(**kwargs)
    before = snapshot(customer)
    again, pending = message_receive_deferred(**{**kwargs, "conversation_id": first.conversation.pk})

    assert (again.created, again.answer_due, again.message.pk) == (False, False, first.message.pk)
    assert pending == [] and snapshot(customer) == before


def test_the_refusals_are_the_python_paths():
    customer, other = CustomerFactory(), CustomerFactory()
    theirs = ConversationFactory(customer=other)

    def send(**kwargs):
        return message_receive_deferred(
            **{"customer_id": customer.pk, "client_msg_id": uuid.uuid4(), "text": "Hi", **kwargs})

    with pytest.raises(ConversationForbidden):
        send(conversation_id=theirs.pk)
    with pytest.raises(ConversationForbidden):  # closed, it would otherwise mean "start a new one"
        send(conversation_id=ConversationFactory(customer=other, state="closed").pk)
    with pytest.raises(ConversationNotFound):
        send(conversation_id=uuid.uuid4())
    with pytest.raises(ConversationNotFound):
        send(customer_id=uuid.uuid4())
    assert snapshot(customer) == [] and Message.objects.count() == 0


def test_another_customers_client_msg_id_is_not_a_retry_of_theirs():
    """Idempotency is per customer: reusing someone's client_msg_id neither acks as their message
    nor touches their conversation."""
    ada, eve = CustomerFactory(), CustomerFactory()
    client_msg_id = uuid.uuid4()
    adas, _ = message_receive_deferred(customer_id=ada.pk, client_msg_id=client_msg_id, text="My order?")
    before = snapshot(ada)
    eves, pending = message_receive_deferred(customer_id=eve.pk, client_msg_id=client_msg_id, text="Hi")

    assert (eves.created, eves.answer_due) == (True, True)
    assert eves.message.pk != adas.message.pk and eves.conversation.pk != adas.conversation.pk
    assert str(eves.conversation.customer_id) == str(eve.pk)
    assert [item.wire["message"]["text"] for item in pending] == ["Hi"]
    assert snapshot(ada) == before


def test_a_message_is_one_statement_and_three_start_a_conversation_while_routing_rules_exist(
    django_assert_num_queries,
):
    customer = CustomerFactory()
    with django_assert_num_queries(1):
        first, pending = message_receive_deferred(
            customer_id=customer.pk, client_msg_id=uuid.uuid4(), text="Hello",
            new_conversation_id=uuid.uuid4())
    with django_assert_num_queries(1):
        second, _ = message_receive_deferred(
            customer_id=customer.pk, client_msg_id=uuid.uuid4(), text="Again",
            conversation_id=first.conversation.pk)
    # The committed `message` event waits for the socket, which sends it after its ack.
    assert [(item.wire["type"], item.wire["seq"], item.wire["message"]["text"]) for item in pending] == [
        ("message", 1, "Hello")]
    assert second.message.seq == 2
    assert AssistantTurn.objects.filter(conversation=first.conversation).count() == 2

    # An enabled rule: the function asks for routing, the rules are matched here, then it stores.
    billing = Team.objects.create(name="Billing", slug="billing")
    TeamRule.objects.create(team=billing, keywords="invoice")
    ada, bo = CustomerFactory(), CustomerFactory()
    with django_assert_num_queries(3):
        routed, _ = message_receive_deferred(
            customer_id=ada.pk, client_msg_id=uuid.uuid4(), text="my invoice")
    # The widget's team needs no rules: one statement again.
    with django_assert_num_queries(1):
        named, _ = message_receive_deferred(
            customer_id=bo.pk, client_msg_id=uuid.uuid4(), text="hello", team="billing")
    teams = Conversation.objects.filter(pk__in=[routed.conversation.pk, named.conversation.pk])
    assert list(teams.values_list("team_id", flat=True)) == [billing.pk, billing.pk]
