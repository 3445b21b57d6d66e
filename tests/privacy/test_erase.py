"""`customer_erase`: after it no table holds the customer's name, e-mail or external id (every
text and JSON column of every table, scanned with SQL), the conversations and their counts,
states, seqs and CSAT scores stay, another customer's data is untouched, the erasure is one
audit row, and the customer's open chat socket is closed (and their token names no one)."""

from __future__ import annotations

import io
import json

import pytest
from asgiref.sync import sync_to_async
from django.core.management import call_command
from django.db import connection

from apps.audit.models import AuditEntry
from apps.connectors.models import ToolCall
from apps.conversations.models import Conversation, ConversationEvent, Message, MessageFeedback
from apps.customers.models import Customer
from tests.support.people import token_for
from tests.support.sockets import Customer as ChatClient

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def tables_holding(needle: str) -> list[str]:
    """Every `table.column` of a text, varchar or JSON type whose value contains `needle`."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public' "
            "AND data_type IN ('text', 'character varying', 'json', 'jsonb')"
        )
        columns = cursor.fetchall()
        found = []
        for table, column in columns:
            cursor.execute(f'SELECT count(*) FROM "{table}" WHERE "{column}"::text ILIKE %s', [f"%{needle}%"])
            if cursor.fetchone()[0]:
                found.append(f"{table}.{column}")
        return found


def statistics() -> dict:
    return {
        "conversations": Conversation.objects.count(),
        "messages": Message.objects.count(),
        "events": ConversationEvent.objects.count(),
        "tool_calls": ToolCall.objects.count(),
        "feedback": sorted(MessageFeedback.objects.values_list("helpful", flat=True)),
        "states": sorted(Conversation.objects.values_list("state", "csat_score", "last_seq")),
        "customers": Customer.objects.count(),
    }


async def test_erasure_removes_the_person_everywhere_keeps_the_statistics_and_closes_their_socket(
    web_server, people
) -> None:
    zoe, keep = people
    server = web_server()
    socket = ChatClient(server.ws_url, await sync_to_async(token_for)(zoe.customer))
    assert (await socket.connect())["type"] == "ready"
    for needle in (zoe.name, zoe.email, zoe.external_id):
        assert await sync_to_async(tables_holding)(needle) != []
    before = await sync_to_async(statistics)()
    kept = {n: await sync_to_async(tables_holding)(n) for n in (keep.name, keep.email, keep.external_id)}

    out = io.StringIO()
    await sync_to_async(call_command)(
        "customer_erase", "--customer", str(zoe.customer.pk), "--yes", stdout=out
    )

    assert (await socket.recv()) == {"type": "closed", "code": 4401}
    again = ChatClient(server.ws_url, socket.token)
    assert (await again.connect()) == {"type": "closed", "code": 4401}  # the token names no one now
    result = json.loads(out.getvalue())
    assert (result["customer_id"], result["erased"], result["conversations"]) == (
        str(zoe.customer.pk),
        True,
        1,
    )
    for needle in (zoe.name, zoe.email, zoe.external_id, "Quistgaard"):
        assert await sync_to_async(tables_holding)(needle) == [], needle
    for needle, columns in kept.items():  # the other customer keeps everything, everywhere
        assert await sync_to_async(tables_holding)(needle) == columns
    assert sorted(kept[keep.name]) == [  # the seed reaches every table that can hold a name
        "audit_auditentry.after",
        "connectors_toolcall.detail",
        "console_note.text",
        "conversations_conversation.csat_comment",
        "conversations_conversationevent.payload",
        "conversations_message.text",
        "conversations_messagefeedback.comment",
        "customers_customer.name",
        "django_admin_log.object_repr",
        "webhooks_eventpayload.payload",
    ]
    assert await sync_to_async(statistics)() == before
    moved = await Conversation.objects.select_related("customer").aget(pk=zoe.conversation.pk)
    assert (str(moved.customer_id), moved.customer.name, moved.customer.external_id) == (
        result["placeholder_customer_id"],
        "",
        None,
    )
    rows = [
        r
        async for r in AuditEntry.objects.filter(action="customer.erase").values_list(
            "target_id", "actor_id", "detail"
        )
    ]
    assert rows == [
        (
            str(zoe.customer.pk),
            None,
            {"conversations": 1, "placeholder_customer_id": result["placeholder_customer_id"]},
        )
    ]
