import pytest
import wordfreq

from apps.knowledge import segmentation, spelling
from apps.knowledge.embeddings import query_cache
from apps.knowledge.errors import EmbeddingMismatch, KnowledgeBaseNotFound, QueryTooLong, SearchError
from apps.knowledge.models import KnowledgeBase
from apps.knowledge.retrieval import _label_vectors, labels_warm_up, make_snippet, rrf_fuse, search
from apps.knowledge.search_cache import SearchCache, search_cache

from .test_ingestion import ingest


def test_rrf_fuses_by_reciprocal_rank():
    vector = [11, 12, 13]
    fulltext = [13, 14, 11]

    fused = rrf_fuse([(vector, 1.0), (fulltext, 1.0)], rrf_k=60)

    # 11: 1/61 + 1/63; 13: 1/63 + 1/61 (tie, seen first in vector list after 11); 12: 1/62; 14: 1/62
    assert list(fused) == [11, 13, 12, 14]
    assert fused[11] == pytest.approx(1 / 61 + 1 / 63)
    assert fused[12] == pytest.approx(1 / 62)


def test_rrf_weights_favour_a_list():
    fused = rrf_fuse([([1, 2], 1.0), ([2, 1], 0.5)], rrf_k=20)
    assert list(fused) == [1, 2]
    assert fused[1] == pytest.approx(1 / 21 + 0.5 / 22)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "mode", "title"),
    [
        ("Can I return bedding after opening it?", "hybrid", "Returns policy"),
        ("where do I find my tracking number", "hybrid", "Tracking your order"),
        ("how long is the warranty on a sofa", "hybrid", "Warranty"),
        ("do you ship to Australia", "hybrid", "International shipping"),
        ("my card payment was declined", "vector", "My payment was declined"),
        ("Klarna instalments", "fulltext", "Paying with Klarna"),
        ('"gift card" expiry', "hybrid", "Gift cards"),
    ],
)
def test_search_finds_the_article(demo_kb, query, mode, title):
    passages = search(kb_slug=demo_kb, query=query, k=3, mode=mode)
    assert passages[0].title == title


@pytest.mark.django_db
def test_passages_are_one_per_document_and_ready_to_cite(demo_kb):
    passages = search(kb_slug=demo_kb, query="refund shipping costs for a return", k=5)

    assert len(passages) == 5
    assert len({p.document_id for p in passages}) == 5
    assert [p.score for p in passages] == sorted((p.score for p in passages), reverse=True)
    first = passages[0]
    assert first.url.startswith("https://help.pebbleandpine.example/articles/")
    assert first.citation(1) == {
        "n": 1,
        "document_id": first.document_id,
        "title": first.title,
        "url": first.url,
        "snippet": first.snippet,
    }
    assert len(first.snippet) <= 241 and first.snippet.split()[0] in first.text


@pytest.mark.django_db
@pytest.mark.parametrize("query", ["", "   ", "?!...", "¿¡—…"])
def test_empty_and_punctuation_queries_return_nothing(demo_kb, query):
    assert search(kb_slug=demo_kb, query=query) == []


@pytest.mark.django_db
def test_a_10000_character_query_is_a_clear_error(demo_kb):
    with pytest.raises(QueryTooLong, match="The query is 10,000 characters long; search takes at most 2,000"):
        search(kb_slug=demo_kb, query=("refund " * 1429)[:10_000])


@pytest.mark.django_db
def test_sql_and_tsquery_syntax_in_queries_are_just_words(demo_kb):
    for query in ["'; DROP TABLE knowledge_chunk; --", "refund & | ! ( ) :*", '"unclosed phrase', "-refund"]:
        assert isinstance(search(kb_slug=demo_kb, query=query, k=3), list)


@pytest.mark.django_db
def test_an_unknown_knowledge_base_is_a_search_error():
    with pytest.raises(KnowledgeBaseNotFound) as caught:
        search(kb_slug="nope", query="refund")
    assert isinstance(caught.value, SearchError) and isinstance(caught.value, ValueError)
    assert str(caught.value) == (
        "There is no knowledge base 'nope'. Create it by ingesting documents into "
        "it (manage.py kb_ingest PATH --kb nope)."
    )


@pytest.mark.django_db
def test_query_embeddings_are_cached(demo_kb):
    query_cache.clear()
    search(kb_slug=demo_kb, query="warranty on furniture", k=3)
    search(kb_slug=demo_kb, query="warranty   on furniture", k=5)  # another search, the same question
    assert (query_cache.misses, query_cache.hits) == (1, 1)


@pytest.mark.django_db
def test_a_repeated_search_is_served_from_the_cache_in_one_read(demo_kb, django_assert_num_queries):
    first = search(kb_slug=demo_kb, query="how long is the warranty on a sofa", titles=True)

    with django_assert_num_queries(1):  # the knowledge base with its index version
        again = search(kb_slug=demo_kb, query="how  long is the warranty on a sofa", titles=True)

    assert again == first and again[0].title == "Warranty"
    assert (search_cache.misses, search_cache.hits) == (1, 1)
    again.clear()  # the caller's own list: the cached passages stay
    assert search(kb_slug=demo_kb, query="how long is the warranty on a sofa", titles=True) == first


@pytest.mark.django_db
def test_a_document_added_after_a_search_is_found_by_the_same_question(kb):
    ingest(kb, b"# Refunds\n\nWe refund within five working days.\n")
    question = "can I rent a zebra parasol for the beach"
    assert [p.title for p in search(kb_slug=kb.slug, query=question, mode="fulltext")] == []

    ingest(kb, b"# Parasol rental\n\nRent a zebra parasol for the beach by the day.\n",
           external_id="parasols", filename="parasols.md")

    assert [p.title for p in search(kb_slug=kb.slug, query=question, mode="fulltext")] == ["Parasol rental"]


@pytest.mark.django_db
def test_the_same_question_in_another_knowledge_base_is_never_served_its_passages(demo_kb, kb):
    ingest(kb, b"# Parasol rental\n\nRent a zebra parasol for the beach by the day.\n",
           external_id="parasols", filename="parasols.md")
    question = "how long is the warranty on a sofa"
    demo = search(kb_slug=demo_kb, query=question, mode="fulltext")
    assert demo and demo[0].title == "Warranty"

    other = search(kb_slug=kb.slug, query=question, mode="fulltext")

    assert "Warranty" not in [p.title for p in other]
    assert {p.document_id for p in other}.isdisjoint(p.document_id for p in demo)
    assert (search_cache.misses, search_cache.hits) == (2, 0)


@pytest.mark.django_db
def test_a_search_with_other_tuning_is_not_served_from_the_cache(demo_kb, monkeypatch):
    from apps.knowledge import retrieval

    search(kb_slug=demo_kb, query="do you ship to Australia")
    monkeypatch.setattr(retrieval, "VECTOR_WEIGHT", 0.0)
    search(kb_slug=demo_kb, query="do you ship to Australia")

    assert (search_cache.misses, search_cache.hits) == (2, 0)


def test_the_cache_keeps_its_newest_searches_within_its_size():
    cache = SearchCache(size=2)
    for key in ("a", "b", "a", "c"):  # "a" used again: "b" is the oldest when "c" comes
        if cache.get(key) is None:
            cache.put(key, [key])

    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (["a"], None, ["c"])
    off = SearchCache(size=0)
    off.put("a", ["a"])
    assert off.get("a") is None


@pytest.mark.django_db
def test_unrelated_questions_find_nothing_above_the_threshold(demo_kb):
    assert search(kb_slug=demo_kb, query="quantum chromodynamics lattice gauge theory") == []
    assert search(kb_slug=demo_kb, query="hello") == []


@pytest.mark.django_db
def test_a_knowledge_base_of_another_model_is_refused(demo_kb):
    KnowledgeBase.objects.filter(slug=demo_kb).update(
        embedding_model="text-embedding-3-small", embedding_provider="openai"
    )
    with pytest.raises(EmbeddingMismatch, match=r"Run `python manage.py kb_reembed --kb help-center`"):
        search(kb_slug=demo_kb, query="refund")


def test_snippet_picks_the_sentence_matching_the_query():
    text = "Orders ship in two days. Refunds take five working days. Gift cards last two years."
    assert make_snippet(text, "when do refunds arrive", limit=40) == "Refunds take five working days. Gift…"


@pytest.mark.django_db
@pytest.mark.parametrize(("mode", "k"), [("hybrid", 3), ("vector", 1)])
def test_a_customers_also_ask_list_finds_its_article_but_never_speaks_for_it(demo_kb, mode, k):
    # "my order arrived broken" is a line of the Damaged article's "Customers also ask" list: the
    # list's chunk is the best match, yet the passage is the article's own text. With one vector
    # candidate the list is the only chunk of the article searched: its first other one is read.
    question = "my order arrived broken"
    top = search(kb_slug=demo_kb, query=question, k=k, mode=mode, titles=True, candidates=1)[0]
    assert top.external_id == "demo:damaged-or-faulty-items"
    assert "Customers also ask" not in top.heading_path
    assert question not in top.text and question not in top.snippet
    assert top.text.startswith("We are sorry when something arrives broken.")
    assert top.sentence_similarity == 1.0  # the list's line itself


@pytest.mark.django_db
@pytest.mark.parametrize("question", ["Can I return shoes after two weeks?", "how do I reset my password"])
def test_after_the_warm_up_a_question_embeds_no_label_of_its_own(demo_kb, question):
    _label_vectors.clear()
    added = labels_warm_up(kb_slug=demo_kb, limit=100_000)
    assert added == len(_label_vectors) > 100
    passages = search(kb_slug=demo_kb, query=question, titles=True)
    assert passages and passages[0].sentence_similarity is not None
    assert len(_label_vectors) == added  # every title, heading, sentence and chunk it compared was there


@pytest.mark.django_db
def test_after_the_warm_up_a_misspelt_question_loads_no_word_list(demo_kb):
    spelling._english.cache_clear()
    search_cache.clear()
    labels_warm_up(kb_slug=demo_kb, limit=10)
    loaded = spelling._english.cache_info()

    # "parsel" is corrected to the help center's "parcel", beside the common English words.
    passages = search(kb_slug=demo_kb, query="wheres my parsel", titles=True)

    used = spelling._english.cache_info()
    assert loaded.currsize == 1 and used.misses == loaded.misses and used.hits > loaded.hits
    assert passages


@pytest.mark.django_db
def test_the_warm_up_of_a_chinese_help_center_loads_jieba_and_the_chinese_word_list(demo_kb_zh, monkeypatch):
    monkeypatch.setattr(segmentation, "_jieba", None)
    monkeypatch.setattr(wordfreq, "_wf_cache", {})  # its per-word cache would skip the list
    lists = []
    read = wordfreq.get_frequency_dict

    def reading(lang, wordlist="best"):
        lists.append(lang)
        return read(lang, wordlist)

    monkeypatch.setattr(wordfreq, "get_frequency_dict", reading)
    labels_warm_up(kb_slug=demo_kb_zh, limit=10)
    assert segmentation._jieba is not None
    assert "zh" in lists


@pytest.mark.django_db
def test_the_warm_up_stays_within_its_limit(demo_kb):
    _label_vectors.clear()
    assert labels_warm_up(kb_slug=demo_kb, limit=50) == len(_label_vectors) <= 50
    assert labels_warm_up(kb_slug="no-such-kb", limit=50) == 0
