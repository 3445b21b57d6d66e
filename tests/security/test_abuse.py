"""Abuse limits (issue 15): a frame over 1 MiB closes the socket with 1009 before the server
buffers it; `resume` replays a long conversation in pages; every malformed frame is `invalid`
(or `bad_json`) and counted; the limits hold per process while Redis is away; X-Forwarded-For
counts only from TRUSTED_PROXIES."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
from asgiref.sync import sync_to_async

from apps.conversations.models import ConversationEvent
from apps.customers.models import Customer as CustomerRow
from tests.support.factories import ConversationFactory, CustomerFactory
from tests.support.large_frames import assert_large_frames_refused
from tests.support.people import make_user, session_cookie, token_for
from tests.support.sockets import AgentClient, Customer

# Every test here: a fresh channel layer per loop, no ORM connection left on asgiref's thread.
pytestmark = pytest.mark.usefixtures("isolated_async_state")

# -- frames over 1 MiB (the check: tests/support/large_frames.py) ------------------------------


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
async def test_a_frame_over_1_mib_closes_1009_unbuffered_on_uvicorn(web_server):
    await assert_large_frames_refused(web_server())


# On Daphne: tests/realtime/test_daphne.py.


# -- resume in pages --------------------------------------------------------------------------

EVENTS = 10_000


def long_conversation(customer: CustomerRow) -> str:
    conversation = ConversationFactory(customer=customer, last_seq=EVENTS)
    ConversationEvent.objects.bulk_create(
        [
            ConversationEvent(
                conversation=conversation, seq=seq, type="update",
                payload={"kind": "order", "title": f"Update {seq}", "body": "", "data": {}},
            )
            for seq in range(1, EVENTS + 1)
        ],
        batch_size=2000,
    )
    return str(conversation.pk)


async def replayed(socket, conversation_id: str) -> tuple[list[int], dict]:
    await socket.send({"type": "resume", "conversation_id": conversation_id, "last_seq": 0})
    seqs = []
    while True:
        event = await socket.recv()
        if event["type"] != "update":
            return seqs, event
        assert event["title"] == f"Update {event['seq']}"
        seqs.append(event["seq"])


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
async def test_a_10000_event_conversation_resumes_over_a_real_socket_each_event_once_in_order(web_server):
    customer = await sync_to_async(CustomerFactory)(name="Ada")
    conversation_id = await sync_to_async(long_conversation)(customer)
    server = web_server()
    socket = Customer(server.ws_url, await sync_to_async(token_for)(customer))
    assert (await socket.connect())["last_seq"] == EVENTS
    try:
        seqs, after = await replayed(socket, conversation_id)
    finally:
        await socket.close()

    assert seqs == list(range(1, EVENTS + 1))
    assert after == {"type": "resumed", "conversation_id": conversation_id, "last_seq": EVENTS}


@pytest.mark.django_db(transaction=True)
async def test_resume_reads_the_conversation_a_page_at_a_time(chat, monkeypatch):  # noqa: F811
    from apps.realtime import delivery, runtime

    monkeypatch.setattr(delivery, "PAGE_SIZE", 100)
    pages: list[tuple[int, int]] = []  # (after_seq, rows) of each read
    real_fetch = runtime._fetch_events

    async def counted(conversation_id, *args):
        page = await real_fetch(conversation_id, *args)
        pages.append((args[0], len(page)))
        return page

    monkeypatch.setattr(runtime, "_fetch_events", counted)
    customer = await sync_to_async(CustomerFactory)(name="Ada")
    conversation_id = await sync_to_async(long_conversation)(customer)
    socket = await chat(customer)

    seqs, after = await replayed(socket, conversation_id)

    assert seqs == list(range(1, EVENTS + 1))
    assert after == {"type": "resumed", "conversation_id": conversation_id, "last_seq": EVENTS}
    assert pages == [(after_seq, 100) for after_seq in range(0, EVENTS, 100)]


# -- malformed frames -------------------------------------------------------------------------

CID = str(uuid.uuid4())
UUID_FIELD = "must be a UUID string."
TEXT_FIELD = "must be text without NUL characters or unpaired surrogates."
DEEP = "The frame nests deeper than 32 levels."


def invalid(message: str, **extra) -> dict:
    return {"type": "error", "code": "invalid", "message": message, **extra}


def deep(levels: int) -> str:
    return '{"type": "ping", "ts": ' + "[" * levels + "]" * levels + "}"


def chat_malformed(conversation_id: str) -> list[tuple[str, dict]]:
    """(raw frame text, the error it gets), each one a client mistake the socket counts."""
    own, cmid = conversation_id, str(uuid.uuid4())
    confirm = {"type": "tool_confirm", "conversation_id": own, "call_id": CID, "approve": True}
    text = {"type": "message", "client_msg_id": cmid, "conversation_id": own}
    bad_text = invalid(f"`text` {TEXT_FIELD}", client_msg_id=cmid)
    bad_conversation = invalid(f"`conversation_id` {UUID_FIELD}")
    too_deep = {"type": "error", "code": "bad_json", "message": DEEP}
    return [
        (json.dumps({**confirm, "call_id": "not-a-uuid"}), invalid(f"`call_id` {UUID_FIELD}")),
        (json.dumps({**confirm, "call_id": 7}), invalid(f"`call_id` {UUID_FIELD}")),
        (json.dumps({**confirm, "approve": "yes"}), invalid("`approve` must be true or false.")),
        (json.dumps({**text, "text": "a\u0000b"}), bad_text),
        (json.dumps(text)[:-1] + ', "text": "x\\ud800"}', bad_text),  # an unpaired surrogate
        (json.dumps({"type": "resume", "conversation_id": own, "last_seq": 2**64}),
         invalid("`last_seq` must be an integer from 0 up.")),
        (json.dumps({"type": "resume", "conversation_id": f"{own}x", "last_seq": 0}),
         bad_conversation),
        (json.dumps({"type": "csat", "conversation_id": own, "score": 5, "comment": "\u0000"}),
         invalid(f"`comment` {TEXT_FIELD}")),
        (json.dumps({"type": "csat", "conversation_id": own, "score": 2.5}),
         invalid("`score` must be an integer from 1 to 5.")),
        (json.dumps({"type": "typing", "conversation_id": [own], "on": True}), bad_conversation),
        (json.dumps({"type": "stop", "conversation_id": {"id": own}}), bad_conversation),
        (deep(5000), too_deep),
        (deep(40), too_deep),
    ]


async def answered(client: Customer | AgentClient, text: str, ts: int) -> list[dict]:
    """The errors (or close) a frame caused: a ping sent after it is answered after them."""
    await client.ws.send(text)
    await client.send({"type": "ping", "ts": ts})
    seen = await client.recv_until("pong")
    return [e for e in seen if e["type"] in ("error", "closed")]


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
async def test_malformed_chat_frames_are_invalid_and_counted_until_1008(web_server):
    customer = await sync_to_async(CustomerFactory)(name="Ada")
    conversation_id = str((await sync_to_async(ConversationFactory)(customer=customer)).pk)
    server = web_server()
    socket = Customer(server.ws_url, await sync_to_async(token_for)(customer))
    await socket.connect()
    frames = chat_malformed(conversation_id)
    try:
        answers = [await answered(socket, text, ts) for ts, (text, _) in enumerate(frames)]
        # The budget is 20 bad frames a minute: the 20th closes the socket.
        rest = []
        for _ in range(20 - len(frames)):
            await socket.ws.send(frames[0][0])
            rest.append(await socket.recv())
        closed = await socket.recv()
    finally:
        await socket.close()

    assert answers == [[expected] for _, expected in frames]
    assert rest == [frames[0][1]] * (20 - len(frames))
    assert closed == {"type": "closed", "code": 1008}


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
async def test_malformed_agent_frames_are_invalid_and_never_internal(web_server):
    agent = await sync_to_async(make_user)("alice@example.com", "Alice", "Agent")
    conversation = await sync_to_async(ConversationFactory)(state="human", assignee=agent)
    own, cmid = str(conversation.pk), str(uuid.uuid4())
    frames = [
        ({"type": "reply", "conversation_id": own, "client_msg_id": cmid, "text": "hi\u0000"},
         invalid(f"`text` {TEXT_FIELD}", client_msg_id=cmid)),
        ({"type": "note", "conversation_id": own, "client_msg_id": cmid, "text": "\u0000"},
         invalid(f"`text` {TEXT_FIELD}", client_msg_id=cmid)),
        ({"type": "assign", "conversation_id": own, "agent_id": 2**70},
         invalid("`agent_id` must be an agent's id (a positive integer).")),
        ({"type": "subscribe", "conversation_id": own, "last_seq": 2**64},
         invalid("`last_seq` must be an integer from 0 up.")),
        ({"type": "claim", "conversation_id": "nope"}, invalid(f"`conversation_id` {UUID_FIELD}")),
    ]
    server = web_server()
    client = AgentClient(server.ws_url, await sync_to_async(session_cookie)(agent), server.http_url)
    assert (await client.connect())["type"] == "agent_ready"
    try:
        answers = [await answered(client, json.dumps(frame), ts) for ts, (frame, _) in enumerate(frames)]
    finally:
        await client.close()

    assert answers == [[expected] for _, expected in frames]


# -- limits while Redis is away ---------------------------------------------------------------


def unreachable_redis_url() -> str:
    from apps.devstack.embedded.ports import free_port

    return f"redis://127.0.0.1:{free_port()}/0"  # a free loopback port: nobody listens


@pytest.mark.django_db
def test_without_redis_sessions_are_still_limited_per_process(client, settings):
    settings.RATELIMIT_SESSION_IP = "2/minute"
    settings.REDIS_URL = unreachable_redis_url()
    address = f"198.18.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250 + 1}"

    statuses = [
        client.post("/api/widget/session", data="", content_type="application/json", REMOTE_ADDR=address)
        .status_code
        for _ in range(4)
    ]

    assert statuses == [201, 201, 429, 429]
    assert CustomerRow.objects.count() == 2


# -- X-Forwarded-For --------------------------------------------------------------------------


async def sessions_and_health(server, forwarded_for: list[str]) -> tuple[list[int], bool]:
    """Session statuses for requests claiming these client addresses, and whether /healthz
    took a request claiming the first one for a loopback client (it shows its checks)."""
    async with httpx.AsyncClient(base_url=server.http_url, timeout=30) as http:
        statuses = [
            (await http.post("/api/widget/session", json={}, headers={"X-Forwarded-For": ip})).status_code
            for ip in forwarded_for
        ]
        health = await http.get("/healthz", headers={"X-Forwarded-For": forwarded_for[0]})
    return statuses, "checks" in health.json()


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
async def test_x_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy(web_server):
    claimed = ["1.2.3.4", "5.6.7.8", "9.9.9.9"]
    # No TRUSTED_PROXIES (the default): every request counts as 127.0.0.1, the real peer.
    untrusting = web_server(RATELIMIT_SESSION_IP="2 per 53 minute")
    statuses, loopback = await sessions_and_health(untrusting, claimed)
    assert statuses == [201, 201, 429]
    assert loopback is True

    # Behind a proxy listed in TRUSTED_PROXIES the forwarded client is the client.
    behind_proxy = web_server(RATELIMIT_SESSION_IP="2 per 47 minute", TRUSTED_PROXIES="127.0.0.1")
    statuses, loopback = await sessions_and_health(behind_proxy, claimed)
    assert statuses == [201, 201, 201]
    assert loopback is False


def test_trusted_proxies_must_be_addresses_or_networks():
    from django.core.exceptions import ImproperlyConfigured

    from apps.core.net import trusted_proxies

    assert trusted_proxies([]) == ""
    assert trusted_proxies(["10.0.0.5", "10.1.0.0/16", "fd00::/8"]) == "10.0.0.5,10.1.0.0/16,fd00::/8"
    for wrong in (["*"], ["10.0.0.0/33"], ["lb.internal"]):
        with pytest.raises(ImproperlyConfigured, match="TRUSTED_PROXIES"):
            trusted_proxies(wrong)
