"""Staff act through roles (issue 15): only the assignee or a supervisor moves a conversation
someone else holds; admin actions and knowledge-base upload need model permissions; a
deactivated or demoted agent's socket closes; sign-in is throttled; weak passwords are refused."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from apps.conversations.models import Conversation
from apps.knowledge.models import Document
from apps.webhooks.models import DeliveryStatus, EventDelivery, EventPayload, WebhookEndpoint, WebhookEvent
from apps.webhooks.services import webhook_source_demo_ensure
from tests.support.factories import ConversationFactory
from tests.support.people import make_user, session_cookie
from tests.support.sockets import AgentClient

# Every test here: a fresh channel layer per loop, no ORM connection left on asgiref's thread.
pytestmark = pytest.mark.usefixtures("isolated_async_state")

PASSWORD = "a long and unusual passphrase"


def staff(username: str, role: str | None = None, *perms: str):
    """A staff user in a role group (apps/console/roles.py), or with only the given permissions."""
    user = make_user(username, username.split("@")[0].title(), "Staff")
    if role is not None:
        from apps.console.roles import role_join

        role_join(user=user, role=role)
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return get_user_model().objects.get(pk=user.pk)  # no cached permissions


def with_password(username: str):
    user = make_user(username, username.split("@")[0].title(), "Staff")
    user.set_password(PASSWORD)
    user.save()
    return user


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


# -- assign and release over /ws/agent/ ------------------------------------------------------


async def outcome(client: AgentClient, frame: dict, ts: int) -> list[dict]:
    """The frames a command caused: a ping after it answers after its outcome."""
    await client.send(frame)
    await client.send({"type": "ping", "ts": ts})
    return [e for e in await client.recv_until("pong", ts=ts) if e["type"] in ("error", "closed")]


async def connected(server, user) -> AgentClient:
    client = AgentClient(server.ws_url, await sync_to_async(session_cookie)(user), server.http_url)
    assert (await client.connect())["type"] == "agent_ready"
    return client


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
async def test_an_agent_cannot_reassign_or_release_a_conversation_another_agent_holds(web_server) -> None:
    alice = await sync_to_async(staff)("alice@example.com", "agent")
    bob = await sync_to_async(staff)("bob@example.com", "agent")
    conversation = await sync_to_async(ConversationFactory)(state="human", assignee=bob)
    server = web_server()
    client = await connected(server, alice)
    try:
        conversation_id = str(conversation.pk)
        takes = await outcome(
            client, {"type": "assign", "conversation_id": conversation_id, "agent_id": alice.pk}, 1
        )
        releases = await outcome(client, {"type": "release", "conversation_id": conversation_id}, 2)
    finally:
        await client.close()

    message = "Bob Staff has this conversation; only they or a supervisor can reassign or release it."
    assert takes == [{"type": "error", "code": "conflict", "message": message}]
    assert releases == [{"type": "error", "code": "conflict", "message": message}]
    stored = await sync_to_async(Conversation.objects.get)(pk=conversation.pk)
    assert (stored.state, stored.assignee_id) == ("human", bob.pk)


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
async def test_a_supervisor_reassigns_and_releases_a_conversation_another_agent_holds(web_server) -> None:
    alice = await sync_to_async(staff)("alice@example.com", "agent")
    bob = await sync_to_async(staff)("bob@example.com", "agent")
    carol = await sync_to_async(staff)("carol@example.com", "supervisor")
    conversation = await sync_to_async(ConversationFactory)(state="human", assignee=bob)
    server = web_server()
    client = await connected(server, carol)
    try:
        conversation_id = str(conversation.pk)
        assigned = await outcome(
            client, {"type": "assign", "conversation_id": conversation_id, "agent_id": alice.pk}, 1
        )
        stored = await sync_to_async(Conversation.objects.get)(pk=conversation.pk)
        assert (assigned, stored.state, stored.assignee_id) == ([], "human", alice.pk)

        released = await outcome(client, {"type": "release", "conversation_id": conversation_id}, 2)
    finally:
        await client.close()
    stored = await sync_to_async(Conversation.objects.get)(pk=conversation.pk)
    assert (released, stored.state, stored.assignee_id) == ([], "bot", None)


# -- a deactivated or demoted agent's socket -------------------------------------------------


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
async def test_a_deactivated_or_demoted_agents_socket_closes_with_4403_within_a_heartbeat(
    web_server,
) -> None:
    alice = await sync_to_async(staff)("alice@example.com", "agent")
    bob = await sync_to_async(staff)("bob@example.com", "agent")
    carol = await sync_to_async(staff)("carol@example.com", "agent")
    server = web_server(CONSOLE_HEARTBEAT_S="0.5")
    clients = [await connected(server, user) for user in (alice, bob, carol)]
    try:
        users = get_user_model().objects
        await sync_to_async(users.filter(pk=alice.pk).update)(is_active=False)
        await sync_to_async(users.filter(pk=bob.pk).update)(is_staff=False)

        # The sockets send nothing: only the server's heartbeat can notice.
        closed = await asyncio.gather(clients[0].recv(timeout=30), clients[1].recv(timeout=30))
        assert closed == [{"type": "closed", "code": 4403}, {"type": "closed", "code": 4403}]
        await clients[2].send({"type": "ping", "ts": 7})
        assert (await clients[2].recv_until("pong", ts=7))[-1] == {"type": "pong", "ts": 7}
    finally:
        for client in clients:
            await client.close()


# -- admin actions and knowledge-base upload -------------------------------------------------


def failed_delivery() -> EventDelivery:
    endpoint = WebhookEndpoint.objects.create(url="https://hooks.example/kefu", secret="whsec_" + "a" * 44)
    payload = EventPayload.objects.create(event_type="csat.received", payload={})
    return EventDelivery.objects.create(
        payload=payload, endpoint=endpoint, status=DeliveryStatus.FAILED, attempts=8
    )


def unmatched_event() -> WebhookEvent:
    return WebhookEvent.objects.create(
        source=webhook_source_demo_ensure(), webhook_id=uuid.uuid4().hex, type="order.shipped", data={}
    )


def run_action(client: Client, url: str, action: str, pk, capture):
    with capture() as queued:
        response = client.post(url, {"action": action, "_selected_action": [str(pk)]}, follow=True)
    return response, len(queued)


@pytest.mark.django_db
def test_staff_who_may_only_view_webhooks_cannot_resend_or_reprocess(django_capture_on_commit_callbacks):
    viewer = staff("vic@example.com", None, "webhooks.view_eventdelivery", "webhooks.view_webhookevent")
    delivery, event = failed_delivery(), unmatched_event()
    client = signed_in(viewer)

    for url, action, pk in (
        ("/admin/webhooks/eventdelivery/", "resend", delivery.pk),
        ("/admin/webhooks/webhookevent/", "reprocess", event.pk),
    ):
        page = client.get(url)
        assert page.status_code == 200
        assert f'value="{action}"' not in page.content.decode()
        response, queued = run_action(client, url, action, pk, django_capture_on_commit_callbacks)
        assert (response.status_code, queued) == (200, 0)  # the list again, nothing run
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.FAILED, 8)


@pytest.mark.django_db
def test_agents_and_supervisors_cannot_resend_webhooks_and_an_admin_can(django_capture_on_commit_callbacks):
    delivery = failed_delivery()
    agent, supervisor = staff("alice@example.com", "agent"), staff("carol@example.com", "supervisor")
    admin = staff("dana@example.com", "admin")
    url = "/admin/webhooks/eventdelivery/"

    # An agent may not see deliveries; a supervisor sees them but may not send them again.
    for user, status in ((agent, 403), (supervisor, 200)):
        refused, queued = run_action(
            signed_in(user), url, "resend", delivery.pk, django_capture_on_commit_callbacks
        )
        delivery.refresh_from_db()
        assert (refused.status_code, queued, delivery.status) == (status, 0, DeliveryStatus.FAILED)

    done, queued = run_action(
        signed_in(admin), url, "resend", delivery.pk, django_capture_on_commit_callbacks
    )
    delivery.refresh_from_db()
    assert (done.status_code, queued, delivery.status) == (200, 1, DeliveryStatus.PENDING)
    assert [str(m) for m in done.context["messages"]] == ["1 deliver(y/ies) queued."]


@pytest.mark.django_db
def test_only_staff_allowed_to_add_documents_upload_to_a_knowledge_base(django_capture_on_commit_callbacks):
    url = "/admin/knowledge/document/upload/"
    viewer = staff("vic@example.com", None, "knowledge.view_document", "knowledge.view_knowledgebase")
    agent, admin = staff("alice@example.com", "agent"), staff("dana@example.com", "admin")
    # The demo help center may be loaded by an earlier test of the run: only new rows count.
    existing = set(Document.objects.values_list("pk", flat=True))

    for user in (viewer, agent):
        client = signed_in(user)
        assert client.get(url).status_code == 403
        files = [SimpleUploadedFile("returns.md", b"# Returns\n\nReturns are free.\n")]
        assert client.post(url, {"files": files}).status_code == 403
        changelist = client.get("/admin/knowledge/document/")
        assert (changelist.status_code, b"Upload documents" in changelist.content) == (200, False)
    assert Document.objects.exclude(pk__in=existing).count() == 0

    client = signed_in(admin)
    with django_capture_on_commit_callbacks() as queued:
        files = [SimpleUploadedFile("returns.md", b"# Returns\n\nReturns are free.\n")]
        assert client.post(url, {"files": files}).status_code == 302
    uploaded = Document.objects.exclude(pk__in=existing)
    assert (list(uploaded.values_list("filename", "status")), len(queued)) == (
        [("returns.md", "pending")],
        1,
    )
    assert b"Upload documents" in client.get("/admin/knowledge/document/").content


# -- sign-in throttling and password rules ---------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("login_url", ["/console/login/", "/admin/login/"])
def test_after_five_wrong_passwords_even_the_right_one_is_refused(login_url):
    with_password("alice@example.com")
    with_password("bob@example.com")
    client = Client()

    statuses = [
        client.post(login_url, {"username": "alice@example.com", "password": "guess"}).status_code
        for _ in range(5)
    ]
    assert statuses == [200, 200, 200, 200, 429]  # the form with its error; the fifth locks
    # Claiming another address in X-Forwarded-For does not start a fresh count.
    locked = client.post(
        login_url,
        {"username": "alice@example.com", "password": PASSWORD},
        HTTP_X_FORWARDED_FOR="203.0.113.9",
    )

    assert locked.status_code == 429
    page = locked.content.decode()
    assert "Too many sign-in attempts" in page
    assert "paused after 5 wrong passwords from your address" in page
    assert "Try again in 15 minutes" in page
    assert "_auth_user_id" not in client.session
    # The lock is on this username from this address: a colleague still signs in.
    assert client.post(login_url, {"username": "bob@example.com", "password": PASSWORD}).status_code == 302


@pytest.mark.django_db
def test_a_weak_password_is_refused_when_staff_change_theirs():
    user = with_password("alice@example.com")
    client = signed_in(user)

    response = client.post(
        "/admin/password_change/",
        {"old_password": PASSWORD, "new_password1": "password", "new_password2": "password"},
    )

    assert response.status_code == 200
    assert response.context["form"].errors == {"new_password2": ["This password is too common."]}
    user.refresh_from_db()
    assert user.check_password(PASSWORD) is True
    with pytest.raises(ValidationError) as refused:
        validate_password("1234567", user=user)
    assert refused.value.messages == [
        "This password is too short. It must contain at least 8 characters.",
        "This password is too common.",
        "This password is entirely numeric.",
    ]
