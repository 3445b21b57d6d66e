"""Admin: incoming sources and events (status, re-process), outgoing endpoints and the
delivery log (attempts, re-send)."""

from __future__ import annotations

import binascii

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook

from apps.audit.admin_mixins import AuditedAdminMixin
from apps.core.fields import WriteOnlySecretField, secret_summary

from .delivery import outgoing_deliveries_resend
from .models import EventDelivery, EventDeliveryAttempt, WebhookEndpoint, WebhookEvent, WebhookSource
from .outgoing import outgoing_cache_clear
from .services import webhook_events_reprocess


class WebhookSourceForm(forms.ModelForm):
    """Secrets are write-only: add one (it becomes the newest) or keep only the newest; the
    page shows how many are set and their fingerprints, never a value."""

    add_secret = WriteOnlySecretField(label="Add a secret", max_length=500)
    keep_only_newest = forms.BooleanField(
        required=False,
        label="Remove all but the newest secret",
        help_text="With a secret added above, it replaces every other one; otherwise only the newest "
        "is kept. Switch the sender to the new secret first.",
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["add_secret"].help_text = (
            f"{secret_summary(self.instance.secrets)} Every secret set verifies incoming webhooks: "
            "add the new one, switch the sender, then remove the old one."
        )

    def clean(self) -> dict:
        cleaned = super().clean()
        added = cleaned.get("add_secret")
        secrets = list(self.instance.secrets)  # `secrets` has no form field: only these two change it
        if added:
            secrets = [added, *(s for s in secrets if s != added)]
        self.secrets = secrets[:1] if cleaned.get("keep_only_newest") else secrets
        return cleaned

    def save(self, commit: bool = True) -> WebhookSource:
        self.instance.secrets = self.secrets
        return super().save(commit)


class WebhookEndpointForm(forms.ModelForm):
    """The signing secret is write-only: required when adding, empty keeps it when editing."""

    secret = WriteOnlySecretField(label="Secret", max_length=500)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.initial.pop("secret", None)
        field = self.fields["secret"]
        if self.instance.pk:
            field.help_text = (
                f"{secret_summary([self.instance.secret])} A Standard Webhooks secret (whsec_ + base64). "
                "Leave empty to keep the current secret."
            )
        else:
            field.required = True
            field.help_text = "A Standard Webhooks secret: whsec_ + base64 of 24 to 64 random bytes."

    def clean_secret(self) -> str:
        typed = self.cleaned_data["secret"]
        if not typed:
            return self.instance.secret
        try:
            Webhook(typed)
        except (binascii.Error, ValueError, EmptyWebhookSecretError):
            message = "Not a Standard Webhooks secret: use whsec_ followed by base64."
            raise forms.ValidationError(message) from None
        return typed


@admin.register(WebhookSource)
class WebhookSourceAdmin(AuditedAdminMixin, admin.ModelAdmin):
    form = WebhookSourceForm
    list_display = ["slug", "name", "verifier", "enabled", "created_at"]
    list_filter = ["verifier", "enabled"]
    search_fields = ["slug", "name"]


@admin.register(WebhookEvent)
class WebhookEventAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ["received_at", "source", "type", "status", "customer", "seq", "attempts"]
    list_filter = ["status", "source", "type"]
    search_fields = ["webhook_id", "type"]
    readonly_fields = [
        "source",
        "webhook_id",
        "type",
        "data",
        "customer",
        "conversation",
        "seq",
        "attempts",
        "error",
        "received_at",
        "processed_at",
    ]
    actions = ["reprocess"]

    @admin.action(description="Process again (events not processed yet)", permissions=["change"])
    def reprocess(self, request: HttpRequest, queryset: QuerySet[WebhookEvent]) -> None:
        count = webhook_events_reprocess(event_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"{count} event(s) queued for processing.", messages.SUCCESS)


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(AuditedAdminMixin, admin.ModelAdmin):
    form = WebhookEndpointForm
    list_display = ["__str__", "url", "enabled", "disabled_reason", "failing_since", "created_at"]
    list_filter = ["enabled"]
    readonly_fields = ["failing_since", "created_at"]
    actions = ["enable"]

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        outgoing_cache_clear()

    @admin.action(description="Enable again", permissions=["change"])
    def enable(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        queryset.update(enabled=True, disabled_reason="", failing_since=None)
        outgoing_cache_clear()


class AttemptInline(admin.TabularInline):
    model = EventDeliveryAttempt
    extra = 0
    can_delete = False
    readonly_fields = ["created_at", "response_status", "duration_ms", "error", "response_body", "task_id"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(EventDelivery)
class EventDeliveryAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ["created_at", "event_type", "endpoint", "status", "attempts", "next_attempt_at"]
    list_filter = ["status", "endpoint", "payload__event_type"]
    list_select_related = ["payload", "endpoint"]
    readonly_fields = ["payload", "endpoint", "status", "attempts", "next_attempt_at", "created_at"]
    inlines = [AttemptInline]
    actions = ["resend"]

    @admin.display(description="Event")
    def event_type(self, obj: EventDelivery) -> str:
        return obj.payload.event_type

    @admin.action(description="Send again now", permissions=["change"])
    def resend(self, request: HttpRequest, queryset: QuerySet[EventDelivery]) -> None:
        count = outgoing_deliveries_resend(delivery_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"{count} deliver(y/ies) queued.", messages.SUCCESS)
