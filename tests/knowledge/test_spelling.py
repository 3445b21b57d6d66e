"""Misspelt question words corrected to the knowledge base's own (apps/knowledge/spelling.py): the
rule on a vocabulary made by hand, the vocabulary read from Postgres, and what a customer sees."""

import uuid

import pytest
from asgiref.sync import sync_to_async
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.knowledge.demo import demo_knowledge_base_load
from apps.knowledge.ingestion import documents_index_inline
from apps.knowledge.models import KnowledgeBase
from apps.knowledge.retrieval import query_correct, search
from apps.knowledge.services import document_upsert
from apps.knowledge.spelling import text_correct, vocabulary_make, word_correct
from tests.support.sockets import ask

VOCABULARY = vocabulary_make({
    "tracking": 5, "refund": 4, "receive": 3, "delivery": 6, "address": 2, "klarna": 2, "order": 9,
    "page": 3, "return": 7, "sofa": 2, "dust": 3, "duvets": 1, "out": 8, "payment": 4,
})


def test_a_word_english_does_not_know_is_corrected_to_the_knowledge_base_word_two_edits_away():
    assert [word_correct(w, VOCABULARY) for w in ("trackng", "refnd", "delivary", "paymnet")] == [
        "tracking", "refund", "delivery", "payment"]
    # A swap of two letters is one edit (optimal string alignment).
    assert word_correct("retrun", VOCABULARY) == "return"


def test_a_word_english_uses_is_corrected_only_one_edit_away_and_to_a_more_common_word():
    # Frequent typos wordfreq has seen: one edit from the help center's word.
    assert (word_correct("recieve", VOCABULARY), word_correct("adress", VOCABULARY)) == ("receive", "address")
    # "duvet" (Zipf 2.99) is one edit from "duvets", which English uses less: kept as written.
    assert word_correct("duvet", VOCABULARY) is None
    # Rare words of their own, near no word of the knowledge base, stay: novelty still sees them.
    assert [word_correct(w, VOCABULARY) for w in ("engrave", "monogramming")] == [None, None]


def test_words_of_the_knowledge_base_common_words_and_short_words_are_never_corrected():
    assert word_correct("klarna", VOCABULARY) is None  # the help center's own (wordfreq: 1.57)
    assert word_correct("colour", VOCABULARY) is None  # common English, not in the vocabulary
    # Four letters: one edit reaches several words ("aout": out or about); never guessed.
    assert [word_correct(w, VOCABULARY) for w in ("ordr", "aout", "duvt")] == [None, None, None]


def test_a_nearer_common_english_word_wins_over_the_knowledge_base_word():
    # "page" is two edits from "pakage", "package" one: the customer means the package.
    assert word_correct("pakage", VOCABULARY) == "package"


def test_names_and_acronyms_in_a_sentence_are_kept_as_written():
    text = "wheres my pakage? Trackng says the Alder chair left, ADRESS unknown. Recieve it when"
    assert text_correct(text, VOCABULARY) == (
        "wheres my package? tracking says the Alder chair left, ADRESS unknown. receive it when")


@pytest.mark.django_db
def test_the_vocabulary_is_the_knowledge_bases_words_read_again_when_a_document_is_added(kb):
    def add(name, text):
        doc, _ = document_upsert(kb=kb, external_id=name, filename=f"{name}.md", data=text.encode())
        documents_index_inline([doc])

    add("a", "# Plants\n\nWater the ferns weekly.")
    # "watr": four letters, never guessed.
    assert query_correct(kb.pk, "how often do I watr the fernns") == "how often do I watr the ferns"
    assert query_correct(kb.pk, "where is my parcle") == "where is my parcle"  # no such word yet
    add("b", "# Post\n\nYour parcel leaves in two days.")
    assert query_correct(kb.pk, "where is my parcle") == "where is my parcel"
    # One search reads the index version once, for the vocabulary and the term statistics alike
    # (every answer's path): the corrected word is searched and found.
    with CaptureQueriesContext(connection) as queries:
        found = search(kb_slug=kb.slug, query="when does my parcle leave", mode="fulltext")
    assert [p.title for p in found] == ["Post"]
    assert sum("max(indexed_at)" in q["sql"] for q in queries.captured_queries) == 1


@pytest.mark.django_db
def test_a_chinese_knowledge_base_is_searched_as_written(monkeypatch):
    import apps.knowledge.retrieval as retrieval

    slug = demo_knowledge_base_load(language="zh-hans", slug="spelling-zh").slug
    asked = []
    monkeypatch.setattr(retrieval, "query_correct", lambda kb_id, query: asked.append(query) or query)
    assert search(kb_slug=slug, query="退货 trackng", k=3)
    assert asked == []
    KnowledgeBase.objects.filter(slug=slug).delete()


@pytest.mark.django_db
def test_a_misspelt_question_finds_what_the_correct_one_finds(demo_kb):
    def first(text):
        found = search(kb_slug=demo_kb, query=text, k=3, titles=True)
        return found[0].title, found[0].coverage, found[0].similarity

    assert first("when do i recieve my refnd") == first("when do i receive my refund")
    assert first("trackng number not working")[0] == "Tracking your order"


@pytest.mark.django_db(transaction=True)
async def test_a_customer_who_misspells_gets_the_article_cited_through_the_widget_socket(
    chat, customer, settings
):
    settings.ASSISTANT_TOKEN_DELAY_S = 0
    await sync_to_async(demo_knowledge_base_load)()
    socket = await chat(customer)
    end = (await ask(socket, "hw long til i recieve my refnd?"))[-1]
    assert (end["outcome"], [c["title"] for c in end["citations"]]) == ("answered", ["Refunds"])
    assert uuid.UUID(end["conversation_id"])
