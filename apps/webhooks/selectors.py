"""Reading webhook configuration."""

from __future__ import annotations

from .models import WebhookSource


def webhook_source_get(*, slug: str) -> WebhookSource | None:
    """The enabled source posting to `/webhooks/<slug>/`, if any."""
    return WebhookSource.objects.filter(slug=slug, enabled=True).first()
