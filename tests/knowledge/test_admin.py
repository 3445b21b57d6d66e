import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from apps.knowledge.models import Document


@pytest.mark.django_db
def test_admin_upload_stores_documents_and_queues_indexing(admin_client, django_capture_on_commit_callbacks):
    url = reverse("admin:knowledge_document_upload")
    assert admin_client.get(url).status_code == 200
    files = [
        SimpleUploadedFile("returns.md", b"# Returns\n\nReturns are free.\n"),
        SimpleUploadedFile("setup.exe", b"MZ\x90\x00"),
    ]

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = admin_client.post(url, {"files": files})

    assert response.status_code == 302
    assert response["Location"] == reverse("admin:knowledge_document_changelist")
    docs = Document.objects.filter(knowledge_base__slug="help-center", external_id__startswith="upload:")
    assert sorted(docs.values_list("filename", "status")) == [
        ("returns.md", "pending"), ("setup.exe", "failed"),
    ]
    assert len(callbacks) == 1  # one indexing task, for the supported file

    changelist = admin_client.get(reverse("admin:knowledge_document_changelist") + "?q=upload")
    assert changelist.status_code == 200
    assert b"Upload documents" in changelist.content
    assert b"0/0 chunks" in changelist.content
    assert b"file type &#x27;.exe&#x27; is not supported" in changelist.content


@pytest.mark.django_db
def test_admin_knowledge_base_embedding_model_is_read_only(admin_client, kb):
    response = admin_client.get(reverse("admin:knowledge_knowledgebase_change", args=[kb.pk]))
    assert response.status_code == 200
    assert b'name="embedding_model"' not in response.content
    assert b"all-MiniLM-L6-v2" in response.content
