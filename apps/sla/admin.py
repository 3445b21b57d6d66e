"""Admin: policies, business hours and holidays (per team, or the defaults), and the clocks
(read-only: services start, stop and breach them)."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from apps.audit.admin_mixins import AuditedAdminMixin

from .models import BusinessHours, Holiday, SlaClock, SlaPolicy


@admin.register(SlaPolicy)
class SlaPolicyAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ("__str__", "team", "priority", "first_response_s", "resolution_s")
    list_filter = ("team", "priority")


@admin.register(BusinessHours)
class BusinessHoursAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ("team", "weekday", "opens", "closes")
    list_filter = ("team", "weekday")


@admin.register(Holiday)
class HolidayAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ("date", "name", "team")
    list_filter = ("team",)
    date_hierarchy = "date"


@admin.register(SlaClock)
class SlaClockAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ("conversation", "kind", "started_at", "due_at", "stopped_at", "breached_at")
    list_filter = ("kind", ("breached_at", admin.EmptyFieldListFilter))
    raw_id_fields = ("conversation",)
    readonly_fields = ("conversation", "kind", "started_at", "due_at", "stopped_at", "breached_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
