"""Admin: canned replies and agents (staff users with their console settings)."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from .models import Agent, AgentProfile, CannedReply, Note


@admin.register(CannedReply)
class CannedReplyAdmin(admin.ModelAdmin):
    list_display = ["shortcut", "title", "updated_at"]
    search_fields = ["shortcut", "title", "text"]


class AgentProfileInline(admin.StackedInline):
    model = AgentProfile
    can_delete = False
    fields = ["auto_assign", "max_open", "last_assigned_at"]
    readonly_fields = ["last_assigned_at"]


@admin.register(Agent)
class AgentAdmin(UserAdmin):
    inlines = [AgentProfileInline]
    list_display = ["username", "email", "first_name", "last_name", "is_active", "auto_assign"]

    def get_queryset(self, request):
        return super().get_queryset(request).filter(is_staff=True).select_related("agent_profile")

    @admin.display(boolean=True, description="auto-assign")
    def auto_assign(self, user) -> bool:
        profile = getattr(user, "agent_profile", None)
        return profile.auto_assign if profile else True


@admin.register(Note)
class NoteAdmin(admin.ModelAdmin):
    list_display = ["conversation", "author", "created_at"]
    raw_id_fields = ["conversation"]
    readonly_fields = ["author", "client_msg_id"]
