"""Changes made in /admin/ write exactly one audit row each (through the admin's pages, with
the test client): settings (knowledge bases), connector and tool edits, secret rotation (only
fingerprints logged), role changes, deletions and bulk actions. The audit log itself is
read-only in the admin, superusers included."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from apps.audit.models import AuditEntry
from apps.audit.services import audit_record
from apps.connectors.models import Connector, Tool
from apps.console.roles import roles_sync
from apps.core.crypto import secret_fingerprint
from apps.knowledge.models import KnowledgeBase
from apps.teams.models import Team
from tests.support.people import make_user

pytestmark = pytest.mark.django_db


def form_data(response) -> dict[str, Any]:  # noqa: ANN001
    """What the admin's change page would post unchanged: the form's and inlines' values."""
    data: dict[str, Any] = {}

    def add(form: Any) -> None:
        for bound in form:
            if bound.field.disabled:
                continue
            value = bound.value()
            widget = bound.field.widget
            if hasattr(widget, "widgets"):
                parts = value if isinstance(value, list | tuple) else widget.decompress(value)
                for i, part in enumerate(parts):
                    data[f"{bound.html_name}_{i}"] = "" if part is None else part
            elif isinstance(value, bool):
                if value:
                    data[bound.html_name] = "on"
            elif isinstance(value, list | tuple):
                data[bound.html_name] = [str(v) for v in value]
            elif value is not None:
                data[bound.html_name] = value

    add(response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        add(formset.management_form)
        for form in formset.forms:
            add(form)
    return data


@pytest.fixture
def admin_client() -> Client:
    client = Client(REMOTE_ADDR="10.1.2.3")
    client.force_login(make_user("root@example.com", "Root", "Admin") and _superuser("root@example.com"))
    return client


def _superuser(username: str) -> Any:
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.get(username=username)
    user.is_superuser = True
    user.save()
    return user


def change(client: Client, url: str, **changes: Any) -> Any:
    page = client.get(url)
    assert page.status_code == 200, url
    data = form_data(page)
    data.update(changes)
    response = client.post(url, data)
    assert response.status_code == 302, (
        response.status_code,
        getattr(response, "context", None) and response.context["adminform"].form.errors,
    )
    return response


def rows() -> list[AuditEntry]:
    return list(AuditEntry.objects.order_by("id"))


@pytest.fixture
def connector() -> Connector:
    c = Connector.objects.create(
        slug="crm", name="CRM", base_url="https://crm.example", auth_type="bearer", secret="old-token-123"
    )
    Tool.objects.create(connector=c, name="order_lookup", method="GET", path_template="/orders/{id}")
    return c


def test_saving_unchanged_writes_nothing_and_a_settings_edit_writes_one_row(admin_client) -> None:
    kb = KnowledgeBase.objects.create(
        slug="help", name="Help", embedding_provider="local", embedding_model="m", embedding_dimensions=384
    )
    url = f"/admin/knowledge/knowledgebase/{kb.pk}/change/"
    change(admin_client, url)
    assert rows() == []
    change(admin_client, url, name="Help center")
    [row] = rows()
    assert (row.action, row.actor.username, row.ip, row.target_type, row.target_id) == (
        "knowledge.knowledgebase.change",
        "root@example.com",
        "10.1.2.3",
        "knowledge.knowledgebase",
        str(kb.pk),
    )
    assert (row.before, row.after) == ({"name": "Help"}, {"name": "Help center"})


def test_secret_rotation_is_one_row_with_fingerprints_never_the_secret(admin_client, connector) -> None:
    change(admin_client, f"/admin/connectors/connector/{connector.pk}/change/", secret="new-token-456")
    [row] = rows()
    assert row.action == "connectors.connector.secret_rotate"
    assert (row.before, row.after) == (
        {"secret": [f"…{secret_fingerprint('old-token-123')}"]},
        {"secret": [f"…{secret_fingerprint('new-token-456')}"]},
    )
    stored = str([row.before, row.after, row.detail])
    assert "old-token-123" not in stored and "new-token-456" not in stored


def test_a_tool_edit_in_the_connectors_inline_and_on_its_own_page_are_one_row_each(
    admin_client, connector
) -> None:
    tool = connector.tools.get()
    change(admin_client, f"/admin/connectors/connector/{connector.pk}/change/", **{"tools-0-enabled": ""})
    change(admin_client, f"/admin/connectors/tool/{tool.pk}/change/", path_template="/v2/orders/{id}")
    first, second = rows()
    assert first.action == "connectors.connector.change"
    assert first.detail["inlines"] == [
        {
            "type": "connectors.tool",
            "id": str(tool.pk),
            "before": {"enabled": True},
            "after": {"enabled": False},
        }
    ]
    assert (second.action, second.before, second.after) == (
        "connectors.tool.change",
        {"path_template": "/orders/{id}"},
        {"path_template": "/v2/orders/{id}"},
    )


def test_a_role_change_is_one_row(admin_client) -> None:
    roles_sync()
    bob = make_user("bob@example.com", "Bob", "Agent")
    bob.date_joined = bob.date_joined.replace(microsecond=0)  # what the admin's form can post back
    bob.save()
    admin_group = Group.objects.get(name="admin")
    change(admin_client, f"/admin/auth/user/{bob.pk}/change/", groups=[str(admin_group.pk)])
    [row] = rows()
    assert (row.action, row.target_id, row.before, row.after) == (
        "auth.user.role_change",
        str(bob.pk),
        {"groups": []},
        {"groups": [admin_group.pk]},
    )


def test_create_delete_and_bulk_actions_are_one_row_each(admin_client) -> None:
    response = admin_client.post(
        "/admin/teams/team/add/",
        {
            "name": "Billing",
            "slug": "billing",
            "time_zone": "UTC",
            "rules-TOTAL_FORMS": "0",
            "rules-INITIAL_FORMS": "0",
            "rules-MIN_NUM_FORMS": "0",
            "rules-MAX_NUM_FORMS": "1000",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    team = Team.objects.get(slug="billing")
    response = admin_client.post(f"/admin/teams/team/{team.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert [(r.action, r.target_id) for r in rows()] == [
        ("teams.team.create", str(team.pk)),
        ("teams.team.delete", str(team.pk)),
    ]


def test_the_audit_log_is_read_only_in_the_admin_even_for_superusers(admin_client) -> None:
    entry = audit_record(actor=None, action="conversation.claim", target=None)
    assert admin_client.get("/admin/audit/auditentry/").status_code == 200
    assert admin_client.get("/admin/audit/auditentry/add/").status_code == 403
    assert (
        admin_client.post(f"/admin/audit/auditentry/{entry.pk}/change/", {"action": "x"}).status_code == 403
    )
    assert (
        admin_client.post(f"/admin/audit/auditentry/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    )
    assert admin_client.post(
        "/admin/audit/auditentry/",
        {"action": "delete_selected", "_selected_action": [entry.pk], "post": "yes"},
    ).status_code in (200, 302)
    assert list(AuditEntry.objects.values_list("action", flat=True)) == ["conversation.claim"]
