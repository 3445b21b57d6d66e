"""Frames over 1 MiB: a client that announces one and sends only its start, and the check that
both sockets refuse it with 1009 before the server buffers it (uvicorn here, Daphne in
tests/realtime/test_daphne.py)."""

from __future__ import annotations

import asyncio
import os
import struct
import uuid

import psutil
import websockets
from asgiref.sync import sync_to_async

from tests.support.factories import CustomerFactory
from tests.support.people import make_user, session_cookie, token_for
from tests.support.sockets import AgentClient, Customer

MIB = 1024 * 1024  # PROTOCOL.md §2: over this, close 1009

def masked_text_frame_start(announced: int, payload: bytes) -> bytes:
    """The head of a client text frame announcing `announced` payload bytes, and only the first
    `payload` of them: a server that waits for the whole frame before judging it never answers."""
    mask = os.urandom(4)
    head = bytes([0x81, 0x80 | 127]) + struct.pack("!Q", announced) + mask
    return head + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def close_code_after_2_mib_announced(ws: websockets.ClientConnection) -> int | None:
    """The code the server closes with once a frame's head announces 2 MiB (64 KiB of it sent)."""
    ws.transport.write(masked_text_frame_start(2 * MIB, b'{"type": "ping", "ts": "' + b"x" * 65536))
    try:
        while True:
            await asyncio.wait_for(ws.recv(), 20)
    except websockets.ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None


async def sockets_of(server) -> tuple[Customer, AgentClient]:
    customer = await sync_to_async(CustomerFactory)(name="Ada")
    widget = Customer(server.ws_url, await sync_to_async(token_for)(customer))
    assert (await widget.connect())["type"] == "ready"
    agent = await sync_to_async(make_user)(f"agent-{uuid.uuid4().hex[:8]}@example.com", "Alice", "Agent")
    console = AgentClient(server.ws_url, await sync_to_async(session_cookie)(agent), server.http_url)
    assert (await console.connect())["type"] == "agent_ready"
    return widget, console


TOO_LARGE = {"type": "error", "code": "too_large", "message": "Frames are limited to 65536 bytes."}


async def assert_large_frames_refused(server) -> None:
    process = psutil.Process(server.proc.pid)
    widget, console = await sockets_of(server)
    # Between 64 KiB and 1 MiB: `too_large`, and the socket stays open.
    for client in (widget, console):
        await client.send({"type": "ping", "ts": "x" * (MIB - 64)})
        assert (await client.recv_until("error"))[-1] == TOO_LARGE
        await client.send({"type": "ping", "ts": "still open"})
        assert (await client.recv_until("pong"))[-1] == {"type": "pong", "ts": "still open"}

    before = process.memory_info().rss
    codes = [await close_code_after_2_mib_announced(client.ws) for client in (widget, console)]
    grown = process.memory_info().rss - before

    assert codes == [1009, 1009]
    assert grown < 2 * MIB


