"""Admin: canned replies and agents (staff users with their console settings)."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from apps.audit.admin_mixins import AuditedAdminMixin
from apps.conversations.models import Conversation, Message
from apps.customers.models import Customer

from .models import Agent, AgentProfile, CannedReply, Note


@admin.register(CannedReply)
class CannedReplyAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ["shortcut", "title", "updated_at"]
    search_fields = ["shortcut", "title", "text"]


class AgentProfileInline(admin.StackedInline):
    model = AgentProfile
    can_delete = False
    fields = ["auto_assign", "max_open", "last_assigned_at"]
    readonly_fields = ["last_assigned_at"]


@admin.register(Agent)
class AgentAdmin(AuditedAdminMixin, UserAdmin):
    inlines = [AgentProfileInline]
    list_display = ["username", "email", "first_name", "last_name", "is_active", "auto_assign"]

    def get_queryset(self, request):
        return super().get_queryset(request).filter(is_staff=True).select_related("agent_profile")

    @admin.display(boolean=True, description="auto-assign")
    def auto_assign(self, user) -> bool:
        profile = getattr(user, "agent_profile", None)
        return profile.auto_assign if profile else True


@admin.register(Note)
class NoteAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ["conversation", "author", "created_at"]
    raw_id_fields = ["conversation"]
    readonly_fields = ["author", "client_msg_id"]


# Customers and conversations, for what the console does not do (look-ups by id, exports).
# Registered here only if their own apps have not (apps.customers loads first).
class ConversationInline(admin.TabularInline):
    model = Conversation
    fields = ["id", "state", "assignee", "csat_score", "created_at", "closed_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True


class CustomerAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ["__str__", "email", "external_id", "created_at"]
    search_fields = ["name", "email", "external_id"]
    readonly_fields = ["id", "created_at", "updated_at"]
    inlines = [ConversationInline]


class MessageInline(admin.TabularInline):
    model = Message
    fields = ["seq", "role", "author", "text", "created_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ["created_at"]


class NoteInline(admin.TabularInline):
    model = Note
    fields = ["author", "text", "created_at"]
    readonly_fields = ["author", "created_at"]
    extra = 0


class ConversationAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ["id", "customer", "state", "assignee", "csat_score", "created_at"]
    list_filter = ["state", "assignee"]
    search_fields = ["customer__name", "customer__email", "customer__external_id"]
    raw_id_fields = ["customer"]
    readonly_fields = [
        "id",
        "last_seq",
        "created_at",
        "updated_at",
        "closed_at",
        "csat_score",
        "csat_comment",
    ]
    inlines = [MessageInline, NoteInline]


for model, model_admin in ((Customer, CustomerAdmin), (Conversation, ConversationAdmin)):
    if not admin.site.is_registered(model):
        admin.site.register(model, model_admin)
