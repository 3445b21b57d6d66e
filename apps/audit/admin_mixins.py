"""One audit row per change made in /admin/: every audited ModelAdmin mixes this in.

It hooks the admin's own logging points (log_addition, log_change, log_deletions, which Django
calls once per object inside the change's transaction) and its actions. `before` is read from
the database in save_model, before the form's values are written; `after` after the
inlines and many-to-many fields (a user's groups: their role) are saved. Only changed fields
are kept; a save that changes nothing writes no row. Secrets never enter the log: an encrypted
field shows as SHA-256 fingerprints, a password as "(set)".
"""

from __future__ import annotations

import functools
import json
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction

from apps.core.crypto import secret_fingerprint
from apps.core.fields import EncryptedJSONField, EncryptedTextField

from .services import audit_record

MAX_TEXT = 2000
ROLE_FIELDS = frozenset({"groups", "is_staff", "is_superuser", "user_permissions", "is_active"})
_SKIP = (models.BinaryField, models.GeneratedField)
# Stamps every save moves (auto_now): not a change of their own.
AUTO_STAMPS = frozenset({"updated_at", "last_login"})


def _secret(value: Any) -> Any:
    values = value if isinstance(value, list) else [value] if value else []
    return [f"…{secret_fingerprint(str(v))}" for v in values]


def _plain(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_TEXT:
        return value[:MAX_TEXT] + "…"
    return value


def secret_fields(model: type[models.Model]) -> set[str]:
    return {
        f.name
        for f in model._meta.concrete_fields
        if isinstance(f, EncryptedTextField | EncryptedJSONField) or f.name == "password"
    }


def snapshot(obj: models.Model) -> dict[str, Any]:
    """The object's stored fields as JSON (foreign keys by id, many-to-many as sorted ids)."""
    secrets = secret_fields(type(obj))
    data: dict[str, Any] = {}
    for field in obj._meta.concrete_fields:
        if isinstance(field, _SKIP) or field.get_internal_type() in ("VectorField",):
            continue
        value = field.value_from_object(obj)
        if field.name == "password":
            data["password"] = "(set)" if value else ""
        elif field.name in secrets:
            data[field.name] = _secret(value)
        else:
            data[field.attname if field.is_relation else field.name] = _plain(value)
    if obj.pk is not None:
        for field in obj._meta.many_to_many:
            data[field.name] = sorted(getattr(obj, field.name).values_list("pk", flat=True))
    return json.loads(json.dumps(data, cls=DjangoJSONEncoder))


def _fresh(obj: models.Model) -> models.Model:
    return type(obj)._base_manager.filter(pk=obj.pk).first() or obj


def _customer_of(obj: models.Model) -> Any:
    if obj._meta.label_lower == "customers.customer":
        return obj.pk
    return getattr(obj, "customer_id", None)


def _diff(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    keys = [k for k in after if before.get(k) != after.get(k) and k not in AUTO_STAMPS]
    return {k: before.get(k) for k in keys}, {k: after[k] for k in keys}


class AuditedAdminMixin:
    """Mix in before admin.ModelAdmin: `class ToolAdmin(AuditedAdminMixin, admin.ModelAdmin)`."""

    @staticmethod
    def _store(request: Any) -> dict[str, Any]:
        if not hasattr(request, "_audit"):
            request._audit = {"before": {}, "inlines": []}
        return request._audit

    def save_model(self, request, obj, form, change) -> None:  # noqa: ANN001
        if change and obj.pk is not None:
            stored = type(obj)._base_manager.filter(pk=obj.pk).first()
            if stored is not None:
                self._store(request)["before"][(obj._meta.label_lower, str(obj.pk))] = snapshot(stored)
        super().save_model(request, obj, form, change)

    def save_formset(self, request, form, formset, change) -> None:  # noqa: ANN001
        touched = [f for f in formset.initial_forms if f.has_changed() or formset._should_delete_form(f)]
        befores = {str(f.instance.pk): snapshot(_fresh(f.instance)) for f in touched if f.instance.pk}
        super().save_formset(request, form, formset, change)
        inlines = self._store(request)["inlines"]
        for obj in formset.new_objects:
            inlines.append(
                {"type": obj._meta.label_lower, "id": str(obj.pk), "before": None, "after": snapshot(obj)}
            )
        for obj, _ in formset.changed_objects:
            before, after = _diff(befores.get(str(obj.pk), {}), snapshot(_fresh(obj)))
            inlines.append(
                {"type": obj._meta.label_lower, "id": str(obj.pk), "before": before, "after": after}
            )
        for obj in formset.deleted_objects:
            inlines.append(
                {
                    "type": obj._meta.label_lower,
                    "id": str(obj.pk),
                    "before": befores.get(str(obj.pk)),
                    "after": None,
                }
            )

    def _audit_action(self, obj: models.Model, verb: str, before: dict | None, after: dict | None) -> str:
        changed = set(after or {}) | set(before or {})
        if verb == "change" and changed & secret_fields(type(obj)):
            verb = "secret_rotate"
        elif (
            verb == "change"
            and obj._meta.label_lower in ("auth.user", "console.agent")
            and changed & ROLE_FIELDS
        ):
            verb = "role_change"
        return f"{obj._meta.label_lower}.{verb}"

    def log_addition(self, request, obj, message):  # noqa: ANN001, ANN201
        audit = self._store(request)
        audit_record(
            actor=request.user,
            action=f"{obj._meta.label_lower}.create",
            target=obj,
            after=snapshot(_fresh(obj)),
            detail=_detail(message, audit["inlines"]),
            customer_id=_customer_of(obj),
        )
        audit["inlines"] = []
        return super().log_addition(request, obj, message)

    def log_change(self, request, obj, message):  # noqa: ANN001, ANN201
        audit = self._store(request)
        stored = audit["before"].pop((obj._meta.label_lower, str(obj.pk)), None)
        inlines, audit["inlines"] = audit["inlines"], []
        current = snapshot(_fresh(obj))
        before, after = _diff(stored, current) if stored is not None else (None, current)
        if stored is not None and not after and not inlines:
            return super().log_change(request, obj, message)  # nothing changed: no row
        audit_record(
            actor=request.user,
            action=self._audit_action(obj, "change", before, after),
            target=obj,
            before=before,
            after=after,
            detail=_detail(message, inlines),
            customer_id=_customer_of(obj),
        )
        return super().log_change(request, obj, message)

    def log_deletions(self, request, queryset):  # noqa: ANN001, ANN201
        for obj in queryset:
            audit_record(
                actor=request.user,
                action=f"{obj._meta.label_lower}.delete",
                target=obj,
                before=snapshot(obj),
                customer_id=_customer_of(obj),
            )
        return super().log_deletions(request, queryset)

    def get_actions(self, request):  # noqa: ANN001, ANN201
        """Bulk actions (re-send, enable, re-index...): one row per use, naming the objects.
        Deleting is logged per object by log_deletions."""
        actions = super().get_actions(request)
        for name, (func, action_name, description) in list(actions.items()):
            if name != "delete_selected":
                actions[name] = (_audited_action(func, action_name), action_name, description)
        return actions


def _detail(message: Any, inlines: list[dict[str, Any]]) -> dict[str, Any]:
    detail: dict[str, Any] = {"change_message": message}
    if inlines:
        detail["inlines"] = inlines
    return detail


def _audited_action(func: Any, name: str) -> Any:
    @functools.wraps(func)
    def run(modeladmin, request, queryset):  # noqa: ANN001, ANN202
        ids = [str(pk) for pk in queryset.values_list("pk", flat=True)]
        model = queryset.model._meta.label_lower
        with transaction.atomic():  # the action's changes and its row commit together
            result = func(modeladmin, request, queryset)
            audit_record(
                actor=request.user,
                action=f"{model}.action.{name}",
                target=(model, ",".join(ids)[:100]),
                detail={"ids": ids},
            )
        return result

    return run
