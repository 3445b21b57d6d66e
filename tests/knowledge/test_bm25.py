"""Full text ranks by BM25: rare words of a question weigh more than common ones, and what a
passage covers of the question is reported for the relevance gate."""

import math

import pytest

from apps.knowledge.ingestion import documents_index_inline
from apps.knowledge.retrieval import search
from apps.knowledge.services import document_upsert

pytestmark = pytest.mark.django_db


def add(kb, doc_id, title, text):
    doc, _ = document_upsert(kb=kb, external_id=doc_id, filename=f"{doc_id}.txt", data=text.encode(),
                             title=title)
    documents_index_inline([doc])


@pytest.fixture
def notes(kb):
    for i in range(3):
        add(kb, f"common{i}", f"Error note {i}", "The error appears after an error in the error log. "
            "Restart the server after the error and check the error log again.")
    for i in range(2):
        add(kb, f"other{i}", f"Other note {i}", "Install the package and configure the listener port.")
    add(kb, "rare", "Stored procedures", "SQLCODE401 is returned by DSNXOBFC when an IN list is used "
        "inside an IF statement of a native SQL procedure.")
    return kb


def test_a_rare_word_outweighs_a_common_word_repeated(notes):
    passages = search(kb_slug=notes.slug, query="error DSNXOBFC", k=6, mode="fulltext")
    assert [p.external_id for p in passages][:1] == ["rare"]
    assert len(passages) == 4  # the three error notes follow; the other notes match no word


def test_a_word_in_over_half_the_chunks_does_not_search_on_its_own_company(notes):
    add(notes, "more", "Error note 4", "Another error.")  # "error" is now in 4 of 7 chunks
    passages = search(kb_slug=notes.slug, query="error DSNXOBFC", k=6, mode="fulltext")
    assert [p.external_id for p in passages] == ["rare"]
    assert len(search(kb_slug=notes.slug, query="error", k=10, mode="fulltext")) == 4


def test_coverage_is_the_share_of_the_question_a_passage_holds(notes):
    whole = search(kb_slug=notes.slug, query="DSNXOBFC SQLCODE401", k=1, mode="fulltext")[0]
    half = search(kb_slug=notes.slug, query="DSNXOBFC zanzibar", k=1, mode="fulltext")[0]
    assert whole.coverage == 1.0
    # "zanzibar" is in no chunk: it weighs as much as the rarest word can, and is not covered.
    known, unseen = math.log(1 + 5.5 / 1.5), math.log(1 + 6.5 / 0.5)  # df 1 and 0 of 6 chunks
    assert half.external_id == "rare" and half.coverage == round(known / (known + unseen), 4)


def test_a_document_added_after_a_search_is_found_by_its_new_words(notes):
    assert search(kb_slug=notes.slug, query="kumquat", mode="fulltext") == []
    add(notes, "fruit", "Fruit", "A kumquat is a small citrus fruit eaten whole.")
    assert [p.external_id for p in search(kb_slug=notes.slug, query="kumquat", mode="fulltext")] == ["fruit"]
