"""Fewer index entries per new conversation and message (the chat ack waits for each one).

- `Conversation.customer` and `ConversationEvent.conversation` lose their own indexes: the
  composite ones (conv_customer_state, conv_event_seq_uniq) lead with the same column.
- Nullable foreign keys (a conversation's assignee and team, a message's author) and a message's
  client_msg_id are indexed only where set: the lookups are all by a value, and most rows hold
  none, so a customer's message no longer writes a NULL entry into each.

The new indexes are built CONCURRENTLY before the old ones are dropped: a large messages table
keeps taking writes, and lookups keep an index, while this runs.
"""

import django.db.models.deletion
from django.conf import settings
from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [
        ("conversations", "0004_conversation_language"),
        ("customers", "0004_customer_answer_hits"),
        ("teams", "0002_teamrule"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="conversation",
            index=models.Index(condition=models.Q(assignee__isnull=False), fields=["assignee"], name="conv_assignee"),
        ),
        AddIndexConcurrently(
            model_name="conversation",
            index=models.Index(condition=models.Q(team__isnull=False), fields=["team"], name="conv_team"),
        ),
        AddIndexConcurrently(
            model_name="message",
            index=models.Index(
                condition=models.Q(client_msg_id__isnull=False), fields=["client_msg_id"],
                name="message_client_msg_id_set",
            ),
        ),
        AddIndexConcurrently(
            model_name="message",
            index=models.Index(condition=models.Q(author__isnull=False), fields=["author"], name="message_author"),
        ),
        RemoveIndexConcurrently(model_name="message", name="message_client_msg_id"),
        migrations.AlterField(
            model_name="conversation",
            name="assignee",
            field=models.ForeignKey(
                blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL,
                related_name="+", to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AlterField(
            model_name="conversation",
            name="customer",
            field=models.ForeignKey(
                db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="conversations",
                to="customers.customer",
            ),
        ),
        migrations.AlterField(
            model_name="conversation",
            name="team",
            field=models.ForeignKey(
                blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL,
                related_name="+", to="teams.team",
            ),
        ),
        migrations.AlterField(
            model_name="conversationevent",
            name="conversation",
            field=models.ForeignKey(
                db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="events",
                to="conversations.conversation",
            ),
        ),
        migrations.AlterField(
            model_name="message",
            name="author",
            field=models.ForeignKey(
                blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL,
                related_name="+", to=settings.AUTH_USER_MODEL,
            ),
        ),
    ]
