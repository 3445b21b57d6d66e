"""Hybrid fusion (issue 16): vector and full-text scores, min-max normalised per list, combined."""

import pytest

from apps.knowledge import retrieval
from apps.knowledge.retrieval import convex_fuse, search


def test_convex_fuse_normalises_each_list_and_sums_the_weighted_shares():
    vector = {11: 0.80, 12: 0.70, 13: 0.40}  # cosine: 11 -> 1, 12 -> 0.75, 13 -> 0
    fulltext = {13: 9.0, 14: 5.0, 11: 1.0}  # BM25: 13 -> 1, 14 -> 0.5, 11 -> 0

    fused = convex_fuse([(vector, 0.5), (fulltext, 0.5)])

    assert list(fused) == [11, 13, 12, 14]  # 11 and 13 tie at 0.5: first seen (the vector list) first
    assert fused == pytest.approx({11: 0.5, 13: 0.5, 12: 0.375, 14: 0.25})


def test_convex_fuse_keeps_how_far_ahead_a_list_leader_is():
    # Ranks alone (RRF) put 2 first: second in both lists. Scores show the vector list is sure
    # of 1 (and the full-text list of 4), and that 2 is barely ahead of the rest in either.
    vector = {1: 0.9, 2: 0.4, 3: 0.38, 5: 0.36, 4: 0.35}
    fulltext = {4: 10.0, 2: 5.0, 5: 4.9, 3: 4.8, 1: 4.7}

    fused = convex_fuse([(vector, 0.5), (fulltext, 0.5)])
    ranked = retrieval.rrf_fuse([(list(vector), 1.0), (list(fulltext), 1.0)], rrf_k=retrieval.RRF_K)

    assert list(fused)[:3] == [1, 4, 2]
    assert list(ranked)[0] == 2


@pytest.mark.parametrize("scores", [{7: 3.2}, {7: 0.5, 8: 0.5}])
def test_a_list_of_one_or_of_equal_scores_gives_full_marks(scores):
    assert convex_fuse([(scores, 0.5), ({}, 0.5)]) == dict.fromkeys(scores, 0.5)


def test_no_lists_fuse_to_nothing():
    assert convex_fuse([]) == {}
    assert convex_fuse([({}, 0.5), ({}, 0.5)]) == {}


def test_the_default_is_convex_fusion_with_equal_weights():
    assert (retrieval.FUSION, retrieval.VECTOR_WEIGHT, retrieval.FULLTEXT_WEIGHT) == ("convex", 0.5, 0.5)
    assert retrieval.CANDIDATES == 50


@pytest.mark.django_db
@pytest.mark.parametrize("fusion", ["convex", "rrf"])
def test_both_fusions_find_the_article(demo_kb, fusion):
    passages = search(kb_slug=demo_kb, query="Can I return bedding after opening it?", k=3, fusion=fusion)

    assert passages[0].title == "Returns policy"
    assert [p.score for p in passages] == sorted((p.score for p in passages), reverse=True)


@pytest.mark.django_db
def test_convex_scores_are_shares_of_the_two_lists(demo_kb):
    passages = search(kb_slug=demo_kb, query="Klarna instalments", k=5)

    assert passages[0].title == "Paying with Klarna"
    # Each list gives at most its weight (its leader), at least 0 (its last candidate or absent).
    assert all(0.0 <= p.score <= 1.0 for p in passages)
    assert passages[0].score > 0.5  # both lists rank its chunk near their best


@pytest.mark.django_db
@pytest.mark.parametrize("mode", ["vector", "fulltext"])
def test_one_list_modes_keep_that_list_order(demo_kb, mode):
    passages = search(kb_slug=demo_kb, query="how long does a refund take", k=5, mode=mode)

    assert passages[0].score == 0.5  # the list's best, at its weight
    assert [p.score for p in passages] == sorted((p.score for p in passages), reverse=True)


@pytest.mark.django_db
def test_a_chinese_knowledge_base_keeps_rrf_by_default(demo_kb_zh):
    query = "退款一般几天能到账"
    by_default = search(kb_slug=demo_kb_zh, query=query, k=3)

    assert by_default == search(kb_slug=demo_kb_zh, query=query, k=3, fusion="rrf")
    assert by_default != search(kb_slug=demo_kb_zh, query=query, k=3, fusion="convex")
    assert by_default[0].title == "退款" and "5 个工作日" in by_default[0].text
