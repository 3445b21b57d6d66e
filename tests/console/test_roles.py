"""Staff roles: the groups the migration makes, and who counts as which role."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from apps.console.roles import role_join, staff_role
from tests.support.people import make_user


def perms(role: str) -> set[str]:
    return {
        f"{app_label}.{codename}"
        for app_label, codename in Group.objects.get(name=role).permissions.values_list(
            "content_type__app_label", "codename"
        )
    }


@pytest.mark.django_db
def test_the_migration_makes_the_three_roles_with_their_permissions():
    assert sorted(Group.objects.values_list("name", flat=True)) == ["admin", "agent", "supervisor"]
    agent, supervisor, admin = perms("agent"), perms("supervisor"), perms("admin")

    assert {"conversations.view_conversation", "knowledge.view_document", "customers.view_customer"} <= agent
    assert not {
        p for p in agent if p.split(".")[0] in ("connectors", "webhooks") and p != "connectors.view_toolcall"
    }
    assert {p for p in agent if not p.split(".")[1].startswith("view_")} == set()
    assert agent < supervisor
    assert supervisor - agent >= {"conversations.change_conversation", "webhooks.view_eventdelivery"}
    assert "webhooks.change_eventdelivery" not in supervisor
    assert {
        "connectors.change_connector",
        "connectors.add_tool",
        "webhooks.change_webhookendpoint",
        "webhooks.change_eventdelivery",
        "knowledge.add_document",
        "knowledge.change_document",
    } <= admin
    assert {p for p in admin if p.startswith("auth.") or p.endswith("_agent")} == {"console.view_agent"}


@pytest.mark.django_db
def test_staff_role_superusers_are_admins_and_staff_without_a_group_are_agents():
    plain = make_user("alice@example.com", "Alice", "Agent")
    lead = make_user("carol@example.com", "Carol", "Lead")
    role_join(user=lead, role="supervisor")
    boss = get_user_model().objects.create_superuser("root@example.com", "root@example.com", "pw")
    shopper = make_user("sam@example.com", "Sam", "Shopper", staff=False)

    assert [staff_role(u) for u in (plain, lead, boss, shopper)] == ["agent", "supervisor", "admin", None]
    role_join(user=lead, role="admin")  # one role at a time
    assert (staff_role(lead), list(lead.groups.values_list("name", flat=True))) == ("admin", ["admin"])
    plain.is_active = False
    assert staff_role(plain) is None
