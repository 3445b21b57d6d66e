"""One fake OpenAI-compatible server on loopback (Chat Completions, streamed or not; embeddings),
standing in for OpenAI, vLLM or Ollama, for the tests and for bench/.

Tests script it (`FakeLLM()`: it records each request and answers from `statuses`, `deltas` and
`script`; a non-streamed request, such as the openai provider's answerability judge, gets the
next `script` entry or else `judgement`). Benches pace it (`FakeLLM(pace=Pace(...))`, or
`python -m tests.support.fake_llm --port N ...` as a process of its own): the first chunk
`first_token_s` after the request, then one word every `token_interval_s` (each word keeps its
own schedule, whatever the other streams do), a structured-output request (the judge) answered
"passage [1] answers" after `judge_s`, embeddings after `embed_delay_s`, and `GET /stats`
counting what it served.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# The paced answer: it cites [1], as an answer from the knowledge base does.
PACED_FIRST_WORDS = "To reset your password press Forgot password [1]"
# The judge's default verdict (apps/assistant/providers/openai.py): passage [1] answers.
ANSWER_FROM_FIRST = {"decision": "answer", "passages": [1], "question": ""}


@dataclass
class Pace:
    first_token_s: float = 0.2
    token_interval_s: float = 0.02
    tokens: int = 60  # chunks of text in all, the first included
    embed_delay_s: float = 0.0
    dims: int = 384
    judge_s: float = 0.0  # a non-streamed request with `response_format` is answered after this


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


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # benches open hundreds of streams at once


class FakeLLM:
    def __init__(self, *, port: int = 0, pace: Pace | None = None, record: bool = True) -> None:
        self.requests: list[dict] = []
        self.statuses: list[int] = []  # answered in turn before the streamed 200s
        self.deltas: list[str] = ["Hello"]
        self.delay_s = 0.0  # pause between streamed chunks (a slow model)
        # When set: one entry per completion request, in turn: a list of text deltas, or tool calls
        # as `[("call_1", "order_status", {"order_number": "PP-1001"}), ...]` (see `tool_calls`),
        # or a whole reply: a dict (sent as its JSON, e.g. the judge's verdict) or a str (as is).
        self.script: list[list | dict | str] = []
        # The reply to a non-streamed request when `script` is empty.
        self.judgement: dict | str = dict(ANSWER_FROM_FIRST)
        # False: like a server without structured output, a request with `response_format`
        # json_schema is refused with 400.
        self.json_schema = True
        # True: a stream ends with a usage-only chunk (`choices: []`), as OpenAI sends with
        # `stream_options.include_usage`.
        self.usage_chunk = False
        self.pace = pace
        self.stats = {"completions": 0, "embeddings": 0, "streams_done": 0, "aborted": 0}
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                if self.path.endswith("/stats"):
                    with fake._lock:
                        self._json(200, dict(fake.stats))
                else:
                    self.send_error(404)

            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                started = time.monotonic()
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                if record:
                    with fake._lock:
                        fake.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                if self.path.endswith("/embeddings"):
                    fake._count("embeddings")
                    time.sleep(fake.pace.embed_delay_s if fake.pace else 0)
                    inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
                    dims = fake.pace.dims if fake.pace else 384
                    self._json(200, {
                        "object": "list", "model": body.get("model", "fake"),
                        "data": [{"object": "embedding", "index": i, "embedding": embed(t, dims)}
                                 for i, t in enumerate(inputs)],
                        "usage": {"prompt_tokens": 0, "total_tokens": 0},
                    })
                    return
                fake._count("completions")
                if fake.statuses:
                    status = fake.statuses.pop(0)
                    self._json(status, {"error": {"message": f"status {status}"}})
                    return
                schema = (body.get("response_format") or {}).get("type") == "json_schema"
                if schema and not fake.json_schema:
                    self._json(400, {"error": {"message": "response_format json_schema is not supported"}})
                    return
                if not body.get("stream", False):
                    self._json(200, {"id": "chatcmpl-fake", "object": "chat.completion", "model": "fake",
                                     "choices": [{"index": 0, "finish_reason": "stop", "message": {
                                         "role": "assistant", "content": fake.next_reply(schema)}}]})
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                try:
                    for due, delta in fake.next_chunks(started):
                        if due is not None:
                            time.sleep(max(0.0, due - time.monotonic()))
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
                    if fake.usage_chunk:
                        usage = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "choices": [],
                                 "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
                        self.wfile.write(f"data: {json.dumps(usage)}\n\n".encode())
                    self.wfile.write(b"data: [DONE]\n\n")
                    self.wfile.flush()
                    fake._count("streams_done")
                except (BrokenPipeError, ConnectionResetError):
                    fake._count("aborted")  # the client stopped listening: a `stop` reached the provider

            def _json(self, status: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = _Server(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _count(self, key: str) -> None:
        with self._lock:
            self.stats[key] += 1

    def next_chunks(self, started: float) -> list[tuple[float | None, dict]]:
        """The streamed `choices[0]` parts of the next answer, each with when it is due (None: at
        once): paced words, or the scripted text or tool calls."""
        if self.pace is not None:
            first, every = started + self.pace.first_token_s, self.pace.token_interval_s
            words = [(first + i * every, {"delta": {"content": w}, "finish_reason": None})
                     for i, w in enumerate(paced_words(self.pace))]
            return [*words, (None, {"delta": {}, "finish_reason": "stop"})]
        return [(None, delta) for delta in self.next_deltas()]

    def next_reply(self, schema: bool) -> str:
        """The content of a non-streamed reply: paced (a verdict if asked for one, after
        `judge_s`; else the paced words after the first-token delay) or scripted."""
        if self.pace is not None:
            time.sleep(self.pace.judge_s if schema else self.pace.first_token_s)
            return json.dumps(ANSWER_FROM_FIRST) if schema else "".join(paced_words(self.pace))
        step = self.script.pop(0) if self.script else self.judgement
        return _content(step)

    def next_deltas(self) -> list[dict]:
        """The streamed `choices[0]` parts of the next scripted answer: text, or tool calls in pieces."""
        step = self.script.pop(0) if self.script else list(self.deltas)
        if isinstance(step, dict | str):
            step = [_content(step)]
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


def _content(step: list | dict | str) -> str:
    if isinstance(step, dict):
        return json.dumps(step)
    return step if isinstance(step, str) else "".join(step)


def paced_words(pace: Pace) -> list[str]:
    return [PACED_FIRST_WORDS] + [f" w{i}" for i in range(1, pace.tokens)]


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


def main() -> None:
    parser = argparse.ArgumentParser(description="A paced fake OpenAI-compatible server (loopback).")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--first-token", type=float, default=0.2, help="first chunk after, s")
    parser.add_argument("--token-interval", type=float, default=0.02, help="between chunks, s")
    parser.add_argument("--tokens", type=int, default=60, help="chunks of text in all")
    parser.add_argument("--embed-delay", type=float, default=0.0, help="embeddings answered after, s")
    parser.add_argument("--dims", type=int, default=384)
    parser.add_argument("--judge-delay", type=float, default=0.0, help="a structured-output reply after, s")
    args = parser.parse_args()
    pace = Pace(first_token_s=args.first_token, token_interval_s=args.token_interval, tokens=args.tokens,
                embed_delay_s=args.embed_delay, dims=args.dims, judge_s=args.judge_delay)
    fake = FakeLLM(port=args.port, pace=pace, record=False)
    print(f"fake OpenAI on {fake.url}", flush=True)
    fake.server.serve_forever()


if __name__ == "__main__":
    main()
