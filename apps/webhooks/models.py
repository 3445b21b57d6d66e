"""Webhooks in (CRM/ERP events, PROTOCOL.md §4) and out (Kefu's events to subscribers).

Incoming: a `WebhookSource` per connector slug holds the verifier and its active secrets; each
accepted request is one `WebhookEvent` row, unique on (source, webhook_id), stored before the
202 and moved forward by a Celery task. Outgoing deliveries are rows too (Saleor's shape): one
`EventPayload` built once, an `EventDelivery` per subscriber, an `EventDeliveryAttempt` per try.
"""

from __future__ import annotations

import uuid

from django.contrib.postgres.fields import ArrayField
from django.db import models

from apps.core.fields import EncryptedJSONField, EncryptedTextField


class Verifier(models.TextChoices):
    STANDARD = "standard", "Standard Webhooks"
    SHOPIFY = "shopify", "Shopify (X-Shopify-Hmac-Sha256)"
    STRIPE = "stripe", "Stripe (Stripe-Signature)"
    HUBSPOT_V3 = "hubspot_v3", "HubSpot v3 (X-HubSpot-Signature-v3)"
    ZENDESK = "zendesk", "Zendesk (X-Zendesk-Webhook-Signature)"


class WebhookSource(models.Model):
    """A system that posts to `/webhooks/<slug>/`."""

    slug = models.SlugField(max_length=100, unique=True)
    name = models.CharField(max_length=200, blank=True)
    verifier = models.CharField(max_length=20, choices=Verifier.choices, default=Verifier.STANDARD)
    # Every secret listed verifies: add the new one, switch the sender, then drop the old one.
    # A list of strings, newest first, encrypted as a whole (apps/core/crypto.py).
    secrets = EncryptedJSONField(default=list, blank=True)
    # {"order.shipped": {"title": "...", "body": "..."}, "order.*": {...}}; overrides the defaults
    # in apps/webhooks/rendering.py. Placeholders: {order_id}, {customer.email}, {type}, ...
    templates = models.JSONField(default=dict, blank=True)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class WebhookEventStatus(models.TextChoices):
    RECEIVED = "received", "Received, to be processed"
    PROCESSED = "processed", "Processed"
    UNMATCHED = "unmatched", "No such customer"
    FAILED = "failed", "Failed"


class WebhookEvent(models.Model):
    source = models.ForeignKey(WebhookSource, on_delete=models.PROTECT, related_name="events")
    webhook_id = models.CharField(max_length=255)
    type = models.CharField(max_length=200)
    data = models.JSONField(default=dict)
    status = models.CharField(
        max_length=10, choices=WebhookEventStatus.choices, default=WebhookEventStatus.RECEIVED
    )
    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    conversation = models.ForeignKey(
        "conversations.Conversation", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    seq = models.PositiveBigIntegerField(null=True, blank=True)  # of the `update` event
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(fields=["source", "webhook_id"], name="webhook_event_source_id_uniq")
        ]
        indexes = [models.Index(fields=["status", "received_at"], name="webhook_event_status")]

    def __str__(self) -> str:
        return f"{self.source_id}:{self.webhook_id} {self.type} ({self.status})"


class WebhookEndpoint(models.Model):
    """A subscriber to Kefu's own events."""

    name = models.CharField(max_length=200, blank=True)
    url = models.URLField(max_length=2000)
    secret = EncryptedTextField(help_text="A Standard Webhooks secret: whsec_ + base64.")
    # Empty: every event type.
    event_types = ArrayField(models.CharField(max_length=100), default=list, blank=True)
    enabled = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=300, blank=True)
    # Set by the first failed attempt after a success; an endpoint failing for days is disabled.
    failing_since = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name or self.url

    def wants(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types

    def clean(self) -> None:
        # The outbound policy, early: the admin shows a refused address on the field.
        from apps.core.outbound import outbound_clean

        outbound_clean(url=self.url)


class EventPayload(models.Model):
    """The body every subscriber of one event receives: built once."""

    event_type = models.CharField(max_length=100)
    payload = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.event_type} #{self.pk}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCESS = "success", "Delivered"
    FAILED = "failed", "Failed"


class EventDelivery(models.Model):
    # Sent as `webhook-id`: the same on every retry, so receivers can de-duplicate.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    payload = models.ForeignKey(EventPayload, on_delete=models.CASCADE, related_name="deliveries")
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="event_delivery_due")]

    def __str__(self) -> str:
        return f"{self.payload.event_type} -> {self.endpoint} ({self.status})"


class EventDeliveryAttempt(models.Model):
    delivery = models.ForeignKey(EventDelivery, on_delete=models.CASCADE, related_name="attempts_log")
    created_at = models.DateTimeField(auto_now_add=True)
    duration_ms = models.PositiveIntegerField(default=0)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True)
    error = models.TextField(blank=True)
    task_id = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"attempt {self.pk}: {self.response_status or self.error[:40]}"
