from django.contrib import admin

from .models import Connector, Tool, ToolCall


class ToolInline(admin.TabularInline):
    model = Tool
    extra = 0
    fields = ["name", "method", "path_template", "requires_confirmation", "enabled"]
    show_change_link = True


@admin.register(Connector)
class ConnectorAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "base_url", "auth_type", "enabled"]
    inlines = [ToolInline]

    def get_form(self, request, obj=None, **kwargs):
        from django import forms

        # Secrets are masked on screen (still sent to the staff browser to keep the value on save).
        kwargs["widgets"] = {"secret": forms.PasswordInput(render_value=True)}
        return super().get_form(request, obj, **kwargs)


@admin.register(Tool)
class ToolAdmin(admin.ModelAdmin):
    list_display = ["name", "connector", "method", "path_template", "requires_confirmation", "enabled"]
    list_filter = ["connector", "requires_confirmation", "enabled"]
    search_fields = ["name", "description"]


@admin.register(ToolCall)
class ToolCallAdmin(admin.ModelAdmin):
    list_display = ["name", "status", "attempts", "http_status", "conversation", "created_at"]
    list_filter = ["status", "name"]
    readonly_fields = [f.name for f in ToolCall._meta.fields]
