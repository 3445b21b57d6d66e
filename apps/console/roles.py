"""Staff roles: the Django groups `agent`, `supervisor` and `admin`, and who holds which.

A role is a group with model permissions (what /admin/ lets it see and change) plus what the
console checks by role (only the assignee or a supervisor/admin moves a conversation someone
else holds). Managing staff accounts (the `Agent` admin edits groups and the superuser flag)
is left to superusers: an `admin` who could edit accounts could make itself a superuser.
"""

from __future__ import annotations

from typing import Any, Literal

from django.db.models import Q

Role = Literal["agent", "supervisor", "admin"]
ROLES: tuple[Role, ...] = ("agent", "supervisor", "admin")
LEADS: frozenset[str] = frozenset({"supervisor", "admin"})

ALL = None  # every model of the app, or every permission of the model
VIEW = ("view",)
EDIT = ("add", "change", "delete", "view")

# (app label, model names or ALL, actions or ALL)
_AGENT = [
    ("customers", ALL, VIEW),
    ("conversations", ALL, VIEW),
    ("knowledge", ALL, VIEW),
    ("console", ("note", "cannedreply"), VIEW),
    ("connectors", ("toolcall",), VIEW),
]
_SUPERVISOR = [
    *_AGENT,
    ("conversations", ("conversation",), ("change",)),  # assign, release
    ("console", ("cannedreply",), EDIT),
    ("console", ("agent", "agentprofile"), VIEW),
    ("assistant", ALL, VIEW),
    ("connectors", ALL, VIEW),
    ("webhooks", ALL, VIEW),
    ("teams", ALL, VIEW),
    ("sla", ALL, VIEW),
]
_ADMIN = [
    *((label, ALL, ALL) for label in ("customers", "conversations", "knowledge", "assistant")),
    ("connectors", ALL, ALL),
    ("webhooks", ALL, ALL),
    ("teams", ALL, ALL),
    ("sla", ALL, ALL),
    ("console", ("note", "cannedreply", "agentprofile", "conversationread"), ALL),
    ("console", ("agent",), VIEW),
]
ROLE_RULES: dict[Role, list[tuple[str, tuple[str, ...] | None, tuple[str, ...] | None]]] = {
    "agent": _AGENT,
    "supervisor": _SUPERVISOR,
    "admin": _ADMIN,
}


def _rules_q(rules: list[tuple[str, tuple[str, ...] | None, tuple[str, ...] | None]]) -> Q:
    q = Q(pk__in=[])
    for label, models, actions in rules:
        rule = Q(content_type__app_label=label)
        if models is not ALL:
            rule &= Q(content_type__model__in=models)
        if actions is not ALL:
            rule &= Q(codename__regex=rf"^({'|'.join(actions)})_")
        q |= rule
    return q


def roles_sync(*, group_model: Any = None, permission_model: Any = None) -> None:
    """Create the three groups and set their permissions (idempotent). The data migration passes
    its historical models; `demo_setup` runs it again so models added later are covered."""
    if group_model is None or permission_model is None:
        from django.contrib.auth.models import Group, Permission

        group_model, permission_model = Group, Permission
    for role, rules in ROLE_RULES.items():
        group, _ = group_model.objects.get_or_create(name=role)
        group.permissions.set(permission_model.objects.filter(_rules_q(rules)))


def staff_role(user: Any) -> Role | None:
    """The user's role: superusers are admins, staff without a role group are agents, and
    inactive or non-staff users have none."""
    if user is None or not user.is_authenticated or not user.is_active:
        return None
    if user.is_superuser:
        return "admin"
    if not user.is_staff:
        return None
    names = set(user.groups.filter(name__in=LEADS).values_list("name", flat=True))
    if "admin" in names:
        return "admin"
    return "supervisor" if "supervisor" in names else "agent"


def role_join(*, user: Any, role: Role) -> None:
    """Put a staff user in exactly one role group (demo set-up, tests, scripts)."""
    from django.contrib.auth.models import Group

    group = Group.objects.filter(name=role).first()
    if group is None:  # a flushed test database, or a deleted group
        roles_sync()
        group = Group.objects.get(name=role)
    user.groups.remove(*Group.objects.filter(name__in=ROLES).exclude(name=role))
    user.groups.add(group)
