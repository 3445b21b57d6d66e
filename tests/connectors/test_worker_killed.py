"""A worker killed with SIGKILL in the middle of an approved write: the broker redelivers the
task (visibility timeout and restore sweep sized short for the test), another worker finishes it with the same
Idempotency-Key, the customer gets the right outcome, and the system did the write once."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from asgiref.sync import sync_to_async

from apps.connectors.models import ToolCall
from apps.connectors.services import tool_call_confirm
from tests.support.process import REPO, service_env
from tests.support.toolbox import box_for, statuses

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]
VISIBILITY_S = 3


def start_worker(log) -> subprocess.Popen:
    env = service_env(CELERY_VISIBILITY_TIMEOUT_S=str(VISIBILITY_S), CELERY_RESTORE_SWEEP_S="1")
    from django.conf import settings

    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "-Q",
            settings.CELERY_TASK_DEFAULT_QUEUE,
            "--pool",
            "solo",
            "--prefetch-multiplier",
            "1",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            "--loglevel",
            "INFO",
        ],
        cwd=REPO,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while "ready." not in log.read_text():
        assert proc.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, f"celery worker not ready:\n{log.read_text()[-3000:]}"
        time.sleep(0.2)
    return proc


def wait_for(predicate, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


async def test_write_survives_a_killed_worker_and_happens_once(
    demo_connector, demo_crm, ada, conversation_of, listen, tmp_path, settings
):
    settings.TOOL_WAIT_S = 60
    demo_crm.faults(delay_ms=1500, path_prefix="/customers/demo-customer-1/orders/PP-1001/refunds", times=1)
    conversation = await sync_to_async(conversation_of)(ada)
    listener = await listen(conversation.pk)
    box = await box_for(conversation)
    asked = await box.call("refund_request", {"order_number": "PP-1001"})
    first = await sync_to_async(start_worker)(tmp_path / "worker-1.log")
    try:
        await sync_to_async(tool_call_confirm)(
            customer_id=str(ada.pk), conversation_id=str(conversation.pk), call_id=asked.call_id, approve=True
        )
        # The request is in flight (the system answers after 1.5 s): kill the worker now.
        await sync_to_async(wait_for)(lambda: len(demo_crm.writes()) == 1, "the request to reach the system")
        first.kill()
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    # The system does the write although nobody hears its answer.
    await sync_to_async(wait_for)(lambda: demo_crm.writes()[0]["effects"] == 1, "the write to happen")
    assert (await ToolCall.objects.aget(pk=asked.call_id)).status == "running"

    second = await sync_to_async(start_worker)(tmp_path / "worker-2.log")
    try:
        outcome = await box.resume(asked.call_id)
    finally:
        second.terminate()
        second.wait(20)

    row = await ToolCall.objects.aget(pk=asked.call_id)
    logs = "\n".join((tmp_path / f"worker-{n}.log").read_text()[-3000:] for n in (1, 2))
    assert outcome.status == "succeeded", f"{row.status} {row.attempts} {row.error!r}\n{logs}"
    assert (outcome.data["id"], outcome.data["amount"]) == ("RF-7001", "39.00")
    row = await ToolCall.objects.aget(pk=asked.call_id)
    assert (row.status, row.attempts) == ("succeeded", 2)
    assert demo_crm.writes() == [{"key": row.idempotency_key, "requests": 2, "effects": 1}]
    assert statuses(await listener.tool_events(5)) == [
        "awaiting_confirmation",
        "queued",
        "running",
        "progress",
        "succeeded",
    ]
