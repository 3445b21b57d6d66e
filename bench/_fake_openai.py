"""A fake OpenAI-compatible Chat Completions server for the streaming bench (loopback only).

    .venv/bin/python bench/_fake_openai.py --port 8091 [--first-token-ms 200] [--tokens-per-s 50]

POST /v1/chat/completions with "stream": true answers Server-Sent Events: the first content
chunk --first-token-ms after the request, then one word per 1/--tokens-per-s seconds, --tokens
words in all (the first cites [1]), then a chunk with finish_reason "stop" and `data: [DONE]`.
Without "stream" it answers the whole text at once. GET /stats: requests seen. asyncio only (one
thread), so 200 concurrent streams cost little and every stream keeps its own schedule: each
word is due at start + first + i / rate, whatever the others do.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

STATS = {"completions": 0, "streams_done": 0}


def chunk(content: str | None, finish: str | None = None) -> bytes:
    body = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": int(time.time()),
            "model": "fake", "choices": [{"index": 0, "delta": {"content": content} if content else {},
                                          "finish_reason": finish}]}
    return f"data: {json.dumps(body)}\n\n".encode()


def words(n: int) -> list[str]:
    return ["To reset your password press Forgot password [1]"] + [f" w{i}" for i in range(1, n)]


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, opts) -> None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        started = time.monotonic()
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        method, path, _ = request_line.split(" ", 2)
        pairs = (h.split(":", 1) for h in header_lines if ":" in h)
        headers = {k.strip().lower(): v.strip() for k, v in pairs}
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        if method == "GET" and path.endswith("/stats"):
            payload = json.dumps(STATS).encode()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                         b"Content-Length: %d\r\n\r\n" % len(payload) + payload)
            return
        if not path.endswith("/chat/completions"):
            writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        STATS["completions"] += 1
        request = json.loads(body or b"{}")
        text = words(opts.tokens)
        if not request.get("stream"):
            await asyncio.sleep(opts.first_token_ms / 1000)
            payload = json.dumps({"id": "chatcmpl-fake", "object": "chat.completion", "model": "fake",
                                  "choices": [{"index": 0, "finish_reason": "stop",
                                               "message": {"role": "assistant", "content": "".join(text)}}]})
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                         b"Content-Length: %d\r\n\r\n" % len(payload) + payload.encode())
            return
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                     b"Connection: close\r\n\r\n")
        first = opts.first_token_ms / 1000
        for i, word in enumerate(text):
            due = started + first + i / opts.tokens_per_s
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            writer.write(chunk(word))
            await writer.drain()
        writer.write(chunk(None, "stop") + b"data: [DONE]\n\n")
        await writer.drain()
        STATS["streams_done"] += 1
    except (asyncio.IncompleteReadError, ConnectionError):
        pass  # the client went away (a stopped answer): nothing to finish
    finally:
        writer.close()


async def serve(opts) -> None:
    server = await asyncio.start_server(lambda r, w: handle(r, w, opts), "127.0.0.1", opts.port, backlog=1024)
    print(f"fake OpenAI on http://127.0.0.1:{opts.port}/v1", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--first-token-ms", type=float, default=200.0)
    parser.add_argument("--tokens-per-s", type=float, default=50.0)
    parser.add_argument("--tokens", type=int, default=60)
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
