import pytest

from apps.knowledge.demo import ARTICLES_DIR, demo_knowledge_base_load
from apps.knowledge.models import Chunk, Document


@pytest.mark.django_db
def test_demo_load_is_idempotent(demo_kb, django_assert_max_num_queries):
    articles = sorted(ARTICLES_DIR.glob("*.md"))
    assert 20 <= len(articles) <= 40
    before = dict(
        Document.objects.filter(knowledge_base__slug=demo_kb).values_list("external_id", "indexed_at")
    )
    chunk_ids = set(Chunk.objects.filter(knowledge_base__slug=demo_kb).values_list("id", flat=True))

    kb = demo_knowledge_base_load()

    assert kb.slug == demo_kb == "help-center"
    assert len(before) == len(articles)
    assert set(Document.objects.filter(knowledge_base=kb).values_list("status", flat=True)) == {"ready"}
    assert dict(Document.objects.filter(knowledge_base=kb).values_list("external_id", "indexed_at")) == before
    assert set(Chunk.objects.filter(knowledge_base=kb).values_list("id", flat=True)) == chunk_ids
