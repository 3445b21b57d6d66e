"""Console pages through Django's test client: who may see them, what the queue shows, and
that every form needs its CSRF token."""

from __future__ import annotations

import uuid

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from apps.connectors.models import ToolCall
from apps.console.models import CannedReply, Note
from apps.conversations.models import Message
from apps.conversations.services import message_create
from tests.support.factories import ConversationFactory, CustomerFactory
from tests.support.people import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent():
    return make_user("alice@example.com", "Alice", "Agent")


@pytest.fixture
def signed_in(agent) -> Client:
    client = Client()
    client.force_login(agent)
    return client


def say(conversation, text, role="customer", **kwargs):
    return message_create(conversation=conversation, role=role, text=text, **kwargs)


def every_page(conversation) -> list[tuple[str, str]]:
    pages = [
        ("get", reverse("console:queue")),
        ("get", reverse("console:conversation", args=[conversation.pk])),
    ]
    for action in ("claim", "release", "close", "assign", "reply", "note"):
        pages.append(("post", reverse("console:action", args=[conversation.pk, action])))
    return pages


def test_signed_out_visitors_go_to_the_login_page() -> None:
    conversation = ConversationFactory()
    for method, url in every_page(conversation):
        response = getattr(Client(), method)(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/console/login/?next=")


def test_non_staff_get_403_on_every_console_page() -> None:
    shopper = make_user("shopper@example.com", "Sam", "Shopper", staff=False)
    client = Client()
    client.force_login(shopper)
    conversation = ConversationFactory()
    assert [getattr(client, m)(url).status_code for m, url in every_page(conversation)] == [403] * 8


def test_an_agent_signs_in_and_lands_on_the_queue(agent) -> None:
    client = Client(enforce_csrf_checks=True)
    page = client.get(reverse("console:login"))
    token = page.cookies["csrftoken"].value
    response = client.post(
        reverse("console:login"),
        {"username": "alice@example.com", "password": "pw", "csrfmiddlewaretoken": token},
    )
    assert response.status_code == 302 and response["Location"] == "/console/"
    assert client.get("/console/").status_code == 200


def test_forms_without_a_csrf_token_are_refused(agent) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(agent)
    conversation = ConversationFactory(state="waiting")
    response = client.post(reverse("console:action", args=[conversation.pk, "claim"]))
    assert response.status_code == 403
    conversation.refresh_from_db()
    assert conversation.state == "waiting"


def test_the_queue_orders_waiting_first_then_assistant_then_mine_then_others(agent, signed_in) -> None:
    bob = make_user("bob@example.com", "Bob", "Agent")
    others = ConversationFactory(customer=CustomerFactory(name="Others"), state="human", assignee=bob)
    mine = ConversationFactory(customer=CustomerFactory(name="Mine"), state="human", assignee=agent)
    bot = ConversationFactory(customer=CustomerFactory(name="Bot"), state="bot")
    from apps.conversations.services import conversation_request_human

    old_wait = ConversationFactory(customer=CustomerFactory(name="Waited long"))
    conversation_request_human(conversation_id=old_wait.pk)
    new_wait = ConversationFactory(customer=CustomerFactory(name="Waited briefly"))
    conversation_request_human(conversation_id=new_wait.pk)
    closed = ConversationFactory(customer=CustomerFactory(name="Closed"), state="closed")

    queue = signed_in.get("/console/").context["queue"]
    assert [e["customer"]["name"] for e in queue] == [
        "Waited long",
        "Waited briefly",
        "Bot",
        "Mine",
        "Others",
    ]
    assert queue[0]["waiting_since"] is not None and queue[2]["waiting_since"] is None
    with_closed = signed_in.get("/console/?closed=on").context["queue"]
    assert [e["id"] for e in with_closed][-1] == str(closed.pk)
    assert {e["id"] for e in signed_in.get("/console/?assignee=me").context["queue"]} == {str(mine.pk)}
    assert {e["id"] for e in signed_in.get(f"/console/?assignee={bob.pk}").context["queue"]} == {
        str(others.pk)
    }
    assert {e["id"] for e in signed_in.get("/console/?state=bot").context["queue"]} == {str(bot.pk)}


def test_search_finds_name_email_and_message_text_and_counts_unread(signed_in) -> None:
    ada = ConversationFactory(customer=CustomerFactory(name="Ada Lovelace", email="ada@example.com"))
    grace = ConversationFactory(customer=CustomerFactory(name="Grace Hopper", email="grace@navy.example"))
    say(ada, "Where is order PP-1001?")
    say(ada, "Hello?")
    say(grace, "Refund please")

    def found(q):
        return [e["customer"]["name"] for e in signed_in.get("/console/", {"q": q}).context["queue"]]

    assert found("lovelace") == ["Ada Lovelace"]
    assert found("navy.example") == ["Grace Hopper"]
    assert found("pp-1001") == ["Ada Lovelace"]
    assert found("nothing like this") == []
    unread = {e["customer"]["name"]: e["unread"] for e in signed_in.get("/console/").context["queue"]}
    assert unread == {"Ada Lovelace": 2, "Grace Hopper": 1}
    # Opening a conversation reads it.
    signed_in.get(reverse("console:conversation", args=[ada.pk]))
    unread = {e["customer"]["name"]: e["unread"] for e in signed_in.get("/console/").context["queue"]}
    assert unread == {"Ada Lovelace": 0, "Grace Hopper": 1}


def test_the_conversation_page_shows_the_whole_history_escaped(agent, signed_in) -> None:
    conversation = ConversationFactory(
        customer=CustomerFactory(name="<i>Eve</i>"), state="human", assignee=agent
    )
    say(conversation, '<img src=x onerror="alert(1)">')
    say(conversation, "Our answer", role="assistant")
    say(conversation, "Agent here", role="agent", author_id=agent.pk)
    Note.objects.create(conversation=conversation, author=agent, text="<script>alert(2)</script>")
    CannedReply.objects.create(shortcut="hello", title="Greeting", text="Hi, how can I help?")
    ToolCall.objects.create(
        conversation=conversation,
        name="order_status",
        arguments={"order_number": "PP-1001"},
        status="succeeded",
        idempotency_key="k-1",
        detail="Looking up order PP-1001",
        result={"status": "shipped", "note": "<b>fragile</b>"},
    )

    html = signed_in.get(reverse("console:conversation", args=[conversation.pk])).content.decode()

    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in html
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in html
    assert "<img src=x" not in html and "<script>alert(2)" not in html
    assert "&lt;i&gt;Eve&lt;/i&gt;" in html
    assert "Our answer" in html and "Agent here" in html and "Alice Agent" in html
    assert '"shortcut": "hello"' in html
    # Tool calls with arguments and results, for agents.
    assert 'Tool · order_status · <span class="kf-tool-status">succeeded</span>' in html
    assert "&quot;order_number&quot;: &quot;PP-1001&quot;" in html
    assert "&lt;b&gt;fragile&lt;/b&gt;" in html  # canned replies for the "/" picker


def test_plain_forms_work_without_the_socket(agent, signed_in) -> None:
    conversation = ConversationFactory(state="waiting")
    url = lambda action: reverse("console:action", args=[conversation.pk, action])  # noqa: E731

    signed_in.post(url("claim"))
    signed_in.post(url("reply"), {"client_msg_id": str(uuid.uuid4()), "text": "Hello from the form"})
    signed_in.post(url("note"), {"client_msg_id": str(uuid.uuid4()), "text": "private"})
    signed_in.post(url("close"))
    response = signed_in.post(
        url("reply"), {"client_msg_id": str(uuid.uuid4()), "text": "too late"}, follow=True
    )

    conversation.refresh_from_db()
    assert conversation.state == "closed" and conversation.assignee == agent
    assert list(Message.objects.filter(role="agent").values_list("text", flat=True)) == [
        "Hello from the form"
    ]
    assert Note.objects.get().text == "private"
    assert "This conversation is closed" in response.content.decode()


def test_admin_manages_canned_replies_and_agents() -> None:
    admin_user = get_user_model().objects.create_superuser("root@example.com", "root@example.com", "pw")
    make_user("bob@example.com", "Bob", "Agent")
    make_user("shopper@example.com", "Sam", "Shopper", staff=False)
    client = Client()
    client.force_login(admin_user)

    response = client.post(
        "/admin/console/cannedreply/add/",
        {"shortcut": "refund", "title": "Refunds", "text": "Refunds take 5 days."},
    )
    assert response.status_code == 302
    assert CannedReply.objects.get().text == "Refunds take 5 days."
    agents = client.get("/admin/console/agent/")
    assert agents.status_code == 200
    listed = {user.username for user in agents.context["cl"].result_list}
    assert listed == {"root@example.com", "bob@example.com"}  # staff only
    # Customers and conversations, with their messages and notes.
    conversation = ConversationFactory(customer=CustomerFactory(name="Ada Lovelace"))
    say(conversation, "Hello there")
    Note.objects.create(conversation=conversation, author=admin_user, text="VIP")
    assert "Ada Lovelace" in client.get("/admin/customers/customer/?q=lovelace").content.decode()
    page = client.get(f"/admin/conversations/conversation/{conversation.pk}/change/").content.decode()
    assert "Hello there" in page and "VIP" in page
