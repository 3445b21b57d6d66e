"""Agent-only state, kept apart from the customer's event stream by design (DESIGN.md "Two
audiences"): notes, canned replies, per-agent settings and what agents have read. Nothing here
takes a customer `seq`, reaches a customer socket or replay, or enters the assistant's prompt
(the assistant reads only apps.conversations Message rows)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.auth.models import User
from django.db import models


class Note(models.Model):
    """An internal note on a conversation, for agents only."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    conversation = models.ForeignKey(
        "conversations.Conversation", on_delete=models.CASCADE, related_name="console_notes"
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    text = models.TextField()
    # Made by the client; a retried frame with the same id is the same note.
    client_msg_id = models.UUIDField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["conversation", "created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["conversation", "client_msg_id"],
                condition=models.Q(client_msg_id__isnull=False),
                name="note_client_msg_id_uniq",
            )
        ]

    def __str__(self) -> str:
        return f"note: {self.text[:40]}"


class CannedReply(models.Model):
    """A saved answer agents insert by typing `/shortcut` in the reply box."""

    shortcut = models.SlugField(max_length=40, unique=True, help_text="Typed after '/' in the reply box.")
    title = models.CharField(max_length=120)
    text = models.TextField(max_length=4000)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["shortcut"]
        verbose_name_plural = "canned replies"

    def __str__(self) -> str:
        return f"/{self.shortcut}"


class AgentProfile(models.Model):
    """Console settings of one staff user (created on first use)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="agent_profile"
    )
    # Automatic assignment gives this agent at most this many open conversations; empty means
    # CONSOLE_AUTO_ASSIGN_LIMIT.
    max_open = models.PositiveSmallIntegerField(null=True, blank=True)
    auto_assign = models.BooleanField(default=True, help_text="Receive waiting conversations automatically.")
    last_assigned_at = models.DateTimeField(null=True, blank=True)
    # The console's language for this agent (a settings.LANGUAGES code; "" = the browser's).
    language = models.CharField(max_length=16, blank=True, default="")

    def __str__(self) -> str:
        return f"agent {self.user}"


class ConversationRead(models.Model):
    """How far agents have read a conversation: customer messages after `seq` are unread."""

    conversation = models.OneToOneField(
        "conversations.Conversation", on_delete=models.CASCADE, primary_key=True, related_name="console_read"
    )
    seq = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.conversation_id} read to #{self.seq}"


class Agent(User):
    """Staff users as the console (and its admin) sees them."""

    class Meta:
        proxy = True
        verbose_name = "agent"


class GapArticle(models.Model):
    """A help-center article an agent published from a group of knowledge-gap questions
    (apps/console/gaps.py); the questions it answers leave the gaps view."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # The article as ingested; kept as a record even if the document is later removed.
    document = models.ForeignKey("knowledge.Document", on_delete=models.SET_NULL, null=True, related_name="+")
    title = models.CharField(max_length=200)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.title


class GapResolved(models.Model):
    """A customer question answered by a published article: once resolved, always resolved."""

    question = models.OneToOneField(
        "conversations.Message", on_delete=models.CASCADE, primary_key=True, related_name="gap_resolved"
    )
    article = models.ForeignKey(GapArticle, on_delete=models.CASCADE, related_name="questions")

    class Meta:
        verbose_name_plural = "resolved gap questions"

    def __str__(self) -> str:
        return f"{self.question_id} → {self.article_id}"
