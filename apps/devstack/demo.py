"""The demo workspace: created idempotently by `manage.py demo_setup` and `make run`.

Each app keeps its own demo data (apps/<app>/demo.py); this module only puts them together."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

# Identified customers of the demo shop (their orders live in the demo CRM/ERP data).
DEMO_CUSTOMERS = [
    {"external_id": "demo-customer-1", "name": "Ada Lovelace", "email": "ada@example.com"},
    {"external_id": "demo-customer-2", "name": "Grace Hopper", "email": "grace@example.com"},
]


@dataclass(frozen=True)
class DemoWorkspace:
    agent_email: str
    agent_created: bool
    customers: list[str]
    knowledge_base: str
    documents: int
    chunks: int


# What the demo agent may do in /admin/: work with conversations and customers, never manage
# users or permissions (it is not a superuser: its password is published).
DEMO_AGENT_APP_LABELS = ["customers", "conversations", "knowledge", "connectors", "webhooks"]


@transaction.atomic
def demo_agent_ensure(*, email: str, password: str) -> tuple[object, bool]:
    """The demo agent: a staff user (not a superuser) who can sign in to the console and /admin/.
    Its password is set when it is created and never again: one an operator changed stays changed."""
    from django.contrib.auth.models import Permission

    user_model = get_user_model()
    user, created = user_model.objects.get_or_create(
        username=email, defaults={"email": email, "first_name": "Demo", "last_name": "Agent"}
    )
    if created:
        user.set_password(password)
    user.is_staff = True
    user.is_superuser = False  # earlier versions made it one
    user.save()
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label__in=DEMO_AGENT_APP_LABELS))
    return user, created


def demo_workspace_setup() -> DemoWorkspace:
    from apps.connectors.demo import demo_connectors_setup
    from apps.console.demo import demo_console_setup
    from apps.customers.services import customer_identified_get_or_create
    from apps.knowledge.demo import demo_knowledge_base_load
    from apps.knowledge.models import Chunk
    from apps.sla.demo import demo_sla_setup
    from apps.webhooks.services import webhook_source_demo_ensure

    _, created = demo_agent_ensure(email=settings.DEMO_AGENT_EMAIL, password=settings.DEMO_AGENT_PASSWORD)
    demo_console_setup()  # canned replies, and the demo agent's right to manage them
    # The demo CRM vouches for these addresses (its own records), so they count as verified.
    customers = [
        customer_identified_get_or_create(**c, email_verified=True).external_id for c in DEMO_CUSTOMERS
    ]
    kb = demo_knowledge_base_load()
    demo_knowledge_base_load(language="zh-hans")  # help-center-zh: the same articles in Chinese
    demo_connectors_setup()  # the `demo-crm` connector and its tools, at DEMO_CRM_URL
    webhook_source_demo_ensure()  # `demo-crm`, verifying DEMO_WEBHOOK_SECRET
    demo_sla_setup()  # the default SLA policy, around the clock
    return DemoWorkspace(
        agent_email=settings.DEMO_AGENT_EMAIL,
        agent_created=created,
        customers=customers,
        knowledge_base=kb.slug,
        documents=kb.documents.filter(status="ready").count(),
        chunks=Chunk.objects.filter(knowledge_base=kb).count(),
    )
