from io import StringIO

import pytest
from django.core.management import call_command

from apps.knowledge.models import Chunk, Document
from apps.knowledge.services import document_upsert, knowledge_base_get_or_create
from apps.knowledge.tasks import document_index_task


@pytest.mark.e2e
def test_the_index_task_runs_on_a_real_worker_and_is_idempotent(celery_worker_live):
    kb = knowledge_base_get_or_create(slug="tasks")
    doc, needs = document_upsert(
        kb=kb, external_id="a", filename="a.md", data=b"# Warranty\n\nFurniture is covered for five years.\n"
    )
    assert needs is True

    assert document_index_task.delay(str(doc.pk)).get(timeout=120) == "ready"
    chunk_ids = list(Chunk.objects.filter(document=doc).values_list("id", flat=True))
    assert document_index_task.delay(str(doc.pk)).get(timeout=120) == "ready"

    assert list(Chunk.objects.filter(document=doc).values_list("id", flat=True)) == chunk_ids
    assert len(chunk_ids) == 1


@pytest.mark.e2e
def test_kb_ingest_hands_work_to_the_worker_and_follows_progress(celery_worker_live, tmp_path):
    (tmp_path / "one.md").write_text("# One\n\nReturns are free from the UK.\n")
    (tmp_path / "two.txt").write_text("Express delivery arrives the next working day.\n")
    out = StringIO()

    call_command("kb_ingest", str(tmp_path), "--kb", "worker", stdout=out)

    lines = out.getvalue().splitlines()
    assert lines[0] == "2 files: 2 to index, 0 unchanged, 0 rejected"
    assert lines[1] == "indexing 2 documents on the Celery worker…"
    assert lines[-2] == "  progress: 2/2 documents, 2/2 chunks embedded"
    assert lines[-1] == "done: 2 ready, 0 failed (knowledge base 'worker')"
    docs = Document.objects.filter(knowledge_base__slug="worker")
    assert sorted(docs.values_list("title", "status")) == [("One", "ready"), ("Two", "ready")]
