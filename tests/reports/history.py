"""Hand-made conversation histories for the report tests, built with the real services (a
customer's message, the assistant's answer, a request for a person, an agent's claim and reply,
a close, a rating, a thumbs up/down), then moved to known instants so each figure has a known
answer. Not a test module: the report tests import it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from apps.console import services as console
from apps.conversations import services as conv
from apps.conversations.models import Conversation, ConversationEvent, Message, MessageRole
from apps.customers.models import Customer
from apps.reports.facts import facts_refresh
from apps.sla.models import SlaClock

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)  # a Monday, well before "now"


@dataclass
class Step:
    at: float  # minutes after the start
    kind: str  # customer, assistant, human (asked for a person), claim, agent, close
    agent: Any = None


@dataclass
class Story:
    steps: list[Step]
    start: datetime = T0
    team: Any = None
    csat: int | None = None
    feedback: list[bool] = field(default_factory=list)  # on the assistant's answers, in order
    sla_breached: bool | None = None  # None: no SLA clocks


def build(story: Story) -> Conversation:
    """Play the story through the services, then put every row at its instant."""
    customer = Customer.objects.create(name=f"Customer {uuid4().hex[:6]}")
    conversation: Conversation | None = None
    times: dict[str, list[datetime]] = {"messages": [], "handoffs": []}
    for step in story.steps:
        when = story.start + timedelta(minutes=step.at)
        if step.kind == "customer":
            receipt = conv.message_receive(
                customer_id=customer.pk,
                client_msg_id=uuid4(),
                text="Hello",
                conversation_id=conversation.pk if conversation else None,
            )
            conversation = receipt.conversation
            if story.team is not None and conversation.team_id is None:
                Conversation.objects.filter(pk=conversation.pk).update(team=story.team)
            times["messages"].append(when)
        elif step.kind == "assistant":
            conv.message_create(
                conversation=conversation, role=MessageRole.ASSISTANT, text="Here you go", outcome="answered"
            )
            times["messages"].append(when)
        elif step.kind == "human":
            conv.conversation_request_human(conversation_id=conversation.pk)
            times["handoffs"].append(when)
        elif step.kind == "claim":
            console.conversation_claim(conversation_id=conversation.pk, agent=step.agent)
            times["handoffs"].append(when)
        elif step.kind == "agent":
            console.agent_reply(
                conversation_id=conversation.pk, agent=step.agent, client_msg_id=uuid4(), text="Let me look"
            )
            times["messages"].append(when)
        elif step.kind == "close":
            conv.conversation_close(conversation_id=conversation.pk)
            Conversation.objects.filter(pk=conversation.pk).update(closed_at=when)
    assistant = list(Message.objects.filter(conversation=conversation, role="assistant").order_by("seq"))
    for message, helpful in zip(assistant, story.feedback, strict=False):
        conv.feedback_record(
            customer_id=customer.pk, conversation_id=conversation.pk, message_id=message.pk, helpful=helpful
        )
    if story.csat is not None:
        conv.conversation_rate(conversation_id=conversation.pk, score=story.csat)
    _retime(conversation, story, times)
    return conversation


def _retime(conversation: Conversation, story: Story, times: dict[str, list[datetime]]) -> None:
    Conversation.objects.filter(pk=conversation.pk).update(created_at=story.start)
    for message, when in zip(
        Message.objects.filter(conversation=conversation).order_by("seq"), times["messages"], strict=True
    ):
        Message.objects.filter(pk=message.pk).update(created_at=when)
    handoffs = ConversationEvent.objects.filter(conversation=conversation, type="handoff").order_by("seq")
    for event, when in zip(handoffs, times["handoffs"], strict=True):
        ConversationEvent.objects.filter(pk=event.pk).update(created_at=when)
    SlaClock.objects.filter(conversation=conversation).delete()  # the SLA app's own, if a policy made any
    if story.sla_breached is not None:
        due = story.start + timedelta(hours=1)
        SlaClock.objects.create(
            conversation=conversation,
            kind="first_response",
            due_at=due,
            started_at=story.start,
            breached_at=due if story.sla_breached else None,
        )
    # Rows moved by hand publish nothing: refresh as the sweep would.
    facts_refresh(ids=[conversation.pk])
