"""Answer generators by LLM_PROVIDER: `builtin` (default, no model) or `openai` (any
OpenAI-compatible Chat Completions endpoint)."""

from __future__ import annotations

from django.conf import settings

from .base import AnswerChunk, Provider, ProviderUnavailable, ToolBox, ToolOutcome, Turn

__all__ = [
    "AnswerChunk", "Provider", "ProviderUnavailable", "ToolBox", "ToolOutcome", "Turn", "provider_get",
    "provider_preload",
]


def provider_get(name: str | None = None) -> Provider:
    """The provider named by LLM_PROVIDER (or `name`)."""
    name = name or settings.LLM_PROVIDER
    if name == "builtin":
        from .builtin import BuiltinProvider

        return BuiltinProvider()
    if name == "openai":
        from .openai import OpenAIProvider

        return OpenAIProvider()
    raise ProviderUnavailable(f"Unknown LLM_PROVIDER {name!r}; use builtin or openai.")


def provider_preload() -> None:
    """Import the configured provider's module now, at the web process's start: `openai`'s SDK
    takes about a second of CPU to import, and the process's first model answer imported it on
    the event loop, which served no other customer meanwhile (py-spy: a quarter of the samples
    of a fresh process's first answer, in bench/streaming.py's warm-up)."""
    if settings.LLM_PROVIDER == "openai":
        from . import openai  # noqa: F401
