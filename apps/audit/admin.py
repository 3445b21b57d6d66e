"""The audit log in /admin/: read-only for everyone, superusers included (the console's audit
page is where admins search and export it). Staff accounts and role groups are Django's own
admin classes: wrapped here with the audit mixin, so role changes are logged."""

from __future__ import annotations

from django.apps import apps as django_apps
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from .admin_mixins import AuditedAdminMixin
from .models import AuditEntry


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ["at", "actor_label", "action", "target_type", "target_id", "ip"]
    list_filter = ["action", "target_type"]
    search_fields = ["actor_label", "action", "target_id"]
    date_hierarchy = "at"
    readonly_fields = [f.name for f in AuditEntry._meta.fields]

    def has_add_permission(self, request, obj=None) -> bool:  # noqa: ANN001
        return False

    def has_change_permission(self, request, obj=None) -> bool:  # noqa: ANN001
        return False

    def has_delete_permission(self, request, obj=None) -> bool:  # noqa: ANN001
        return False

    def has_view_permission(self, request, obj=None) -> bool:  # noqa: ANN001
        return bool(request.user.is_active and request.user.is_superuser)


# django-axes' sign-in lockouts too: deleting one unlocks an account (a security change).
_AXES = ("AccessAttempt", "AccessLog", "AccessFailureLog") if django_apps.is_installed("axes") else ()
for _model in (get_user_model(), Group, *(django_apps.get_model("axes", name) for name in _AXES)):
    if admin.site.is_registered(_model):
        _current = type(admin.site._registry[_model])
        if not issubclass(_current, AuditedAdminMixin):
            admin.site.unregister(_model)
            admin.site.register(
                _model, type(f"Audited{_current.__name__}", (AuditedAdminMixin, _current), {})
            )
