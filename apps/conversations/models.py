"""Conversations, their messages and the durable event log.

Every durable event of a conversation has a `seq` that rises by one, starting at 1;
`Conversation.last_seq` is the counter, bumped in the same transaction as the event insert
(apps/conversations/events.py), so the row lock makes concurrent writers take turns and a
rolled-back transaction gives its number back: no gaps, no duplicates.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class ConversationState(models.TextChoices):
    BOT = "bot", _("Assistant")
    WAITING = "waiting", _("Waiting for an agent")
    HUMAN = "human", _("With an agent")
    CLOSED = "closed", _("Closed")


class Priority(models.TextChoices):
    LOW = "low", "Low"
    NORMAL = "normal", "Normal"
    HIGH = "high", "High"
    URGENT = "urgent", "Urgent"


class Conversation(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Indexed by conv_customer_state (customer first): a second index would only slow each insert.
    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.CASCADE, related_name="conversations", db_index=False
    )
    state = models.CharField(max_length=10, choices=ConversationState.choices, default=ConversationState.BOT)
    # Nullable foreign keys are indexed where set only (Meta): most rows have none, and each
    # index a new row enters is work the customer's first message waits for.
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        db_index=False,
    )
    # The team whose agents see it (null: only supervisors and admins, and whoever holds it).
    team = models.ForeignKey(
        "teams.Team", on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_index=False
    )
    priority = models.CharField(max_length=10, choices=Priority.choices, default=Priority.NORMAL)
    # The customer's language, a code of settings.LANGUAGES ("" = not known yet): what Kefu's own
    # sentences are said in (apps/conversations/language.py decides it per customer message).
    language = models.CharField(max_length=16, blank=True, default="")
    last_seq = models.PositiveBigIntegerField(default=0)
    csat_score = models.PositiveSmallIntegerField(null=True, blank=True)
    csat_comment = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["customer", "state"], name="conv_customer_state"),
            models.Index(
                fields=["assignee"], condition=models.Q(assignee__isnull=False), name="conv_assignee"
            ),
            models.Index(fields=["team"], condition=models.Q(team__isnull=False), name="conv_team"),
        ]

    def __str__(self) -> str:
        return f"conversation {self.id} ({self.state})"


class MessageRole(models.TextChoices):
    CUSTOMER = "customer", "Customer"
    ASSISTANT = "assistant", "Assistant"
    AGENT = "agent", "Agent"
    SYSTEM = "system", "System"


class Message(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    role = models.CharField(max_length=10, choices=MessageRole.choices)
    text = models.TextField(blank=True)
    # [{"n": 1, "document_id": ..., "title": ..., "url": ..., "snippet": ...}] (PROTOCOL.md §2)
    citations = models.JSONField(default=list, blank=True)
    # The agent who wrote it; customers and the assistant have none (indexed where set: Meta).
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        db_index=False,
    )
    # Made by the client; a retried frame with the same id is the same message.
    client_msg_id = models.UUIDField(null=True, blank=True)
    # An assistant answer the customer stopped part way.
    stopped = models.BooleanField(default=False)
    # The seq of this message's durable `message` event (what `ack` reports).
    seq = models.PositiveBigIntegerField(null=True, blank=True)
    # An assistant answer's outcome (PROTOCOL.md §2 `message_end`: answered, clarify, declined,
    # tool, stopped) and, for `clarify`, the topics it offered ([{"title", "document_id"}]).
    outcome = models.CharField(max_length=10, blank=True, default="")
    suggestions = models.JSONField(default=list, blank=True)
    # Set in Python (not auto_now_add) so the `message` event can be built before the insert.
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["conversation", "created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["conversation", "client_msg_id"],
                condition=models.Q(client_msg_id__isnull=False),
                name="message_client_msg_id_uniq",
            )
        ]
        indexes = [
            # A retried frame is looked up by its id alone (before its conversation is known).
            models.Index(
                fields=["client_msg_id"], condition=models.Q(client_msg_id__isnull=False),
                name="message_client_msg_id_set",
            ),
            models.Index(fields=["author"], condition=models.Q(author__isnull=False), name="message_author"),
        ]

    def __str__(self) -> str:
        return f"{self.role}: {self.text[:40]}"


class MessageFeedback(models.Model):
    """A customer's thumbs up/down on one assistant answer (PROTOCOL.md §2 `feedback`); sending
    it again replaces it, so there is at most one per message."""

    message = models.OneToOneField(Message, on_delete=models.CASCADE, related_name="feedback")
    helpful = models.BooleanField()
    comment = models.TextField(blank=True, max_length=1000)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["helpful", "updated_at"], name="feedback_helpful_updated")]

    def __str__(self) -> str:
        return f"{'helpful' if self.helpful else 'unhelpful'}: {self.message_id}"


class ConversationEvent(models.Model):
    """A durable event as the client receives it (minus `type`, `conversation_id` and `seq`)."""

    # Indexed by conv_event_seq_uniq (conversation first).
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="events", db_index=False
    )
    seq = models.PositiveBigIntegerField()
    type = models.CharField(max_length=30)
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["conversation", "seq"]
        constraints = [models.UniqueConstraint(fields=["conversation", "seq"], name="conv_event_seq_uniq")]

    def __str__(self) -> str:
        return f"{self.conversation_id}#{self.seq} {self.type}"
