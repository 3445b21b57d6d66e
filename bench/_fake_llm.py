"""A slow fake OpenAI-compatible server for benches (loopback only).

    python bench/_fake_llm.py --port 8090 [--embed-delay 0.8] [--first-token 1.5] [--tokens 120]

- POST /v1/embeddings: after --embed-delay seconds, one 384-dimension vector per input: a shared
  component plus a hashed bag of words (see `embed`).
- POST /v1/chat/completions (stream=true): SSE chunks; the first after --first-token seconds,
  then --tokens words every --token-interval seconds, then `finish_reason: stop` and [DONE].
- GET /stats: {"embeddings": n, "completions": n, "aborted": n} (requests seen so far).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STATS = {"embeddings": 0, "completions": 0, "aborted": 0}
LOCK = threading.Lock()


def embed(text: str, dims: int) -> list[float]:
    """A shared component (weight 4) plus the text's normalised bag of words: every pair of texts
    has cosine >= 0.94, so Kefu's relevance judge finds the knowledge base relevant and the chat
    model is asked (a stop bench needs long answers, not good retrieval); shared words rank."""
    words = [0.0] * dims
    for word in re.findall(r"\w+", text.lower()):
        words[int(hashlib.blake2b(word.encode(), digest_size=4).hexdigest(), 16) % dims] += 1.0
    norm = math.sqrt(sum(x * x for x in words)) or 1.0
    vector = [x / norm for x in words]
    vector[0] += 4.0
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    options: argparse.Namespace

    def log_message(self, *args) -> None:  # quiet
        pass

    def _count(self, key: str) -> None:
        with LOCK:
            STATS[key] += 1

    def _json(self, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/stats":
            with LOCK:
                self._json(dict(STATS))
        else:
            self.send_error(404)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        request = json.loads(self.rfile.read(length) or b"{}")
        if self.path.endswith("/embeddings"):
            self._count("embeddings")
            time.sleep(self.options.embed_delay)
            inputs = request["input"] if isinstance(request["input"], list) else [request["input"]]
            self._json({
                "object": "list", "model": request.get("model", "fake"),
                "data": [{"object": "embedding", "index": i, "embedding": embed(t, self.options.dims)}
                         for i, t in enumerate(inputs)],
                "usage": {"prompt_tokens": 0, "total_tokens": 0},
            })
        elif self.path.endswith("/chat/completions"):
            self._count("completions")
            self._stream(request)
        else:
            self.send_error(404)

    def _stream(self, request: dict) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

        def chunk(delta: dict, finish: str | None = None) -> bytes:
            body = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": int(time.time()),
                    "model": request.get("model", "fake"),
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            return f"data: {json.dumps(body)}\n\n".encode()

        try:
            time.sleep(self.options.first_token)
            self.wfile.write(chunk({"role": "assistant", "content": "Here "}))
            self.wfile.flush()
            for i in range(self.options.tokens):
                time.sleep(self.options.token_interval)
                self.wfile.write(chunk({"content": f"word{i} "}))
                self.wfile.flush()
            self.wfile.write(chunk({}, "stop") + b"data: [DONE]\n\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self._count("aborted")  # the client stopped listening: a `stop` reached the provider


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--embed-delay", type=float, default=0.8)
    parser.add_argument("--first-token", type=float, default=1.5)
    parser.add_argument("--tokens", type=int, default=120)
    parser.add_argument("--token-interval", type=float, default=0.03)
    parser.add_argument("--dims", type=int, default=384)
    options = parser.parse_args()
    Handler.options = options
    server = ThreadingHTTPServer(("127.0.0.1", options.port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
