"""Admin: incoming sources and events (status, re-process), outgoing endpoints and the
delivery log (attempts, re-send)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from .delivery import outgoing_deliveries_resend
from .models import EventDelivery, EventDeliveryAttempt, WebhookEndpoint, WebhookEvent, WebhookSource
from .outgoing import outgoing_cache_clear
from .services import webhook_events_reprocess


@admin.register(WebhookSource)
class WebhookSourceAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "verifier", "enabled", "created_at"]
    list_filter = ["verifier", "enabled"]
    search_fields = ["slug", "name"]


@admin.register(WebhookEvent)
class WebhookEventAdmin(admin.ModelAdmin):
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

    @admin.action(description="Process again (events not processed yet)")
    def reprocess(self, request: HttpRequest, queryset: QuerySet[WebhookEvent]) -> None:
        count = webhook_events_reprocess(event_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"{count} event(s) queued for processing.", messages.SUCCESS)


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = ["__str__", "url", "enabled", "disabled_reason", "failing_since", "created_at"]
    list_filter = ["enabled"]
    readonly_fields = ["failing_since", "created_at"]
    actions = ["enable"]

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        outgoing_cache_clear()

    @admin.action(description="Enable again")
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
class EventDeliveryAdmin(admin.ModelAdmin):
    list_display = ["created_at", "event_type", "endpoint", "status", "attempts", "next_attempt_at"]
    list_filter = ["status", "endpoint", "payload__event_type"]
    list_select_related = ["payload", "endpoint"]
    readonly_fields = ["payload", "endpoint", "status", "attempts", "next_attempt_at", "created_at"]
    inlines = [AttemptInline]
    actions = ["resend"]

    @admin.display(description="Event")
    def event_type(self, obj: EventDelivery) -> str:
        return obj.payload.event_type

    @admin.action(description="Send again now")
    def resend(self, request: HttpRequest, queryset: QuerySet[EventDelivery]) -> None:
        count = outgoing_deliveries_resend(delivery_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"{count} deliver(y/ies) queued.", messages.SUCCESS)
