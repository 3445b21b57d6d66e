"""Erasing a customer changes no report (issue 20: "the reports' totals are unchanged"): the
summary a supervisor reads over HTTP (`GET /api/reports/summary`), for everyone, per team and
per agent, is the same right after the erasure, after the facts of the erased conversations are
recomputed from their scrubbed rows (as the sweep does), and after the nightly full rebuild;
and so is every conversation's fact, though the conversations now belong to an anonymous
placeholder customer."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import uuid4

import pytest
from django.test import Client
from django.utils import timezone

from apps.audit.models import AuditEntry
from apps.console import services as console
from apps.console.roles import role_join
from apps.conversations import services as conv
from apps.conversations.models import Conversation, ConversationEvent, Message, MessageRole
from apps.customers.models import Customer
from apps.reports.facts import facts_refresh, rollups_rebuild
from apps.reports.models import ConversationFact
from apps.reports.pending import facts_pending_flush
from apps.sla.models import SlaClock
from apps.teams.models import Team
from tests.support.people import make_user

pytestmark = pytest.mark.django_db(transaction=True)


def story(
    customer: Customer,
    *,
    team: Team,
    agent: Any = None,
    csat: int | None = None,
    frt: int = 0,
    resolution: int = 0,
) -> Conversation:
    """Played through the services: a question, the assistant's answer (thumbed down when an
    agent follows), then with an agent: a request for a person, claim, reply, close, rating."""
    receipt = conv.message_receive(customer_id=customer.pk, client_msg_id=uuid4(), text="Where is my order?")
    conversation = receipt.conversation
    Conversation.objects.filter(pk=conversation.pk).update(team=team)
    answer = conv.message_create(
        conversation=conversation, role=MessageRole.ASSISTANT, text="It ships today.", outcome="answered"
    )
    if agent is not None:
        conv.feedback_record(
            customer_id=customer.pk,
            conversation_id=conversation.pk,
            message_id=answer.pk,
            helpful=False,
            comment=f"{customer.name} wanted a person",
        )
        conv.conversation_request_human(conversation_id=conversation.pk)
        console.conversation_claim(conversation_id=conversation.pk, agent=agent)
        console.agent_reply(
            conversation_id=conversation.pk, agent=agent, client_msg_id=uuid4(), text=f"Hi {customer.name}"
        )
        console.conversation_close(conversation_id=conversation.pk, agent=agent)
        SlaClock.objects.create(
            conversation=conversation, kind="first_response", due_at=timezone.now() + timedelta(hours=1)
        )
        # Known durations: a person asked for `frt` before the reply, the start `resolution` before the close.
        replied = Message.objects.get(conversation=conversation, role=MessageRole.AGENT).created_at
        ConversationEvent.objects.filter(conversation=conversation, type="handoff").update(
            created_at=replied - timedelta(seconds=frt)
        )
        closed = Conversation.objects.get(pk=conversation.pk).closed_at
        Conversation.objects.filter(pk=conversation.pk).update(
            created_at=closed - timedelta(seconds=resolution)
        )
    if csat is not None:
        conv.conversation_rate(
            conversation_id=conversation.pk, score=csat, comment=f"Thanks, {customer.name}"
        )
    return conversation


def facts() -> dict[str, dict[str, Any]]:
    """Every conversation's fact, without when it was computed."""
    return {
        str(f["conversation_id"]): {k: v for k, v in f.items() if k != "refreshed_at"}
        for f in ConversationFact.objects.values()
    }


def test_erasing_a_customer_leaves_every_report_figure_and_fact_as_it_was() -> None:
    billing = Team.objects.create(name="Billing", slug="billing")
    shipping = Team.objects.create(name="Shipping", slug="shipping")
    alice = make_user("alice@example.com", "Alice", "Agent")
    billing.members.add(alice)
    admin = make_user("root@example.org", "Root", "Admin")
    role_join(user=admin, role="admin")
    zoe = Customer.objects.create(name="Zoe Quistgaard", email="zoe.q@erase.example", external_id="crm-7731")
    grete = Customer.objects.create(name="Grete Keepwell", email="grete@keep.example", external_id="crm-2210")
    erased = [
        story(zoe, team=billing, agent=alice, csat=4, frt=600, resolution=1800),
        story(zoe, team=shipping),
    ]
    kept = [
        story(grete, team=billing, agent=alice, csat=2, frt=300, resolution=900),
        story(grete, team=shipping),
    ]
    # What the listener and the sweep would have done by the time anyone reads a report.
    facts_pending_flush()
    facts_refresh(ids=[c.pk for c in [*erased, *kept]])

    client = Client(REMOTE_ADDR="10.9.8.7")
    client.force_login(admin)
    now = timezone.now()
    window = {"since": (now - timedelta(days=1)).isoformat(), "until": (now + timedelta(days=1)).isoformat()}
    scopes = [{}, {"team": billing.pk}, {"team": shipping.pk}, {"agent": alice.pk}]

    def figures() -> list[dict[str, Any]]:
        answers = [client.get("/api/reports/summary", {**window, **scope}) for scope in scopes]
        assert [a.status_code for a in answers] == [200] * len(scopes)
        return [{k: v for k, v in a.json().items() if k not in ("since", "until")} for a in answers]

    before, facts_before = figures(), facts()
    # Something to keep: every figure of the four conversations.
    assert before[0] == {
        "conversations": 4,
        "ai_involved": 4,
        "ai_resolved": 0,
        "ai_resolution_rate": 0.0,
        "handovers": 2,
        "first_response_s": {"p50": 300, "p90": 600},
        "resolution_s": {"p50": 900, "p90": 1800},
        "csat": {"count": 2, "average": 3.0},
        "sla": {"met": 2, "breached": 0},
        "feedback": {"helpful": 0, "unhelpful": 2},
    }
    assert [b["conversations"] for b in before] == [4, 2, 2, 2]
    assert len(facts_before) == 4

    response = client.post(f"/console/customers/{zoe.pk}/erase/", {"confirm": "on"})
    assert response.status_code == 302 and not Customer.objects.filter(pk=zoe.pk).exists()
    assert AuditEntry.objects.filter(action="customer.erase").count() == 1
    placeholder = {Conversation.objects.get(pk=c.pk).customer_id for c in erased}
    assert len(placeholder) == 1 and placeholder != {zoe.pk}  # moved to one anonymous customer

    assert figures() == before  # right after the erasure
    facts_pending_flush()
    facts_refresh(ids=[c.pk for c in [*erased, *kept]])  # recomputed from the scrubbed rows
    assert (figures(), facts()) == (before, facts_before)
    rollups_rebuild()  # the nightly rebuild, from scratch
    assert (figures(), facts()) == (before, facts_before)
