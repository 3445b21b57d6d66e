from django.contrib import admin

from apps.audit.admin_mixins import AuditedAdminMixin

from .models import Team, TeamRule


class TeamRuleInline(admin.TabularInline):
    model = TeamRule
    extra = 0
    fields = ("order", "keywords", "pattern", "enabled")


@admin.register(Team)
class TeamAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ("name", "slug", "time_zone")
    prepopulated_fields = {"slug": ("name",)}
    filter_horizontal = ("members",)
    search_fields = ("name", "slug")
    inlines = [TeamRuleInline]


@admin.register(TeamRule)
class TeamRuleAdmin(AuditedAdminMixin, admin.ModelAdmin):
    """Routing rules for a new conversation's first message: lowest `order` first, first match wins."""

    list_display = ("order", "team", "keywords", "pattern", "enabled")
    list_display_links = ("team",)
    list_editable = ("order", "enabled")
    list_filter = ("team", "enabled")
    ordering = ("order", "pk")
