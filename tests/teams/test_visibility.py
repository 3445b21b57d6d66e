"""Teams over the wire (issue 20): an agent of one team never receives another team's queue
entries or pages; a supervisor receives all. Real uvicorn server, real sockets, HTTP."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.test import Client

from apps.console.roles import role_join
from apps.conversations.models import Conversation
from apps.conversations.services import message_create
from apps.teams.models import Team, TeamRule
from tests.support.factories import ConversationFactory, CustomerFactory
from tests.support.people import make_user, session_cookie
from tests.support.sockets import AgentClient, Customer, widget_session

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("isolated_async_state"),
]


@sync_to_async
def workspace() -> dict[str, Any]:
    """Support (Alice) and Billing (Bob) with a rule for invoices, a supervisor (Carol), and one
    waiting conversation in each team."""
    support = Team.objects.create(name="Support", slug="support")
    billing = Team.objects.create(name="Billing", slug="billing")
    TeamRule.objects.create(team=billing, keywords="invoice", order=1)
    alice = make_user("alice@example.com", "Alice", "Agent")
    bob = make_user("bob@example.com", "Bob", "Agent")
    carol = make_user("carol@example.com", "Carol", "Lead")
    role_join(user=carol, role="supervisor")
    support.members.add(alice)
    billing.members.add(bob)
    held = {}
    for name, team in (("support", support), ("billing", billing)):
        conversation = ConversationFactory(customer=CustomerFactory(), team=team, state="waiting")
        message_create(
            conversation=conversation, role="customer", text=f"Hi {name}", client_msg_id=uuid.uuid4()
        )
        held[name] = str(conversation.pk)
    return {"support": support, "billing": billing, "alice": alice, "bob": bob, "carol": carol, "held": held}


async def console(server, user) -> tuple[AgentClient, dict[str, Any]]:
    client = AgentClient(server.ws_url, await sync_to_async(session_cookie)(user), server.http_url)
    ready = await client.connect()
    assert ready["type"] == "agent_ready"
    return client, ready


async def customer_says(server, text: str, team: Any = None) -> tuple[Customer, str]:
    """A new customer's socket (auth with the widget's `team` setting) and their first message."""
    session = await widget_session(server.http_url)
    socket = Customer(server.ws_url, session["token"])
    await socket.open()
    auth = {"type": "auth", "token": session["token"]}
    await socket.send(auth if team is None else {**auth, "team": team})
    assert (await socket.recv())["type"] == "ready"
    await socket.send({"type": "message", "client_msg_id": str(uuid.uuid4()), "text": text})
    ack = (await socket.recv_until("ack"))[-1]
    return socket, ack["conversation_id"]


async def entries_until(client: AgentClient, conversation_id: str) -> list[dict[str, Any]]:
    """The queue entries a console received up to the first one of `conversation_id`."""
    events = await client.recv_until(
        "conversation", where=lambda e: e["conversation"]["id"] == conversation_id
    )
    return [e["conversation"] for e in events if e["type"] == "conversation"]


def team_of(entry: dict[str, Any]) -> str | None:
    return entry["team"] and entry["team"]["name"]


@sync_to_async
def team_name(conversation_id: str) -> str | None:
    team = Conversation.objects.select_related("team").get(pk=conversation_id).team
    return team and team.name


async def test_an_agent_hears_only_their_teams_queue_and_a_supervisor_hears_all(web_server) -> None:
    w = await workspace()
    server = web_server(ASSISTANT_TOKEN_DELAY_S="0")
    (alice, alice_ready), (bob, bob_ready), (carol, carol_ready) = [
        await console(server, w[name]) for name in ("alice", "bob", "carol")
    ]
    customers = []
    try:
        assert [(e["id"], team_of(e)) for e in alice_ready["queue"]] == [(w["held"]["support"], "Support")]
        assert [(e["id"], team_of(e)) for e in bob_ready["queue"]] == [(w["held"]["billing"], "Billing")]
        assert {e["id"] for e in carol_ready["queue"]} == set(w["held"].values())

        # By the widget's setting (which beats the rule the text would match), then by the rule.
        socket, by_setting = await customer_says(server, "My invoice, please", team="support")
        customers.append(socket)
        assert team_of((await entries_until(carol, by_setting))[-1]) == "Support"
        socket, by_rule = await customer_says(server, "Where is my invoice?")
        customers.append(socket)
        assert team_of((await entries_until(carol, by_rule))[-1]) == "Billing"
        # A marker each team hears after both: whatever the other team's entry, it came before.
        socket, support_marker = await customer_says(server, "Hello", team="support")
        customers.append(socket)
        socket, billing_marker = await customer_says(server, "Hello", team="billing")
        customers.append(socket)

        alice_heard = {e["id"] for e in await entries_until(alice, support_marker)}
        bob_heard = {e["id"] for e in await entries_until(bob, billing_marker)}
        assert by_setting in alice_heard and by_rule not in alice_heard and billing_marker not in alice_heard
        assert by_rule in bob_heard and by_setting not in bob_heard and support_marker not in bob_heard
        assert (await team_name(by_setting), await team_name(by_rule)) == ("Support", "Billing")
    finally:
        for client in (alice, bob, carol, *customers):
            await client.close()


async def test_an_unknown_team_setting_routes_nowhere_and_chat_goes_on(web_server) -> None:
    await workspace()
    server = web_server(ASSISTANT_TOKEN_DELAY_S="0")
    socket, conversation_id = await customer_says(server, "Hello", team="no-such-team")
    other, other_id = await customer_says(server, "Hello", team=42)  # not even a string
    await socket.close()
    await other.close()
    assert (await team_name(conversation_id), await team_name(other_id)) == (None, None)


async def outcome(client: AgentClient, frame: dict[str, Any], ts: int) -> list[dict[str, Any]]:
    """The errors a frame caused: a ping after it answers after its outcome."""
    await client.send(frame)
    await client.send({"type": "ping", "ts": ts})
    return [e for e in await client.recv_until("pong", ts=ts) if e["type"] in ("error", "subscribed")]


async def test_another_teams_conversation_is_not_found_on_the_socket_and_the_pages(web_server) -> None:
    w = await workspace()
    server = web_server()
    theirs = w["held"]["billing"]
    alice, _ = await console(server, w["alice"])
    try:
        frames = [
            {"type": "subscribe", "conversation_id": theirs, "last_seq": 0},
            {"type": "claim", "conversation_id": theirs},
            {"type": "assign", "conversation_id": theirs, "agent_id": w["alice"].pk},
            {"type": "note", "conversation_id": theirs, "client_msg_id": str(uuid.uuid4()), "text": "psst"},
            {"type": "reply", "conversation_id": theirs, "client_msg_id": str(uuid.uuid4()), "text": "hi"},
            {"type": "close", "conversation_id": theirs},
        ]
        answers = [await outcome(alice, frame, n) for n, frame in enumerate(frames)]
        ours = {"type": "subscribe", "conversation_id": w["held"]["support"], "last_seq": 0}
        mine = await outcome(alice, ours, 9)
    finally:
        await alice.close()
    not_found = {"type": "error", "code": "not_found", "message": "No conversation has this id."}
    # (an error about a reply or a note names its client_msg_id)
    cmids = [{"client_msg_id": f["client_msg_id"]} if "client_msg_id" in f else {} for f in frames]
    assert answers == [[{**not_found, **cmid}] for cmid in cmids]
    assert [e["type"] for e in mine] == ["subscribed"]
    stored = await sync_to_async(Conversation.objects.get)(pk=theirs)
    assert (stored.state, stored.assignee_id) == ("waiting", None)

    async def get(user, path: str) -> httpx.Response:
        cookie = await sync_to_async(session_cookie)(user)
        async with httpx.AsyncClient(cookies={"sessionid": cookie}) as client:
            return await client.get(f"{server.http_url}{path}")

    for path in (f"/console/c/{theirs}/", f"/console/c/{theirs}/crm/"):
        assert (await get(w["alice"], path)).status_code == 404, path
    queue = (await get(w["alice"], "/console/?closed=on")).text
    assert w["held"]["support"] in queue and theirs not in queue
    assert (await get(w["carol"], f"/console/c/{theirs}/")).status_code == 200
    assert (await get(w["bob"], f"/console/c/{theirs}/")).status_code == 200


async def test_moving_a_conversation_to_another_team_moves_it_between_their_queues(web_server) -> None:
    w = await workspace()
    server = web_server()
    moved = w["held"]["support"]
    alice, _ = await console(server, w["alice"])
    bob, _ = await console(server, w["bob"])

    @sync_to_async
    def move(user, team: Team | None) -> int:
        client = Client()
        client.force_login(user)
        data = {"team_id": team.pk if team else ""}
        return client.post(f"/console/c/{moved}/team/", data).status_code

    try:
        assert await move(w["bob"], w["billing"]) == 302  # refused: another team's (not found)
        assert await move(w["alice"], w["billing"]) == 302  # refused: not hers, and she is no lead
        assert await team_name(moved) == "Support"
        assert await move(w["carol"], w["billing"]) == 302
        assert await team_name(moved) == "Billing"
        removed = (await alice.recv_until("conversation_removed"))[-1]
        [entry] = await entries_until(bob, moved)
    finally:
        await alice.close()
        await bob.close()
    assert removed == {"type": "conversation_removed", "conversation_id": moved}
    assert team_of(entry) == "Billing"
