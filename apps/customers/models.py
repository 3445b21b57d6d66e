"""Customers: the people who chat through the widget, anonymous or identified by the host
site's own user id (`external_id`, proved by `user_hash` or a signed `user_jwt`)."""

from __future__ import annotations

import uuid

from django.contrib.postgres.fields import ArrayField
from django.db import models


class Customer(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # The host site's user id; null for anonymous customers.
    external_id = models.CharField(max_length=255, null=True, blank=True, unique=True)
    name = models.CharField(max_length=200, blank=True)
    email = models.EmailField(max_length=254, blank=True)
    # True only when the e-mail came inside a signed JWT (or from the CRM itself): only then may
    # CRM events and tools match the customer by it. A typed e-mail is never proof.
    email_verified = models.BooleanField(default=False)
    # The times of the customer's latest chat messages, newest first: the RATELIMIT_MESSAGE_CUSTOMER
    # moving window, counted by the chat's one statement under this row's lock
    # (apps/realtime/migrations/0002).
    message_hits = ArrayField(models.DateTimeField(), default=list, blank=True, editable=False)
    # The times the assistant began answering the customer, newest first: the
    # RATELIMIT_ANSWER_CUSTOMER_HOUR moving window (`customer_answer_admit`).
    answer_hits = ArrayField(models.DateTimeField(), default=list, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name or self.email or self.external_id or f"anonymous {self.id}"

    @property
    def is_anonymous(self) -> bool:
        return self.external_id is None
