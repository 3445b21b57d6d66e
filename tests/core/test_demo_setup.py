import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from apps.console.roles import staff_role
from apps.customers.models import Customer
from apps.knowledge.demo import ARTICLES_DIR
from apps.knowledge.models import Document


@pytest.mark.django_db
def test_demo_setup_twice_leaves_one_working_agent_login(client, settings, capsys):
    call_command("demo_setup")
    call_command("demo_setup")

    users = get_user_model().objects.filter(username=settings.DEMO_AGENT_EMAIL)
    assert users.count() == 1
    agent = users.get()
    assert (agent.is_staff, agent.email) == (True, "agent@example.com")
    # The demo agent is an `admin` (it uses /admin/), never a superuser (its password is published).
    assert (staff_role(agent), agent.is_superuser) == ("admin", False)
    assert list(agent.groups.values_list("name", flat=True)) == ["admin"]
    assert agent.has_perms(["webhooks.change_eventdelivery", "knowledge.add_document"]) is True
    assert agent.has_perm("console.change_agent") is False  # staff accounts stay with superusers
    assert client.login(username="agent@example.com", password="kefu-demo") is True
    demo_customers = Customer.objects.filter(external_id__startswith="demo-customer-").order_by("external_id")
    assert [(c.external_id, c.name) for c in demo_customers] == [
        ("demo-customer-1", "Ada Lovelace"), ("demo-customer-2", "Grace Hopper"),
    ]
    output = capsys.readouterr().out
    assert "demo agent agent@example.com: created" in output
    assert "demo agent agent@example.com: up to date" in output
    articles = len(list(ARTICLES_DIR.glob("*.md")))
    kb_lines = [line for line in output.splitlines() if line.startswith("demo knowledge base")]
    assert len(kb_lines) == 2 and kb_lines[0] == kb_lines[1]
    assert kb_lines[0].startswith(f"demo knowledge base help-center: {articles} articles, ")
    assert Document.objects.filter(knowledge_base__slug="help-center", status="ready").count() == articles
