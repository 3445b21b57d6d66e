"""The builtin responder: sentences of the retrieved passages, cited; "don't know" otherwise."""

import pytest

from apps.assistant.providers import ProviderUnavailable, provider_get
from apps.assistant.providers.builtin import DONT_KNOW, BuiltinProvider, compose
from apps.knowledge.retrieval import Passage


def passage(doc, title, text, url=""):
    return Passage(document_id=doc, external_id=doc, title=title, url=url, snippet=text[:40], text=text,
                   heading_path="", score=1.0, similarity=0.5, chunk_id=1)


REFUNDS = passage("d1", "Refunds",
                  "Refunds take 5 business days. Contact us by email. Refunds go to the original card.",
                  url="https://help.example/refunds")
SHIPPING = passage("d2", "Shipping", "We ship worldwide. Shipping is free over 50 euros.")
UNRELATED = passage("d3", "About", "Our company was founded in 1999.")


def test_answer_cites_the_passages_that_share_words_with_the_question():
    text, citations = compose("How long do refunds take? Is shipping free?", [REFUNDS, UNRELATED, SHIPPING])

    # Only sentences that share a word with the question: "We ship worldwide." does not.
    assert text == ("Refunds take 5 business days. Refunds go to the original card. [1] "
                    "Shipping is free over 50 euros. [2]")
    assert citations == [
        {"n": 1, "document_id": "d1", "title": "Refunds", "url": "https://help.example/refunds",
         "snippet": REFUNDS.snippet},
        {"n": 2, "document_id": "d2", "title": "Shipping", "url": "", "snippet": SHIPPING.snippet},
    ]


def test_no_passage_or_no_shared_word_is_a_plain_dont_know():
    assert compose("refund?", []) == (DONT_KNOW, [])
    assert compose("Where is the moon?", [UNRELATED]) == (DONT_KNOW, [])


def test_provider_is_chosen_by_llm_provider(settings):
    assert isinstance(provider_get(), BuiltinProvider)
    settings.LLM_PROVIDER = "nope"
    with pytest.raises(ProviderUnavailable, match="Unknown LLM_PROVIDER"):
        provider_get()


def test_a_sentence_wrapped_over_lines_is_quoted_whole():
    text = ("## Gifts\n\nIf you received an item as a gift, you can return it for a\n"
            "gift card for its\nvalue. The buyer is not told.\n\n- Refunds go to the card")
    gifts = passage("d4", "Returns policy", text)
    text, _ = compose("Can I return a gift?", [gifts])
    assert text == "If you received an item as a gift, you can return it for a gift card for its value. [1]"
