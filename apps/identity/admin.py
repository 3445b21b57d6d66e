from django.contrib import admin

from apps.audit.admin_mixins import AuditedAdminMixin

from .models import OidcIdentity


@admin.register(OidcIdentity)
class OidcIdentityAdmin(AuditedAdminMixin, admin.ModelAdmin):
    """Links are made by signing in; deleting one lets that account be linked afresh."""

    list_display = ("user", "issuer", "subject", "last_sign_in_at")
    search_fields = ("user__username", "user__email", "subject")
    readonly_fields = ("user", "issuer", "subject", "created_at", "last_sign_in_at")

    def has_add_permission(self, request, obj=None) -> bool:
        return False
