"""The staff actions the first pass of the audit log missed, each through the interface staff
use, each writing exactly one row: a conversation moved to another team (the console's form),
SLA settings and other admin pages (policies, business hours, holidays, SSO links, sign-in
lockouts), a knowledge-base upload, an article published from the knowledge gaps, and the
`connector_import` command. And what must write nothing: an agent following a conversation or
typing, and everything a customer does (typing, thumbs, asking for a person, rating)."""

from __future__ import annotations

import uuid
from io import StringIO
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from axes.models import AccessAttempt
from django.contrib import admin
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.db import connections
from django.test import Client
from django.urls import reverse

from apps.audit.admin_mixins import AuditedAdminMixin
from apps.audit.models import AuditEntry
from apps.connectors.models import Connector
from apps.console.models import GapArticle
from apps.console.roles import role_join
from apps.conversations.models import Conversation, MessageFeedback
from apps.conversations.services import conversation_close, message_create
from apps.identity.models import OidcIdentity
from apps.sla.models import BusinessHours, Holiday, SlaPolicy
from apps.teams.models import Team
from tests.fixtures import FIXTURES
from tests.support.factories import ConversationFactory, CustomerFactory
from tests.support.people import make_user, session_cookie, token_for
from tests.support.sockets import AgentClient, Customer

IP = "10.9.8.7"


def rows() -> list[AuditEntry]:
    return list(AuditEntry.objects.order_by("id"))


def one_more(seen: int) -> AuditEntry:
    """Exactly one row was written since `seen` rows; that row."""
    written = rows()
    assert len(written) == seen + 1, [r.action for r in written[seen:]]
    return written[-1]


def signed_in(user: Any) -> Client:
    client = Client(REMOTE_ADDR=IP)
    client.force_login(user)
    return client


@pytest.fixture
def root(db) -> Client:
    user = make_user("root@example.com", "Root", "Admin")
    user.is_superuser = True
    user.save()
    return signed_in(user)


# -- the console's team change ----------------------------------------------------------------


@pytest.mark.django_db
def test_moving_a_conversation_to_another_team_writes_one_row_and_a_refused_or_idle_move_none() -> None:
    lead = make_user("sue@example.com", "Sue", "Lead")
    role_join(user=lead, role="supervisor")
    agent = make_user("alice@example.com", "Alice", "Agent")
    billing = Team.objects.create(name="Billing", slug="billing")
    conversation = ConversationFactory(customer=CustomerFactory())
    url = f"/console/c/{conversation.pk}/team/"
    console = signed_in(lead)

    assert console.post(url, {"team_id": billing.pk}).status_code == 302
    row = one_more(0)
    state = {"state": conversation.state, "assignee_id": None}
    assert (row.action, row.actor_id, row.ip, row.target_type, row.target_id) == (
        "conversation.team",
        lead.pk,
        IP,
        "conversations.conversation",
        str(conversation.pk),
    )
    assert (row.before, row.after) == ({**state, "team_id": None}, {**state, "team_id": billing.pk})

    console.post(url, {"team_id": billing.pk})  # already there: nothing changes
    signed_in(agent).post(url, {"team_id": ""})  # neither holds it nor leads: refused
    assert len(rows()) == 1
    assert Conversation.objects.get(pk=conversation.pk).team_id == billing.pk

    console.post(url, {"team_id": ""})
    row = one_more(1)
    assert (row.action, row.before["team_id"], row.after["team_id"]) == (
        "conversation.team",
        billing.pk,
        None,
    )


# -- admin pages ----------------------------------------------------------------------------------


def test_every_admin_page_that_can_change_something_is_audited() -> None:
    """A guard for admin classes added later: only the audit log's own page is left out (it
    cannot change anything)."""
    unaudited = [
        model._meta.label
        for model, model_admin in admin.site._registry.items()
        if not isinstance(model_admin, AuditedAdminMixin)
    ]
    assert unaudited == ["audit.AuditEntry"]


@pytest.mark.django_db
def test_sla_settings_edited_in_the_admin_write_one_row_each(root) -> None:
    root.post(
        "/admin/sla/slapolicy/add/",
        {"team": "", "priority": "", "first_response_s": "3600", "resolution_s": ""},
    )
    policy = SlaPolicy.objects.get()
    row = one_more(0)
    assert (row.action, row.target_id, row.ip, row.before) == (
        "sla.slapolicy.create",
        str(policy.pk),
        IP,
        None,
    )
    assert (row.after["first_response_s"], row.after["resolution_s"]) == (3600, None)

    root.post(
        f"/admin/sla/slapolicy/{policy.pk}/change/",
        {"team": "", "priority": "", "first_response_s": "1800", "resolution_s": "86400"},
    )
    row = one_more(1)
    assert (row.action, row.before, row.after) == (
        "sla.slapolicy.change",
        {"first_response_s": 3600, "resolution_s": None},
        {"first_response_s": 1800, "resolution_s": 86400},
    )

    root.post(
        "/admin/sla/businesshours/add/", {"team": "", "weekday": "0", "opens": "09:00", "closes": "17:00"}
    )
    row = one_more(2)
    assert (row.action, row.after["opens"], row.after["closes"]) == (
        "sla.businesshours.create",
        "09:00:00",
        "17:00:00",
    )
    assert BusinessHours.objects.count() == 1

    root.post("/admin/sla/holiday/add/", {"team": "", "date": "2026-12-25", "name": "Christmas"})
    holiday = Holiday.objects.get()
    assert one_more(3).action == "sla.holiday.create"
    root.post(f"/admin/sla/holiday/{holiday.pk}/delete/", {"post": "yes"})
    row = one_more(4)
    assert (row.action, row.target_id, row.before["name"]) == (
        "sla.holiday.delete",
        str(holiday.pk),
        "Christmas",
    )
    assert not Holiday.objects.exists()


@pytest.mark.django_db
def test_unlinking_a_sign_on_identity_and_lifting_a_lockout_write_one_row_each(root) -> None:
    user = make_user("dana@example.com", "Dana", "Agent")
    link = OidcIdentity.objects.create(user=user, issuer="https://idp.example", subject="sub-dana")
    root.post(f"/admin/identity/oidcidentity/{link.pk}/delete/", {"post": "yes"})
    row = one_more(0)
    assert (row.action, row.target_id, row.before["subject"]) == (
        "identity.oidcidentity.delete",
        str(link.pk),
        "sub-dana",
    )

    lockout = AccessAttempt.objects.create(
        username="dana@example.com",
        ip_address="192.0.2.7",
        user_agent="test",
        http_accept="*/*",
        path_info="/console/login/",
        get_data="",
        post_data="",
        failures_since_start=5,
    )
    root.post(f"/admin/axes/accessattempt/{lockout.pk}/delete/", {"post": "yes"})
    row = one_more(1)
    assert (row.action, row.target_id, row.before["username"]) == (
        "axes.accessattempt.delete",
        str(lockout.pk),
        "dana@example.com",
    )
    assert not AccessAttempt.objects.exists()


@pytest.mark.django_db
def test_a_knowledge_base_upload_writes_one_row_for_all_its_files(root) -> None:
    files = [
        SimpleUploadedFile("returns.md", b"# Returns\n\nReturns are free within 30 days.\n"),
        SimpleUploadedFile("setup.exe", b"MZ\x90\x00"),
    ]
    response = root.post(reverse("admin:knowledge_document_upload"), {"files": files})
    assert response.status_code == 302
    row = one_more(0)
    assert (row.action, row.target_type, row.ip, row.actor.username) == (
        "knowledge.document.upload",
        "knowledge.knowledgebase",
        IP,
        "root@example.com",
    )
    assert row.detail == {"files": ["returns.md", "setup.exe"], "queued": 1, "failed": 1}


@pytest.mark.django_db
def test_publishing_an_article_from_the_knowledge_gaps_writes_one_row(demo_kb) -> None:
    lead = make_user("sue@example.com", "Sue", "Lead")
    role_join(user=lead, role="supervisor")
    agent = make_user("alice@example.com", "Alice", "Agent")
    conversation = ConversationFactory(customer=CustomerFactory())
    question = message_create(
        conversation=conversation,
        role="customer",
        text="Do you gift-wrap orders?",
        client_msg_id=uuid.uuid4(),
    )
    form = {
        "title": "Gift wrapping",
        "body": "We gift-wrap any order for £3: tick 'Gift wrap' at checkout and add a message.",
        "question": [str(question.pk)],
    }
    assert signed_in(agent).post(reverse("console:gap_publish"), form).status_code == 403
    assert rows() == []

    assert signed_in(lead).post(reverse("console:gap_publish"), form).status_code == 302
    article = GapArticle.objects.get()
    row = one_more(0)
    assert (row.action, row.actor_id, row.ip, row.target_type, row.target_id) == (
        "knowledge.article.publish",
        lead.pk,
        IP,
        "knowledge.document",
        str(article.document_id),
    )
    assert row.detail == {"title": "Gift wrapping", "gap_article_id": str(article.pk), "questions": 1}


# -- the connector_import command -----------------------------------------------------------------


@pytest.mark.django_db
def test_each_connector_import_writes_one_row_naming_the_tools_it_created_and_updated(
    settings, tmp_path
) -> None:
    doc = tmp_path / "shop.yaml"
    doc.write_text((FIXTURES / "connectors" / "tiny-shop.swagger.yaml").read_text())

    def run(*extra: str) -> None:
        call_command(
            "connector_import",
            "--openapi",
            str(doc),
            "--connector",
            "shop",
            *extra,
            "--json",
            stdout=StringIO(),
        )

    run("--operations", "getOrder")
    row = one_more(0)
    connector = Connector.objects.get(slug="shop")
    assert (row.action, row.actor_id, row.actor_label, row.ip, row.target_type, row.target_id) == (
        "connectors.connector.import",
        None,
        "connector_import command",
        None,
        "connectors.connector",
        str(connector.pk),
    )
    assert (row.detail["created"], row.detail["updated"]) == (["getOrder"], [])

    run()
    row = one_more(1)
    assert (row.detail["created"], row.detail["updated"]) == (["createTicket"], ["getOrder"])
    assert row.detail["skipped"] == 2 and row.detail["base_url"] == "https://shop.example.com/api"

    settings.OUTBOUND_ALLOWED_HOSTS = []  # the test settings allow loopback; a private address is refused
    with pytest.raises(CommandError, match="private address"):  # nothing imported, no row
        run("--base-url", "http://10.0.0.1/api")
    assert len(rows()) == 2


# -- what writes nothing ----------------------------------------------------------------------------


@sync_to_async
def seeded() -> tuple[Any, Conversation, str, str, str]:
    alice = make_user("alice@example.com", "Alice", "Lead")
    role_join(user=alice, role="supervisor")
    customer = CustomerFactory()
    conversation = ConversationFactory(customer=customer)
    message_create(conversation=conversation, role="customer", text="Hello?", client_msg_id=uuid.uuid4())
    answer = message_create(conversation=conversation, role="assistant", text="Hi! How can I help?")
    return alice, conversation, session_cookie(alice), token_for(customer), str(answer.pk)


@sync_to_async
def actions() -> list[str]:
    return list(AuditEntry.objects.order_by("id").values_list("action", flat=True))


@sync_to_async
def stored(cid: str) -> tuple[str, int | None, list[tuple[bool, str]]]:
    conversation = Conversation.objects.get(pk=cid)
    thumbs = list(
        MessageFeedback.objects.filter(message__conversation_id=cid).values_list("helpful", "comment")
    )
    return conversation.state, conversation.csat_score, thumbs


async def settled(socket: Any, ts: str) -> list[dict]:
    """Frames are handled in order: once this ping's pong is back, every earlier frame was."""
    await socket.send({"type": "ping", "ts": ts})
    seen = await socket.recv_until("pong", ts=ts)
    assert not [e for e in seen if e["type"] in ("error", "closed")], seen
    return seen


@pytest.fixture
async def db_threads_closed():
    """The ORM calls above run on asgiref's shared thread: close its connection afterwards, so
    the test database can be dropped."""
    yield
    await sync_to_async(connections.close_all)()


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
async def test_following_typing_and_everything_a_customer_does_write_no_row(
    web_server, db_threads_closed
) -> None:
    server = web_server()
    alice, conversation, cookie, token, answer_id = await seeded()
    cid = str(conversation.pk)
    console = AgentClient(server.ws_url, cookie, server.http_url)
    assert (await console.connect())["type"] == "agent_ready"
    customer = Customer(server.ws_url, token)
    assert (await customer.connect())["type"] == "ready"

    await console.send({"type": "subscribe", "conversation_id": cid, "last_seq": 0})
    await console.recv_until("subscribed", conversation_id=cid)
    for on in (True, False):
        await console.send({"type": "typing", "conversation_id": cid, "on": on})
    await console.send({"type": "unsubscribe", "conversation_id": cid})
    await settled(console, "agent")
    assert await actions() == []

    await customer.send({"type": "typing", "conversation_id": cid, "on": True})
    await customer.send(
        {
            "type": "feedback",
            "conversation_id": cid,
            "message_id": answer_id,
            "helpful": False,
            "comment": "meh",
        }
    )
    await customer.send({"type": "request_human", "conversation_id": cid})
    await settled(customer, "customer")
    assert await stored(cid) == ("waiting", None, [(False, "meh")])
    assert await actions() == []

    for frame in ({"type": "claim"}, {"type": "close"}):
        await console.send({**frame, "conversation_id": cid})
    await settled(console, "staff")
    assert await actions() == ["conversation.claim", "conversation.close"]

    await customer.recv_until("csat_request")
    await customer.send({"type": "csat", "conversation_id": cid, "score": 4, "comment": "Quick, thanks"})
    await settled(customer, "rated")
    assert await stored(cid) == ("closed", 4, [(False, "meh")])
    assert await actions() == ["conversation.claim", "conversation.close"]
    await customer.close()
    await console.close()


@pytest.mark.django_db
def test_a_close_by_the_system_with_no_staff_member_writes_no_row() -> None:
    """Only the console's close (a staff member's) is audited; the conversations layer's own
    close, which the console wraps, has no actor to log."""
    conversation = ConversationFactory(customer=CustomerFactory())
    conversation_close(conversation_id=conversation.pk)
    assert Conversation.objects.get(pk=conversation.pk).state == "closed"
    assert rows() == []
