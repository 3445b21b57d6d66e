"""A real HTTP server on loopback that speaks the streaming Chat Completions API, standing in
for OpenAI, vLLM or Ollama: it records each request and answers from a script."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeLLM:
    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.statuses: list[int] = []  # answered in turn before the streamed 200s
        self.deltas: list[str] = ["Hello"]
        self.delay_s = 0.0  # pause between streamed chunks (a slow model)
        # When set: one entry per request, in turn: a list of text deltas, or tool calls as
        # `[("call_1", "order_status", {"order_number": "PP-1001"}), ...]` (see `tool_calls`).
        self.script: list[list] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                if fake.statuses:
                    status = fake.statuses.pop(0)
                    payload = json.dumps({"error": {"message": f"status {status}"}}).encode()
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                for delta in fake.next_deltas():
                    chunk = {
                        "id": "chatcmpl-fake",
                        "object": "chat.completion.chunk",
                        "created": 0,
                        "model": body.get("model", ""),
                        "choices": [{"index": 0, **delta}],
                    }
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.flush()
                    if fake.delay_s:
                        time.sleep(fake.delay_s)
                self.wfile.write(b"data: [DONE]\n\n")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def next_deltas(self) -> list[dict]:
        """The streamed `choices[0]` parts of the next answer: text, or tool calls in pieces."""
        step = self.script.pop(0) if self.script else list(self.deltas)
        if step and isinstance(step[0], tuple):
            return tool_calls(step)
        return [{"delta": {"content": text}, "finish_reason": None} for text in step] + [
            {"delta": {}, "finish_reason": "stop"}
        ]

    def __enter__(self) -> FakeLLM:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def tool_calls(calls: list[tuple[str, str, dict]]) -> list[dict]:
    """Streamed tool calls as OpenAI sends them: id and name first, the arguments' JSON in pieces."""
    parts: list[dict] = []
    for index, (call_id, name, arguments) in enumerate(calls):
        parts.append(
            {
                "delta": {
                    "tool_calls": [
                        {
                            "index": index,
                            "id": call_id,
                            "type": "function",
                            "function": {"name": name, "arguments": ""},
                        }
                    ]
                }
            }
        )
        text = json.dumps(arguments)
        for i in range(0, len(text), 7):
            parts.append(
                {"delta": {"tool_calls": [{"index": index, "function": {"arguments": text[i : i + 7]}}]}}
            )
    return [{**p, "finish_reason": None} for p in parts] + [{"delta": {}, "finish_reason": "tool_calls"}]
