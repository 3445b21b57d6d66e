"""The console's admin pages: the audit log (search, pages, CSV) and a customer's export and
erase buttons (POST with CSRF). Agents and supervisors get 403; each export or erasure made
here is one audit row naming the admin and their IP."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.test import Client

from apps.audit.models import AuditEntry
from apps.audit.services import audit_record
from apps.console.roles import role_join
from apps.customers.models import Customer
from tests.support.people import make_user

pytestmark = pytest.mark.django_db(transaction=True)


def signed_in(username: str, role: str | None, **options) -> Client:  # noqa: ANN003
    user = make_user(username, username.split("@")[0].title(), "Staff")
    if role:
        role_join(user=user, role=role)
    client = Client(REMOTE_ADDR="10.9.8.7", **options)
    client.force_login(user)
    return client


def test_agents_and_supervisors_get_403_on_every_admin_page_and_action(people) -> None:
    zoe, _ = people
    base = f"/console/customers/{zoe.customer.pk}/"
    for role in ("agent", "supervisor"):
        client = signed_in(f"{role}@example.com", role)
        assert client.get("/console/audit/").status_code == 403
        assert client.get("/console/audit/export.csv").status_code == 403
        assert client.get(base).status_code == 403
        assert client.post(f"{base}export/").status_code == 403
        assert client.post(f"{base}erase/", {"confirm": "on"}).status_code == 403
    assert Customer.objects.filter(pk=zoe.customer.pk).exists()
    assert not AuditEntry.objects.filter(action__startswith="customer.").exists()
    assert Client().get("/console/audit/").status_code == 302  # signed out: to the login page


def test_an_admin_exports_and_erases_from_the_console_one_audit_row_each(people) -> None:
    zoe, _ = people
    client = signed_in("root@example.org", "admin", enforce_csrf_checks=True)
    base = f"/console/customers/{zoe.customer.pk}/"
    page = client.get(base)
    assert page.status_code == 200 and zoe.email in page.content.decode()
    assert client.post(f"{base}export/").status_code == 403  # no CSRF token
    token = (
        page.cookies["csrftoken"].value if "csrftoken" in page.cookies else client.cookies["csrftoken"].value
    )

    exported = client.post(f"{base}export/", HTTP_X_CSRFTOKEN=token)
    assert exported.status_code == 200
    assert json.loads(exported.content)["customer"]["email"] == zoe.email
    unconfirmed = client.post(f"{base}erase/", HTTP_X_CSRFTOKEN=token)
    assert unconfirmed.status_code == 302 and Customer.objects.filter(pk=zoe.customer.pk).exists()
    erased = client.post(f"{base}erase/", {"confirm": "on"}, HTTP_X_CSRFTOKEN=token)
    assert erased.status_code == 302 and not Customer.objects.filter(pk=zoe.customer.pk).exists()

    rows = list(
        AuditEntry.objects.filter(action__startswith="customer.")
        .order_by("id")
        .values_list("action", "actor__username", "ip", "target_id")
    )
    assert rows == [
        ("customer.export", "root@example.org", "10.9.8.7", str(zoe.customer.pk)),
        ("customer.erase", "root@example.org", "10.9.8.7", str(zoe.customer.pk)),
    ]
    assert client.get(base).status_code == 404


def test_the_audit_page_searches_pages_and_exports_csv(transactional_db) -> None:
    client = signed_in("root@example.org", "admin")
    for n in range(60):
        audit_record(
            actor=None,
            action="conversation.claim" if n % 2 else "teams.team.change",
            target=("conversations.conversation", f"c-{n}"),
        )
    page = client.get("/console/audit/", {"action": "conversation."})
    assert page.status_code == 200
    assert (page.context["page"].paginator.count, len(page.context["page"].object_list)) == (30, 30)
    everything = client.get("/console/audit/")
    assert (everything.context["page"].paginator.count, len(everything.context["page"].object_list)) == (
        60,
        50,
    )
    assert len(client.get("/console/audit/", {"page": 2}).context["page"].object_list) == 10
    assert client.get("/console/audit/", {"target": "c-7"}).context["page"].paginator.count == 1
    assert (
        client.get("/console/audit/", {"since": "2000-01-01", "until": "2000-01-02"})
        .context["page"]
        .paginator.count
        == 0
    )

    response = client.get("/console/audit/export.csv", {"action": "teams."})
    lines = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert lines[0][:4] == ["at", "actor_label", "actor_id", "action"]
    assert len(lines) == 31 and {line[3] for line in lines[1:]} == {"teams.team.change"}
    [exported] = AuditEntry.objects.filter(action="audit.export").values_list("actor__username", "detail")
    assert exported == ("root@example.org", {"action": "teams."})
