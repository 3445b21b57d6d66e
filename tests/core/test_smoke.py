import json

import httpx
import pytest
import websockets


@pytest.mark.e2e
async def test_websocket_through_the_real_server_round_trips_a_frame(web_server):
    server = web_server()

    async with websockets.connect(f"{server.ws_url}/ws/echo/") as ws:
        await ws.send(json.dumps({"hello": "kefu"}))
        echoed = await ws.recv()

    assert json.loads(echoed) == {"hello": "kefu"}
    assert httpx.get(f"{server.http_url}/admin/login/").status_code == 200
