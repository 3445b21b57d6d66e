"""`customer_export` (command and console): one JSON document with the customer, every
conversation with its messages, events, tool calls, notes, CSAT and feedback, and the webhook
events matched to them; nothing of another customer. Audited."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command

from apps.audit.models import AuditEntry

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_command_prints_everything_about_the_customer_and_nothing_of_another(people) -> None:
    zoe, keep = people
    out = io.StringIO()
    call_command("customer_export", "--customer", str(zoe.customer.pk), stdout=out)
    document = json.loads(out.getvalue())

    assert document["customer"] | {"created_at": None, "updated_at": None} == {
        "id": str(zoe.customer.pk),
        "external_id": zoe.external_id,
        "name": zoe.name,
        "email": zoe.email,
        "email_verified": True,
        "created_at": None,
        "updated_at": None,
    }
    [conversation] = document["conversations"]
    assert (conversation["id"], conversation["state"], conversation["csat"]) == (
        str(zoe.conversation.pk),
        "closed",
        {"score": 4, "comment": f"Thanks, {zoe.name}"},
    )
    assert [(m["role"], m["text"]) for m in conversation["messages"]] == [
        ("customer", f"Hi, I am {zoe.name}, write to {zoe.email}"),
        ("assistant", f"Hello {zoe.name}!"),
    ]
    assert conversation["messages"][1]["feedback"]["comment"] == f"{zoe.name} says: not helpful"
    assert [(e["seq"], e["type"]) for e in conversation["events"]] == [
        (1, "message"),
        (2, "message"),
        (3, "update"),
    ]
    assert [(c["name"], c["arguments"], c["result"]) for c in conversation["tool_calls"]] == [
        ("order_status", {"email": zoe.email}, {"customer": zoe.external_id})
    ]
    assert [n["text"] for n in conversation["notes"]] == [f"{zoe.name} called twice"]
    assert [(w["type"], w["data"]) for w in document["webhook_events"]] == [
        ("order.shipped", {"customer": {"external_id": zoe.external_id, "email": zoe.email}})
    ]
    text = out.getvalue()
    for foreign in (
        keep.name,
        keep.email,
        keep.external_id,
        str(keep.customer.pk),
        str(keep.conversation.pk),
    ):
        assert foreign not in text
    [row] = AuditEntry.objects.filter(action="customer.export")
    assert (row.target_type, row.target_id, row.actor_id) == (
        "customers.customer",
        str(zoe.customer.pk),
        None,
    )
    assert row.actor_label.startswith("command customer_export")
