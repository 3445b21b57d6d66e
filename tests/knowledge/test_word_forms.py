"""Everyday spellings of words the help center writes otherwise (apps/knowledge/spelling.py): a
hyphenated word written solid ("preorder"), and a contraction without its apostrophe ("whats")."""

import pytest

from apps.knowledge.retrieval import query_correct
from apps.knowledge.spelling import contraction_of, text_correct, vocabulary_make, word_correct

VOCABULARY = vocabulary_make({
    "pre-order": 3, "order": 9, "pre": 3, "sign-in": 5, "sign": 5, "in": 20, "e-mail": 1, "email": 6,
    "mail": 1, "drop-off": 2, "drop": 2, "off": 4,
})


def test_a_hyphenated_word_of_the_knowledge_base_written_solid_is_written_as_the_help_center_does():
    assert [word_correct(w, VOCABULARY) for w in ("preorder", "signin", "dropoff")] == [
        "pre-order", "sign-in", "drop-off"]
    # Whatever its frequency ("preorder" has Zipf 3.03, over COMMON_ZIPF): the same word, no guess.
    assert text_correct("Preorder a sofa, then signin to track it", VOCABULARY) == (
        "pre-order a sofa, then sign-in to track it")


def test_a_short_word_is_never_joined_to_a_hyphenated_one():
    # "ow.ly" in a pasted link is no "o-w" (TechQA): under MIN_LETTERS letters, kept as written.
    assert word_correct("ow", vocabulary_make({"o-w": 1, "o": 1, "w": 1})) is None


def test_a_solid_word_the_knowledge_base_uses_itself_is_kept():
    # The help center writes both "email" and "e-mail": the customer's spelling is its own.
    assert word_correct("email", VOCABULARY) is None
    assert "email" not in VOCABULARY.joined


def test_a_contraction_without_its_apostrophe_is_read_as_the_contraction():
    assert [contraction_of(w) for w in ("whats", "isnt", "havent", "wont", "wheres", "youre")] == [
        "what's", "isn't", "haven't", "won't", "where's", "you're"]


def test_words_that_only_look_like_contractions_are_kept():
    # English uses "shed", "well", "were" more than "she'd", "we'll", "we're"; plurals and
    # uncommon words have no contraction ("cushions", "engrave", "sheets").
    assert [contraction_of(w) for w in ("shed", "well", "were", "cushions", "engrave", "sheets")] == [
        None, None, None, None, None, None]


@pytest.mark.django_db
def test_the_demo_help_centers_pre_order_is_found_for_preorder(demo_kb):
    assert query_correct(_kb_id(demo_kb), "why hasnt my preorder shipped") == (
        "why hasnt my pre-order shipped")


def _kb_id(slug):
    from apps.knowledge.models import KnowledgeBase

    return KnowledgeBase.objects.get(slug=slug).pk
