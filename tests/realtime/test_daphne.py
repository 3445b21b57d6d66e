"""The one end-to-end file on Daphne. uvicorn serves the product (Procfile) and every other test
(`web_server`); DESIGN.md's testing section asks for a real Daphne process with a real
`websockets` client, and apps/realtime/daphne_close_codes.py patches Daphne so that it can send
PROTOCOL.md's RFC close codes (1001, 1008, 1009): only a Daphne process proves that patch, and
that the socket runtime closes the same way on both servers."""

import pytest

from tests.support.large_frames import assert_large_frames_refused
from tests.support.sockets import Customer, widget_session

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


async def test_daphne_sends_the_protocol_close_codes(daphne_server):
    server = daphne_server(CHAT_HEARTBEAT_S="1")
    token = (await widget_session(server.http_url))["token"]

    abusive = Customer(server.ws_url, token)
    await abusive.connect()
    for _ in range(20):
        await abusive.ws.send("{")
    events = await abusive.recv_until("closed")
    assert [e["code"] for e in events] == ["bad_json"] * 20 + [1008]

    silent = Customer(server.ws_url, token)
    await silent.connect()
    assert await silent.recv(timeout=10) == {"type": "closed", "code": 1001}  # 3 x heartbeat

    forged = Customer(server.ws_url, token + "x")
    assert await forged.connect() == {"type": "closed", "code": 4401}


async def test_a_frame_over_1_mib_closes_1009_unbuffered_on_daphne(daphne_server):
    await assert_large_frames_refused(daphne_server())
