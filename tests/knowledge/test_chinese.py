"""Chinese knowledge bases: jieba-segmented full text in the tsvector (a word inside a longer
phrase is found), the Chinese embedder chosen per knowledge base, English chunks unchanged."""

import pytest
from django.db import connection

from apps.knowledge.e5_embedder import E5_MODEL
from apps.knowledge.embeddings import embedder_for_kb
from apps.knowledge.ingestion import documents_index_inline
from apps.knowledge.languages import language_normalise
from apps.knowledge.models import Chunk
from apps.knowledge.retrieval import search
from apps.knowledge.segmentation import content_words, segment
from apps.knowledge.services import document_upsert, knowledge_base_get_or_create

ARTICLES = {
    "returns-policy": "# 退货政策\n\n大部分商品在签收后30天内可以无理由退货并全额退款。"
                      "商品必须未经使用并保留原包装。",
    "gift-cards": "# 礼品卡\n\n礼品卡自购买之日起24个月内有效。您可以在礼品卡页面查询余额。",
    "payment": "# 付款方式\n\n我们接受信用卡、借记卡和PayPal。",
    "shipping": "# 配送方式与运费\n\n标准配送需要3到5个工作日，订单满50英镑免运费。",
}


@pytest.fixture
def zh_kb(db):
    kb = knowledge_base_get_or_create(slug="zh-test", language="zh-CN")
    docs = [document_upsert(kb=kb, external_id=f"demo:{slug}", filename=f"{slug}.md", data=text.encode(),
                            source_url=f"https://help.example/zh-hans/articles/{slug}")[0]
            for slug, text in ARTICLES.items()]
    documents_index_inline(docs)
    return kb


def test_segmentation_cuts_words_and_the_words_inside_them():
    # Search mode: 信用卡 also yields 信用, so a question saying 信用 finds it.
    assert segment("信用卡账单：30天内") == "信用 信用卡 账单 30 天内"
    assert content_words("请问怎么退货？") == ["退货"]


def test_languages_are_normalised():
    assert [language_normalise(c) for c in ("zh", "zh-CN", "zh_Hans", "en-GB", "", "fr")] == [
        "zh-hans", "zh-hans", "zh-hans", "en", "en", "fr"]


def test_a_chinese_kb_records_its_language_and_the_chinese_model(zh_kb):
    assert (zh_kb.language, zh_kb.embedding_provider, zh_kb.embedding_model) == ("zh-hans", "local", E5_MODEL)
    assert embedder_for_kb(zh_kb).model == E5_MODEL
    english = knowledge_base_get_or_create(slug="en-test")
    assert (english.language, english.embedding_model) == ("en", "all-MiniLM-L6-v2")
    # Each model is one object per process, whichever knowledge base asks.
    assert embedder_for_kb(english) is embedder_for_kb(knowledge_base_get_or_create(slug="en-test-2"))


def test_fulltext_finds_a_word_inside_a_longer_phrase(zh_kb):
    # The article says 信用卡 (credit card); the question's 信用 is inside that word.
    hits = search(kb_slug="zh-test", query="信用", mode="fulltext")
    assert [p.external_id for p in hits] == ["demo:payment"]
    hits = search(kb_slug="zh-test", query="退款政策", mode="fulltext")
    assert [p.external_id for p in hits] == ["demo:returns-policy"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM knowledge_chunk WHERE knowledge_base_id = %s"
                       " AND search_vector @@ to_tsquery('simple', '余额')", [zh_kb.pk])
        assert cursor.fetchone()[0] == 1


def test_hybrid_search_answers_a_chinese_question_with_signals(zh_kb):
    hits = search(kb_slug="zh-test", query="礼品卡能用多久？", titles=True)
    assert hits[0].external_id == "demo:gift-cards"
    assert hits[0].url.endswith("/articles/gift-cards")
    assert hits[0].sentence_similarity is not None and hits[0].coverage > 0
    assert "24个月" in hits[0].snippet


def test_english_chunks_keep_the_english_tsvector(kb):
    doc, _ = document_upsert(kb=kb, external_id="e1", filename="e.md",
                             data=b"# Returns\n\nYou can return running shoes within 30 days.")
    documents_index_inline([doc])
    chunk = Chunk.objects.get(document=doc)
    assert chunk.search_text == ""
    with connection.cursor() as cursor:
        cursor.execute("SELECT search_vector::text FROM knowledge_chunk WHERE id = %s", [chunk.pk])
        assert "'run':" in cursor.fetchone()[0]  # stemmed by the english config, as before
