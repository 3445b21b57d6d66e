"""Assistant turns: that an answer is due is a row in Postgres, not a task in one process.

A turn is created in the same transaction as the customer message it answers. A runner (any
web process) claims it with a lease it keeps renewing; if the runner dies, the lease lapses
and another runner takes the turn over (apps/assistant/turns.py). The answer's message id is
fixed when the turn is created, so a takeover streams and stores under the same id and the
customer sees exactly one `message_end` for it.
"""

from __future__ import annotations

import uuid

from django.db import models


class TurnState(models.TextChoices):
    DUE = "due", "Due"  # waiting for a runner
    RUNNING = "running", "Running"  # a runner holds the lease (or held it: see lease_until)
    DONE = "done", "Done"  # answered, stopped, or dropped (the conversation left the assistant)


class AssistantTurn(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    conversation = models.ForeignKey(
        "conversations.Conversation", on_delete=models.CASCADE, related_name="assistant_turns"
    )
    # The customer message it answers (null for a follow-up after a tool confirmation).
    trigger_message = models.ForeignKey(
        "conversations.Message", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    # A write the customer approved: the turn runs it and reports the outcome.
    tool_call_id = models.UUIDField(null=True, blank=True)
    # The id the answer streams and is stored under, whichever runner produces it.
    message_id = models.UUIDField(default=uuid.uuid4, unique=True)
    state = models.CharField(max_length=10, choices=TurnState.choices, default=TurnState.DUE)
    stop_requested = models.BooleanField(default=False)
    owner = models.CharField(max_length=100, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [
            models.Index(
                fields=["conversation", "created_at"],
                condition=~models.Q(state="done"),
                name="turn_open_by_conversation",
            ),
            models.Index(
                fields=["lease_until"], condition=~models.Q(state="done"), name="turn_open_by_lease"
            ),
        ]

    def __str__(self) -> str:
        return f"turn {self.id} ({self.state})"
