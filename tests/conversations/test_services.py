"""Conversation services: idempotent customer messages, handoff, close and rating."""

import uuid

import pytest
from django.db import transaction

from apps.conversations.errors import ConversationConflict, ConversationForbidden, ConversationNotFound
from apps.conversations.events import broadcasts_deferred
from apps.conversations.models import ConversationEvent, ConversationState, Message
from apps.conversations.selectors import event_list
from apps.conversations.services import (
    conversation_close,
    conversation_rate,
    conversation_request_human,
    message_receive,
)
from apps.teams.models import Team, TeamRule
from tests.support.factories import ConversationFactory, CustomerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def customer():
    return CustomerFactory()


def receive(customer, text="Hello", client_msg_id=None, **kwargs):
    return message_receive(
        customer_id=customer.pk, client_msg_id=client_msg_id or uuid.uuid4(), text=text, **kwargs
    )


def test_first_message_starts_a_conversation_with_the_given_id(customer):
    new_id = uuid.uuid4()
    receipt = receive(customer, "Where is my order?", new_conversation_id=new_id)

    assert receipt.conversation.pk == new_id
    assert (receipt.created, receipt.answer_due) == (True, True)
    message = Message.objects.get()
    assert (message.role, message.text, message.seq) == ("customer", "Where is my order?", 1)
    assert event_list(conversation_id=new_id, after_seq=0) == [
        {
            "type": "message",
            "conversation_id": str(new_id),
            "seq": 1,
            "message": {
                "id": str(message.id),
                "role": "customer",
                "text": "Where is my order?",
                "created_at": message.created_at.isoformat(),
                "citations": [],
                "author": None,
            },
        }
    ]


def test_message_without_conversation_goes_to_the_open_one(customer):
    first = receive(customer)
    second = receive(customer, "and another thing")
    assert second.conversation.pk == first.conversation.pk
    assert second.message.seq == 2


def test_retry_with_same_client_msg_id_stores_once_and_returns_the_same_message(customer):
    cmid = uuid.uuid4()
    first = receive(customer, client_msg_id=cmid)
    again = receive(customer, client_msg_id=cmid)
    again_named = receive(customer, client_msg_id=cmid, conversation_id=first.conversation.pk)

    assert (again.created, again.answer_due) == (False, False)
    assert again.message.pk == again_named.message.pk == first.message.pk
    assert again.message.seq == 1
    assert Message.objects.count() == 1
    assert ConversationEvent.objects.count() == 1


def test_a_retry_naming_another_conversation_is_acked_as_the_original(customer):
    # The client may have lost track of where it sent it (the conversation closed meanwhile,
    # say): the retry is the same message, never a second one and never an error.
    cmid = uuid.uuid4()
    first = receive(customer, client_msg_id=cmid)
    first.conversation.state = "closed"
    first.conversation.save(update_fields=["state"])
    other = ConversationFactory(customer=customer)
    again = receive(customer, client_msg_id=cmid, conversation_id=other.pk)
    assert (again.created, again.message.pk, again.message.seq) == (False, first.message.pk, 1)
    assert Message.objects.count() == 1


def test_other_customers_conversation_is_forbidden_and_unknown_is_not_found(customer):
    theirs = ConversationFactory()
    with pytest.raises(ConversationForbidden):
        receive(customer, conversation_id=theirs.pk)
    with pytest.raises(ConversationNotFound):
        receive(customer, conversation_id=uuid.uuid4())
    assert Message.objects.count() == 0


def test_message_to_a_closed_conversation_starts_a_new_one(customer):
    closed = ConversationFactory(customer=customer, state=ConversationState.CLOSED)
    receipt = receive(customer, conversation_id=closed.pk)
    assert receipt.conversation.pk != closed.pk
    assert receipt.conversation.state == ConversationState.BOT


def test_no_answer_is_due_once_a_human_is_asked_for(customer):
    conversation = receive(customer).conversation
    conversation_request_human(conversation_id=conversation.pk)
    assert receive(customer).answer_due is False


@pytest.mark.django_db(transaction=True)
def test_message_receive_query_count(customer, django_assert_num_queries):
    conversation = receive(customer, "Hello, where is my parcel today?").conversation
    # BEGIN, lock customer, idempotency lookup + conversation (one query), seq bump with the
    # event and message inserts (one statement), COMMIT: one transaction, no savepoints; the
    # language, still English, is not written again. (The socket's path defers what follows
    # the commit — broadcasts, the agents' queue — until after its ack.)
    with django_assert_num_queries(5), broadcasts_deferred():
        receipt = receive(customer, "And when will it arrive at my door?", conversation_id=conversation.pk)
    # The conversation as the lookup loaded it, each field in its place (seq 2: this message).
    assert (receipt.conversation.language, receipt.conversation.last_seq) == ("en", 2)


@pytest.mark.django_db(transaction=True)
def test_a_first_message_routes_and_detects_in_the_same_statements(customer, django_assert_num_queries):
    billing = Team.objects.create(name="Billing", slug="billing")
    TeamRule.objects.create(team=billing, keywords="nope", order=1)
    TeamRule.objects.create(team=billing, pattern=r"invoice\s+\d+", order=2)
    TeamRule.objects.create(team=billing, keywords="invoice", enabled=False, order=0)
    # BEGIN, lock customer, lookup (with the team routing a new conversation needs: no query of
    # its own), conversation insert (team and language in it), seq bump + event + message, COMMIT.
    with django_assert_num_queries(6), broadcasts_deferred():
        receipt = receive(customer, "Where is the money for invoice 42 please")
    receipt.conversation.refresh_from_db()
    assert (receipt.conversation.team_id, receipt.conversation.language) == (billing.pk, "en")
    # The widget's team wins over the rules; an unknown one routes by the rules.
    sales = Team.objects.create(name="Sales", slug="sales")
    other = CustomerFactory()
    assert receive(other, "invoice 7", team="sales").conversation.team_id == sales.pk
    third = CustomerFactory()
    assert receive(third, "invoice 7", team="no-such-team").conversation.team_id == billing.pk


def test_request_human_moves_to_waiting_once_and_emits_handoff(customer):
    conversation = receive(customer).conversation
    conversation_request_human(conversation_id=conversation.pk)
    conversation_request_human(conversation_id=conversation.pk)

    conversation.refresh_from_db()
    assert conversation.state == ConversationState.WAITING
    handoffs = [e for e in event_list(conversation_id=conversation.pk, after_seq=0) if e["type"] == "handoff"]
    assert handoffs == [
        {
            "type": "handoff",
            "conversation_id": str(conversation.pk),
            "seq": 2,
            "state": "waiting",
            "agent": None,
        }
    ]


def test_close_asks_for_a_rating_and_the_rating_is_kept(customer):
    conversation = receive(customer).conversation
    with pytest.raises(ConversationConflict):
        conversation_rate(conversation_id=conversation.pk, score=5)

    conversation_close(conversation_id=conversation.pk)
    conversation_rate(conversation_id=conversation.pk, score=4, comment="quick")

    conversation.refresh_from_db()
    assert (conversation.state, conversation.csat_score, conversation.csat_comment) == ("closed", 4, "quick")
    assert event_list(conversation_id=conversation.pk, after_seq=1) == [
        {
            "type": "csat_request",
            "conversation_id": str(conversation.pk),
            "seq": 2,
            "question": "How did we do? Rate this conversation from 1 to 5.",
        }
    ]
    with pytest.raises(ConversationConflict):
        conversation_request_human(conversation_id=conversation.pk)


def test_messages_inside_a_failed_transaction_leave_nothing(customer):
    with pytest.raises(RuntimeError), transaction.atomic():
        receive(customer)
        raise RuntimeError
    assert Message.objects.count() == ConversationEvent.objects.count() == 0
