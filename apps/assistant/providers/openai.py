"""The `openai` provider: any OpenAI-compatible Chat Completions endpoint (OpenAI, Azure,
vLLM, Ollama, llama.cpp), streamed. It answers from the same knowledge base passages as the
builtin provider, numbered so the model can cite them as [n]; the citations sent with the
answer are the passages its final text refers to."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
from asgiref.sync import sync_to_async
from django.conf import settings

from .base import AnswerChunk, ProviderUnavailable, Turn
from .builtin import knowledge_search

logger = logging.getLogger(__name__)

CONNECT_ATTEMPTS = 3
TIMEOUT = httpx.Timeout(60.0, connect=10.0)
_CITE = re.compile(r"\[(\d{1,2})\]")
_ROLES = {"customer": "user", "assistant": "assistant", "agent": "assistant", "system": "system"}

SYSTEM_PROMPT = """You are the customer-service assistant of this company, chatting with a customer.
Answer only from the numbered passages below and cite each fact with its number, like [1].
If the passages do not answer the question, say plainly that you do not know and offer to
connect the customer with a person. Be brief and friendly; plain text, no Markdown headings.

Passages:
{passages}"""


def chat_messages(turn: Turn, passages: Sequence[Any]) -> list[dict[str, str]]:
    """The Chat Completions `messages`: instructions with the passages, history, question."""
    numbered = "\n\n".join(f"[{n}] {p.title}\n{p.text}" for n, p in enumerate(passages, 1))
    messages = [{"role": "system", "content": SYSTEM_PROMPT.format(passages=numbered or "(none found)")}]
    messages += [{"role": _ROLES.get(m["role"], "user"), "content": m["text"]} for m in turn.history]
    messages.append({"role": "user", "content": turn.question})
    return messages


def cited(text: str, passages: Sequence[Any]) -> list[dict[str, Any]]:
    """Citations for the [n] the text uses, numbered as the model saw them."""
    used = sorted({int(n) for n in _CITE.findall(text)} & set(range(1, len(passages) + 1)))
    return [passages[n - 1].citation(n) for n in used]


def _sse_delta(line: str) -> str | None:
    """The text delta of one server-sent-events line; None for anything else."""
    if not line.startswith("data:"):
        return None
    data = line[5:].strip()
    if not data or data == "[DONE]":
        return None
    choices = json.loads(data).get("choices") or [{}]
    return (choices[0].get("delta") or {}).get("content") or None


class OpenAIProvider:
    name = "openai"

    def __init__(self) -> None:
        if not settings.LLM_BASE_URL or not settings.LLM_MODEL:
            raise ProviderUnavailable("LLM_PROVIDER=openai needs LLM_BASE_URL and LLM_MODEL.")
        self.url = settings.LLM_BASE_URL.rstrip("/") + "/chat/completions"
        self.headers = {"Authorization": f"Bearer {settings.LLM_API_KEY}"} if settings.LLM_API_KEY else {}

    async def answer(self, turn: Turn) -> AsyncIterator[AnswerChunk]:
        passages = await sync_to_async(knowledge_search, thread_sensitive=False)(turn.question)
        body = {"model": settings.LLM_MODEL, "messages": chat_messages(turn, passages),
                "stream": True, "temperature": 0.2}
        text = ""
        async with httpx.AsyncClient(timeout=TIMEOUT) as client:
            response = await self._send(client, body)
            try:
                async for line in response.aiter_lines():
                    delta = _sse_delta(line)
                    if delta:
                        text += delta
                        yield AnswerChunk(text=delta)
            finally:
                await response.aclose()
        yield AnswerChunk(citations=cited(text, passages))

    async def _send(self, client: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
        """The streaming response, retrying connection failures and 429/5xx before any token."""
        request = client.build_request("POST", self.url, json=body, headers=self.headers)
        for attempt in range(1, CONNECT_ATTEMPTS + 1):
            try:
                response = await client.send(request, stream=True)
            except httpx.TransportError as exc:
                error = f"cannot reach {self.url}: {exc!r}"
            else:
                if response.status_code == 200:
                    return response
                detail = (await response.aread())[:300].decode(errors="replace")
                await response.aclose()
                error = f"{self.url} answered {response.status_code}: {detail}"
                if response.status_code != 429 and response.status_code < 500:
                    raise ProviderUnavailable(error)
            if attempt < CONNECT_ATTEMPTS:
                logger.warning("LLM request failed (attempt %d): %s", attempt, error)
                await asyncio.sleep(0.5 * 2 ** (attempt - 1))
        raise ProviderUnavailable(error)
