"""Follow one customer message and one agent reply through the code, hop by hop.

In this process (the ASGI app through Channels' communicator, the real Postgres and Redis of the
dev stack), with the builtin provider and an empty knowledge base:

- message: the customer's `message` frame until that socket has the answer's `message_end`, then
  1 s more for background listeners (queue, webhooks);
- reply: an agent's `reply` frame (the agent holds the conversation and views it) until the
  customer's socket has the agent's `message`, then 1 s more.

For each it lists the hand-offs between the event loop and worker threads, in order, each with the
Kefu function that made it and the one it runs, and counts them: a hand-off is one round trip (a
`run_in_executor` from the loop, an `async_to_sync` from a thread), two crossings. It also counts the
Kefu modules (`apps.*`) whose code ran.

    python -m apps.devstack run .venv/bin/python bench/walkthrough.py [--out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import threading
import traceback
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
APPS = str(REPO / "apps") + os.sep
SETTLE_S = 1.0


class Tracer:
    """Records, while on, the app modules that run (any thread) and the loop/thread hand-offs."""

    def __init__(self) -> None:
        self.on = False
        self.modules: dict[str, None] = {}  # insertion-ordered set
        self.handoffs: list[dict[str, str]] = []
        self._lock = threading.Lock()

    def profile(self, frame, event, arg) -> None:
        if not self.on or event != "call":
            return
        filename = frame.f_code.co_filename
        if filename.startswith(APPS):
            module = "apps." + filename[len(APPS):].removesuffix(".py").replace(os.sep, ".")
            if module not in self.modules:
                with self._lock:
                    self.modules.setdefault(module.removesuffix(".__init__"), None)

    def handoff(self, kind: str, target: object) -> None:
        if not self.on:
            return
        with self._lock:
            self.handoffs.append({"kind": kind, "from": _caller(), "runs": _name(target)})


def _caller() -> str:
    for frame in reversed(traceback.extract_stack()[:-3]):
        if frame.filename.startswith(APPS) and "bench" not in frame.filename:
            module = frame.filename[len(APPS):].removesuffix(".py").replace(os.sep, ".")
            return f"{module}.{frame.name}"
    return "?"


def _name(target: object) -> str:
    for _ in range(8):  # unwrap functools.partial, asgiref's SyncToAsync, decorators
        owner = getattr(target, "__self__", None)
        if owner is not None and type(owner).__name__ == "SyncToAsync":
            target = owner.func
        elif hasattr(target, "func") and hasattr(target, "args"):  # functools.partial
            target = target.func
        elif callable(getattr(target, "__wrapped__", None)):
            target = target.__wrapped__
        else:
            break
    module = getattr(target, "__module__", "") or ""
    name = getattr(target, "__qualname__", None) or type(target).__qualname__
    return f"{module.removeprefix('apps.')}.{name}"


def install(tracer: Tracer) -> None:
    from asgiref.sync import AsyncToSync

    original_executor = asyncio.BaseEventLoop.run_in_executor

    def run_in_executor(self, executor, func, *args):
        tracer.handoff("loop->thread", func)
        return original_executor(self, executor, func, *args)

    asyncio.BaseEventLoop.run_in_executor = run_in_executor
    original_call = AsyncToSync.__call__

    def call(self, *args, **kwargs):
        tracer.handoff("thread->loop", self.awaitable)
        return original_call(self, *args, **kwargs)

    AsyncToSync.__call__ = call
    sys.setprofile(tracer.profile)
    threading.setprofile(tracer.profile)


class Socket:
    """A socket to the ASGI app in this process (Channels' communicator), JSON frames."""

    def __init__(self, path: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
        from channels.routing import URLRouter
        from channels.testing import WebsocketCommunicator

        from config.routing import websocket_urlpatterns

        self.comm = WebsocketCommunicator(URLRouter(websocket_urlpatterns), path, headers=headers or [])

    async def open(self) -> None:
        connected, code = await self.comm.connect(timeout=10)
        assert connected, f"refused with {code}"

    async def send(self, frame: dict) -> None:
        await self.comm.send_json_to(frame)

    async def recv_until(self, type: str, timeout: float = 60, where=lambda e: True) -> list[dict]:
        seen = []
        while True:
            event = await self.comm.receive_json_from(timeout=timeout)
            seen.append(event)
            if event["type"] == type and where(event):
                return seen


async def walk(tracer: Tracer) -> dict[str, dict]:
    from asgiref.sync import sync_to_async
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.test import Client

    from apps.assistant import turns
    from apps.customers.models import Customer
    from apps.customers.tokens import widget_token_issue

    turns.SWEEP_S = 3600.0  # no periodic sweep inside a traced window: only the message's own work

    def customer_token() -> str:
        customer = Customer.objects.create(name="Walk Through", email="walk@example.com")
        return widget_token_issue(customer_id=customer.pk)[0]

    chat = Socket("/ws/chat/")
    await chat.open()
    await chat.send({"type": "auth", "token": await sync_to_async(customer_token)()})
    await chat.recv_until("ready")
    # Warm up: one message through every path (imports, connections, the embedder) before tracing.
    await chat.send({"type": "message", "client_msg_id": str(uuid.uuid4()), "text": "hello there"})
    first = await chat.recv_until("message_end", timeout=300)
    conversation_id = first[0]["conversation_id"]
    await asyncio.sleep(SETTLE_S)

    results = {}
    tracer.on = True
    question = "What is your returns policy?"
    await chat.send({"type": "message", "client_msg_id": str(uuid.uuid4()), "text": question})
    await chat.recv_until("message_end")
    await asyncio.sleep(SETTLE_S)
    tracer.on = False
    results["customer_message"] = _take(tracer)

    def agent_cookie() -> str:
        user = get_user_model().objects.create_user(
            username=f"walk-{uuid.uuid4().hex[:6]}", password="pw", first_name="Walk", is_staff=True)
        user.groups.add(Group.objects.get_or_create(name="agent")[0])
        client = Client()
        client.force_login(user)
        return client.cookies["sessionid"].value

    cookie = await sync_to_async(agent_cookie)()
    agent = Socket("/ws/agent/", [(b"cookie", f"sessionid={cookie}".encode()),
                                  (b"origin", b"http://127.0.0.1:8000")])
    await agent.open()
    await agent.recv_until("agent_ready")
    await agent.send({"type": "subscribe", "conversation_id": conversation_id, "last_seq": 0})
    await agent.recv_until("subscribed")
    await agent.send({"type": "claim", "conversation_id": conversation_id})
    await chat.recv_until("handoff", where=lambda e: e.get("state") == "human")
    is_agent = lambda e: e["message"]["role"] == "agent"  # noqa: E731
    await agent.send({"type": "reply", "conversation_id": conversation_id, "client_msg_id": str(uuid.uuid4()),
                      "text": "warm-up reply"})
    await chat.recv_until("message", where=is_agent)
    await asyncio.sleep(SETTLE_S)

    tracer.on = True
    await agent.send({"type": "reply", "conversation_id": conversation_id, "client_msg_id": str(uuid.uuid4()),
                      "text": "Your parcel left our warehouse this morning."})
    await chat.recv_until("message", where=is_agent)
    await asyncio.sleep(SETTLE_S)
    tracer.on = False
    results["agent_reply"] = _take(tracer)
    await agent.comm.disconnect()
    await chat.comm.disconnect()
    await turns.turns_settle()
    return results


def _take(tracer: Tracer) -> dict:
    taken = {
        "handoffs": len(tracer.handoffs),
        "crossings": 2 * len(tracer.handoffs),
        "modules": len(tracer.modules),
        "hops": list(tracer.handoffs),
        "module_list": list(tracer.modules),
    }
    tracer.handoffs, tracer.modules = [], {}
    return taken


def _setup(db_name: str) -> tuple[dict, object]:
    """Django on a scratch database. Trees from before the redesign (no apps.devstack, no
    bench/_harness.py) started the embedded services when their settings were imported."""
    try:
        from bench._harness import django_setup_scratch, scratch_teardown

        return django_setup_scratch(db_name), scratch_teardown
    except ImportError:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
        import django
        from django.conf import settings
        from django.core.management import call_command
        from django.db import connection

        django.setup()
        with connection.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{db_name}"')
        connection.close()
        settings.DATABASES["default"]["NAME"] = db_name
        call_command("migrate", verbosity=0)
        return {}, lambda *_: None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    db_name = f"kefu_walk_{os.getpid()}"
    os.environ.setdefault("LLM_PROVIDER", "builtin")
    os.environ["ASSISTANT_TOKEN_DELAY_S"] = "0"
    os.environ["CHAT_HEARTBEAT_S"] = os.environ["AGENT_HEARTBEAT_S"] = "3600"  # no beats inside a window
    env, teardown = _setup(db_name)
    tracer = Tracer()
    install(tracer)
    try:
        async def run() -> dict:
            try:
                from apps.core.runtime import runtime
            except ImportError:  # before the runtime object: the runner starts with the first socket
                return await walk(tracer)
            await runtime().start("asgi")
            try:
                return await walk(tracer)
            finally:
                await runtime().stop()

        results = asyncio.run(run())
    finally:
        sys.setprofile(None)
        threading.setprofile(None)
        teardown(db_name, env)
    for name, result in results.items():
        print(f"\n{name}: {result['handoffs']} hand-offs ({result['crossings']} crossings), "
              f"{result['modules']} Kefu modules")
        for n, hop in enumerate(result["hops"], start=1):
            print(f"  {n:2}. {hop['kind']:13} {hop['from']} -> {hop['runs']}")
        print("  modules: " + ", ".join(m.removeprefix("apps.") for m in result["module_list"]))
    out = Path(args.out) if args.out else REPO / "bench" / "results" / "walkthrough.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
