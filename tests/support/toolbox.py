"""Helpers for tool tests: a conversation's tool box, and the statuses of its tool events."""

from asgiref.sync import sync_to_async

from apps.connectors.toolbox import toolbox_for


async def box_for(conversation):
    return await sync_to_async(toolbox_for)(
        conversation_id=str(conversation.pk), customer_id=str(conversation.customer_id), turn_id=""
    )


def statuses(events):
    return [e["status"] for e in events]
