"""What erasure and retention leave behind: which conversations were anonymised (so the
retention job does each once). Customers erased on request are gone: their row is deleted."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class AnonymisedConversation(models.Model):
    conversation = models.OneToOneField(
        "conversations.Conversation", on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    at = models.DateTimeField(default=timezone.now)
    reason = models.CharField(max_length=20)  # "erasure" or "retention"

    def __str__(self) -> str:
        return f"{self.conversation_id} anonymised ({self.reason})"
