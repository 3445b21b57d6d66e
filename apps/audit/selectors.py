from __future__ import annotations

from datetime import datetime

from django.db.models import Q, QuerySet

from .models import AuditEntry


def audit_search(
    *,
    actor: str = "",
    action: str = "",
    target: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[AuditEntry]:
    """Newest first. `actor` matches the label (name, username), `action` a prefix
    ("conversation." for all of them), `target` a type or an id."""
    rows = AuditEntry.objects.all()
    if actor:
        rows = rows.filter(actor_label__icontains=actor)
    if action:
        rows = rows.filter(action__istartswith=action)
    if target:
        rows = rows.filter(Q(target_id__icontains=target) | Q(target_type__iexact=target))
    if since:
        rows = rows.filter(at__gte=since)
    if until:
        rows = rows.filter(at__lt=until)
    return rows.order_by("-at", "-id")
