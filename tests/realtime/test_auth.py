"""Authentication, `ready`, and the per-customer socket limit (PROTOCOL.md §2)."""

import asyncio
import uuid

import pytest
from asgiref.sync import sync_to_async
from django.core import signing
from django.utils import timezone

from apps.realtime.socket_slots import slot_count
from tests.support.factories import ConversationFactory
from tests.support.people import token_for

pytestmark = pytest.mark.django_db(transaction=True)


async def test_auth_answers_ready_without_an_open_conversation(chat, customer):
    socket = await chat(customer)
    assert socket.ready == {
        "type": "ready",
        "customer_id": str(customer.pk),
        "conversation_id": None,
        "last_seq": 0,
        "heartbeat_s": 20,
    }


async def test_ready_names_the_open_conversation_and_its_last_seq(chat, customer):
    first = await chat(customer)
    await first.send({"type": "message", "client_msg_id": str(uuid.uuid4()), "text": "hi"})
    ack = await first.recv()
    await first.recv_until("message_end")

    second = await chat(customer)
    assert second.ready["conversation_id"] == ack["conversation_id"]
    assert second.ready["last_seq"] == 3  # customer message, assistant message, message_end


async def test_ready_ignores_closed_conversations(chat, customer):
    await sync_to_async(ConversationFactory)(customer=customer, state="closed", last_seq=4)
    socket = await chat(customer)
    assert (socket.ready["conversation_id"], socket.ready["last_seq"]) == (None, 0)


@pytest.mark.parametrize("token", ["", "garbage", "a.b.c", "x" * 5000])
async def test_bad_token_closes_4401(chat, token):
    socket = await chat()
    await socket.send({"type": "auth", "token": token})
    assert await socket.recv() == {"type": "websocket.close", "code": 4401}


async def test_auth_without_a_token_string_is_invalid(chat):
    socket = await chat()
    await socket.send({"type": "auth", "token": 42})
    assert await socket.recv() == {
        "type": "error",
        "code": "invalid",
        "message": "`token` must be a string of at most 65536 characters.",
    }


async def test_forged_token_closes_4401(chat, customer):
    socket = await chat()
    token = await sync_to_async(token_for)(customer)
    await socket.send({"type": "auth", "token": token[:-4] + "AAAA"})
    assert await socket.recv() == {"type": "websocket.close", "code": 4401}


async def test_expired_token_closes_4401(chat, customer, monkeypatch):
    real_time = signing.time.time
    monkeypatch.setattr(signing.time, "time", lambda: real_time() - 24 * 3600 - 60)
    token = await sync_to_async(token_for)(customer)
    monkeypatch.setattr(signing.time, "time", real_time)

    socket = await chat()
    await socket.send({"type": "auth", "token": token})
    assert await socket.recv() == {"type": "websocket.close", "code": 4401}


async def test_token_of_a_deleted_customer_closes_4401(chat, customer):
    token = await sync_to_async(token_for)(customer)
    await customer.adelete()
    socket = await chat()
    await socket.send({"type": "auth", "token": token})
    assert await socket.recv() == {"type": "websocket.close", "code": 4401}


async def test_no_auth_within_10_seconds_closes_4401(chat):
    socket = await chat()
    started = timezone.now()
    assert await socket.recv(timeout=15) == {"type": "websocket.close", "code": 4401}
    assert (timezone.now() - started).total_seconds() >= 9.5


async def test_frames_before_auth_are_unauthenticated_errors_and_auth_still_works(chat, customer):
    socket = await chat()
    await socket.send({"type": "ping", "ts": 1})
    assert await socket.recv() == {
        "type": "error",
        "code": "unauthenticated",
        "message": "Send `auth` with your widget token first.",
    }
    cmid = str(uuid.uuid4())
    await socket.send({"type": "message", "client_msg_id": cmid, "text": "hi"})
    error = await socket.recv()
    assert (error["code"], error["client_msg_id"]) == ("unauthenticated", cmid)

    ready = await socket.auth(await sync_to_async(token_for)(customer))
    assert ready["type"] == "ready"


async def test_second_auth_is_invalid(chat, customer):
    socket = await chat(customer)
    await socket.send({"type": "auth", "token": await sync_to_async(token_for)(customer)})
    assert (await socket.recv())["code"] == "invalid"


async def test_sixth_socket_of_a_customer_closes_4429_and_a_freed_slot_is_reusable(
    chat, customer, other_customer
):
    sockets = [await chat(customer) for _ in range(5)]
    assert await slot_count(customer_id=customer.pk) == 5

    sixth = await chat()
    await sixth.send({"type": "auth", "token": await sync_to_async(token_for)(customer)})
    assert await sixth.recv() == {"type": "websocket.close", "code": 4429}
    assert await slot_count(customer_id=customer.pk) == 5
    await chat(other_customer)  # the limit is per customer

    await sockets[0].close()
    assert await slot_count(customer_id=customer.pk) == 4
    await chat(customer)
    assert await slot_count(customer_id=customer.pk) == 5

    for socket in sockets[1:]:
        await socket.close()
    assert await slot_count(customer_id=customer.pk) == 1


async def test_slots_of_sockets_that_vanished_expire(chat, customer, settings):
    settings.CHAT_HEARTBEAT_S = 1  # slots live 3 x heartbeat unless refreshed
    from apps.realtime.socket_slots import slot_claim

    for n in range(5):  # as a crashed process leaves them: claimed, never released
        assert await slot_claim(customer_id=customer.pk, socket_id=f"ghost-{n}")
    assert await slot_claim(customer_id=customer.pk, socket_id="one-more") is False

    await asyncio.sleep(3.2)
    socket = await chat(customer)
    assert socket.ready["type"] == "ready"
    assert await slot_count(customer_id=customer.pk) == 1


async def test_live_sockets_keep_their_slots_and_silent_ones_are_closed(chat, customer, settings):
    settings.CHAT_HEARTBEAT_S = 1
    talking = await chat(customer)
    silent = await chat(customer)
    for _ in range(5):  # well past 3 x heartbeat, the slot must have been refreshed
        await asyncio.sleep(1)
        await talking.send({"type": "ping", "ts": 0})
        assert await talking.recv() == {"type": "pong", "ts": 0}
    assert await silent.recv(timeout=5) == {"type": "websocket.close", "code": 1001}
    assert await slot_count(customer_id=customer.pk) == 1
