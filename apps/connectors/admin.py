from django import forms
from django.contrib import admin

from apps.audit.admin_mixins import AuditedAdminMixin
from apps.core.fields import WriteOnlySecretField, secret_summary

from .models import Connector, Tool, ToolCall


class ConnectorForm(forms.ModelForm):
    """The secret is write-only: never sent back to the page, empty keeps the stored one."""

    secret = WriteOnlySecretField(label="Secret", max_length=2000)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.initial.pop("secret", None)
        stored = [self.instance.secret] if self.instance.pk and self.instance.secret else []
        self.fields["secret"].help_text = (
            f"{secret_summary(stored)} Bearer token, API key, Basic password or OAuth2 client secret. "
            "Leave empty to keep the current secret; type a new one to replace it."
        )

    def clean_secret(self) -> str:
        typed = self.cleaned_data["secret"]
        return typed or (self.instance.secret if self.instance.pk else "")


class ToolInline(admin.TabularInline):
    model = Tool
    extra = 0
    fields = [
        "name",
        "method",
        "path_template",
        "requires_confirmation",
        "confirmation_waived_reason",
        "enabled",
    ]
    show_change_link = True

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "confirmation_waived_reason":  # one row in the table, not a big box
            kwargs["widget"] = forms.Textarea(attrs={"rows": 1, "cols": 30})
        return super().formfield_for_dbfield(db_field, request, **kwargs)


@admin.register(Connector)
class ConnectorAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ["slug", "name", "base_url", "auth_type", "enabled"]
    inlines = [ToolInline]
    form = ConnectorForm


@admin.register(Tool)
class ToolAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ["name", "connector", "method", "path_template", "asks_customer", "enabled"]
    list_filter = ["connector", "requires_confirmation", "enabled"]
    search_fields = ["name", "description"]
    fieldsets = [
        (None, {"fields": ["connector", "name", "description", "enabled"]}),
        (
            "Request (placeholders: {argument}, {customer.external_id}, {customer.email})",
            {"fields": ["method", "path_template", "query_map", "body_map", "parameters", "response_fields"]},
        ),
        (
            "Asking the customer",
            {
                "description": "Every method other than GET/HEAD asks the customer first, showing every "
                "argument it sends, unless a reason to waive that is given below.",
                "fields": [
                    "requires_confirmation",
                    "confirmation_waived_reason",
                    "confirmation_template",
                    "progress_text",
                ],
            },
        ),
    ]

    @admin.display(boolean=True, description="Asks the customer")
    def asks_customer(self, obj: Tool) -> bool:
        return obj.asks_first


@admin.register(ToolCall)
class ToolCallAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ["name", "status", "attempts", "http_status", "conversation", "requested_by", "created_at"]
    list_filter = ["status", "name"]
    readonly_fields = [f.name for f in ToolCall._meta.fields]
