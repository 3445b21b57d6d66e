"""The customer's message rate (RATELIMIT_MESSAGE_CUSTOMER): counted by the statement that stores
the message, under the customer's row lock, across every socket of the customer."""

import asyncio
import math
import time
import uuid

import pytest

from apps.assistant.phrases import phrase
from apps.conversations.models import Message

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fast_answers(settings):
    settings.ASSISTANT_TOKEN_DELAY_S = 0


def message(text="hello"):
    return {"type": "message", "client_msg_id": str(uuid.uuid4()), "text": text}


async def send_and_answer(socket, frame):
    """The frame's ack or error (whatever else arrives meanwhile skipped)."""
    await socket.send(frame)
    while True:
        event = await socket.recv()
        if event["type"] in ("ack", "error") and event.get("client_msg_id") == frame["client_msg_id"]:
            return event


async def stored_texts(customer):
    texts = Message.objects.filter(conversation__customer=customer, role="customer")
    return sorted([text async for text in texts.values_list("text", flat=True)])


# 0: every message through a database thread (the rare cases' path), counted by the same statement.
@pytest.mark.parametrize("loop_connections", [4, 0])
async def test_the_rate_is_the_customers_across_tabs_and_a_retry_is_not_counted(
    chat, customer, other_customer, settings, loop_connections
):
    settings.DB_LOOP_CONNECTIONS = loop_connections
    settings.RATELIMIT_MESSAGE_CUSTOMER = "3/minute"
    first_tab, second_tab = await chat(customer), await chat(customer)
    stranger = await chat(other_customer)
    first = message("one")

    answers = [
        await send_and_answer(first_tab, first),
        await send_and_answer(first_tab, message("two")),
        await send_and_answer(second_tab, message("three")),
    ]
    sent_at = time.time()
    over = await send_and_answer(second_tab, message("four"))
    answered_at = time.time()
    retried = await send_and_answer(second_tab, first)  # a retry of a stored message is not a new one
    strangers = await send_and_answer(stranger, message("mine"))

    assert [answer["type"] for answer in answers] == ["ack", "ack", "ack"]
    assert over["type"] == "error" and over["code"] == "rate_limited"
    prefix, suffix = "You are sending messages too fast; wait ", " s and retry."
    wait = int(over["message"].removeprefix(prefix).removesuffix(suffix))
    # Exactly the seconds until the oldest of the three (the first message) leaves the minute,
    # counted from the refusal, which fell between sending "four" and its answer.
    await customer.arefresh_from_db()
    oldest = customer.message_hits[2].timestamp()
    assert math.ceil(oldest + 60 - answered_at) <= wait <= math.ceil(oldest + 60 - sent_at)
    assert (retried["type"], retried["message_id"]) == ("ack", answers[0]["message_id"])
    assert strangers["type"] == "ack"
    assert await stored_texts(customer) == ["one", "three", "two"]


async def test_messages_sent_at_once_from_several_sockets_never_pass_the_rate(chat, customer, settings):
    settings.RATELIMIT_MESSAGE_CUSTOMER = "5/minute"
    sockets = [await chat(customer) for _ in range(4)]
    frames = [(socket, message(f"{i}-{n}")) for i, socket in enumerate(sockets) for n in range(2)]

    answers = await asyncio.gather(*(send_and_answer(socket, frame) for socket, frame in frames))

    kinds = sorted(answer["type"] for answer in answers)
    assert kinds == ["ack"] * 5 + ["error"] * 3
    assert {answer["code"] for answer in answers if answer["type"] == "error"} == {"rate_limited"}
    acked = sorted(frame["text"] for (_, frame), answer in zip(frames, answers, strict=True)
                   if answer["type"] == "ack")
    assert await stored_texts(customer) == acked


async def test_the_window_moves_on(chat, customer, settings):
    settings.RATELIMIT_MESSAGE_CUSTOMER = "2/second"
    socket = await chat(customer)

    before = [await send_and_answer(socket, message(f"m{i}")) for i in range(3)]
    await asyncio.sleep(1.1)
    after = await send_and_answer(socket, message("later"))

    assert [answer["type"] for answer in before] == ["ack", "ack", "error"]
    assert before[2]["message"] == "You are sending messages too fast; wait 1 s and retry."
    assert after["type"] == "ack"


async def test_the_answers_budget_is_apart_from_the_message_rate(chat, customer, settings):
    # Over RATELIMIT_ANSWER_CUSTOMER_HOUR the customer's messages are still stored and acked;
    # only the answer is declined (the cost guard), and it costs no message.
    settings.RATELIMIT_ANSWER_CUSTOMER_HOUR = "1/hour"
    settings.RATELIMIT_MESSAGE_CUSTOMER = "2/minute"
    socket = await chat(customer)

    first = await send_and_answer(socket, message("one"))
    first_end = (await socket.recv_until("message_end"))[-1]
    second = await send_and_answer(socket, message("two"))
    second_end = (await socket.recv_until("message_end"))[-1]
    third = await send_and_answer(socket, message("three"))

    assert (first["type"], second["type"]) == ("ack", "ack")
    assert first_end["text"] != phrase("over_limit", "en")  # answered (here: no knowledge base)
    assert (second_end["text"], second_end["outcome"]) == (phrase("over_limit", "en"), "declined")
    assert (third["type"], third["code"]) == ("error", "rate_limited")  # two messages a minute
    assert await stored_texts(customer) == ["one", "two"]
