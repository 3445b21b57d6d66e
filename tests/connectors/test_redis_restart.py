"""Redis, which carries the done-notifications a waiting answer listens for, goes away in the
middle of a call and comes back: the answer still gets the right outcome (the row in Postgres
is the truth; the notification only saves time), and the next call works as before."""

from __future__ import annotations

import asyncio
import subprocess
import weakref

import pytest
from asgiref.sync import sync_to_async

from apps.conversations.models import ConversationEvent
from apps.core import redis as kefu_redis
from apps.devstack.embedded.ports import free_port
from apps.devstack.embedded.redis import redis_server_binary
from tests.support.process import wait_for_port
from tests.support.toolbox import box_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


def redis_start(port: int, tmp_path) -> subprocess.Popen:
    log = tmp_path / f"redis-{port}.log"
    proc = subprocess.Popen(
        [
            redis_server_binary(),
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=log.open("a"),
        stderr=subprocess.STDOUT,
    )
    wait_for_port(port, proc, log)
    return proc


@pytest.fixture
def private_redis(settings, monkeypatch, tmp_path):
    """A Redis of this test's own for Kefu's short-lived state and the channel layer (the
    Celery broker stays on the shared one), which the test may kill and restart."""
    port = free_port()
    state = {"proc": redis_start(port, tmp_path)}
    settings.REDIS_URL = f"redis://127.0.0.1:{port}/0"
    # Fresh clients for the new URL: the runtime keys them by REDIS_URL (h12's apps/core/runtime.py);
    # the module globals are reset only while they still exist.
    monkeypatch.setattr(kefu_redis, "_sync_client", None, raising=False)
    monkeypatch.setattr(kefu_redis, "_clients", weakref.WeakKeyDictionary(), raising=False)

    def kill():
        state["proc"].kill()
        state["proc"].wait(10)

    def restart():
        state["proc"] = redis_start(port, tmp_path)

    yield kill, restart
    if state["proc"].poll() is None:
        state["proc"].kill()
        state["proc"].wait(10)


async def test_a_call_survives_redis_going_away_and_coming_back(
    demo_connector, demo_crm, ada, conversation_of, celery_worker_live, listen, private_redis
):
    kill, restart = private_redis
    demo_crm.faults(delay_ms=1500, times=1)
    conversation = await sync_to_async(conversation_of)(ada)
    listener = await listen(conversation.pk)
    box = await box_for(conversation)

    waiting = asyncio.create_task(box.call("order_status", {"order_number": "PP-1002"}))
    await listener.tool_events(2)  # queued, running: the answer is waiting on Redis now
    await sync_to_async(kill)()
    outcome = await waiting

    assert (outcome.status, outcome.data["status"]) == ("succeeded", "processing")
    # Its broadcast was lost with Redis; the durable event is in Postgres, where sockets repair from.
    stored = [e.payload["status"] async for e in ConversationEvent.objects.filter(conversation=conversation)]
    assert stored == ["queued", "running", "succeeded"]

    await sync_to_async(restart)()
    again = await box.call("stock_check", {"query": "kettle"})
    assert (again.status, again.data["products"][0]["stock"]) == ("succeeded", 3)
