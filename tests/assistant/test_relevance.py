"""The relevance gate (apps/assistant/relevance.py): its rule on its own, its calibration on the
demo help center (the old article-worded questions and the tune half of the customers'-words dev
set), and what a customer sees through the chat socket."""

import hashlib
import json
import re
import uuid
from dataclasses import replace
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async

from apps.assistant.evalsets import load_questions
from apps.assistant.grounding import SEARCH_K, grounding_from
from apps.assistant.phrases import DONT_KNOW
from apps.assistant.relevance import EN_GATE, ZH_GATE, article_score, relevance_judge
from apps.knowledge.demo import demo_knowledge_base_load
from apps.knowledge.retrieval import Passage, search
from tests.support.sockets import ask

QUESTIONS = Path(__file__).resolve().parents[2] / "apps" / "assistant"


def passage(doc, similarity, sentence=0.0, heading=0.0, title=0.0, coverage=0.0, novelty=0.0):
    return Passage(document_id=doc, external_id=doc, title=doc, url="", snippet="", text="", heading_path="",
                   score=1.0, similarity=similarity, chunk_id=1, coverage=coverage, doc_similarity=similarity,
                   title_similarity=title, heading_similarity=heading, sentence_similarity=sentence,
                   novelty=novelty)


def load(name):
    return [json.loads(line) for line in (QUESTIONS / name).read_text().splitlines() if line.strip()]


def grounded(demo_kb, text):
    # What ground() decides, searched in the test's own connection (ground() takes a fresh one).
    return grounding_from(search(kb_slug=demo_kb, query=text, k=SEARCH_K, titles=True), question=text)


def test_no_passage_is_handed_over():
    judged = relevance_judge(passages=[])
    assert judged.as_dict() == {"relevant": False, "similarity": 0.0, "coverage": 0.0, "margin": 0.0,
                                "score": 0.0, "decision": "handover", "title_similarity": 0.0,
                                "novelty": 0.0}


def test_meaning_weighs_three_times_the_words():
    # (chunk + sentence + 0.5 heading + 0.5 title + 0.9 coverage) / 3.9
    assert round(article_score(passage("a", 0.5, 0.6, 0.4, 0.3, 0.5)), 4) == round(1.9 / 3.9, 4)
    # A paraphrase sharing no word with the article, near in meaning, beats an article holding
    # every word of the question but far from it in meaning.
    words, meaning = passage("a", 0.3, 0.3, coverage=1.0), passage("b", 0.6, 0.6, 0.5, 0.5)
    assert article_score(meaning) > article_score(words)


def test_one_article_standing_out_is_answered_two_alike_are_asked_back_nothing_is_handed_over():
    clear = relevance_judge(passages=[passage("b", 0.45, 0.45), passage("a", 0.6, 0.6, 0.5, 0.5)])
    # Articles are ranked by their own score, not by retrieval's order.
    assert (clear.decision, clear.relevant, clear.score) == ("answer", True, round(1.7 / 3.9, 4))
    assert clear.margin == round((1.7 - 0.9) / 3.9, 4)

    alike = relevance_judge(passages=[passage("a", 0.45, 0.45, 0.5, 0.5), passage("b", 0.45, 0.45, 0.5, 0.45),
                                      passage("c", 0.44, 0.44, 0.5, 0.4), passage("d", 0.2, 0.2)])
    assert (alike.decision, alike.relevant, alike.candidates) == ("clarify", True, (0, 1, 2))

    low = relevance_judge(passages=[passage("a", 0.35, 0.35)])
    assert (low.decision, low.relevant, low.candidates) == ("handover", False, ())


def test_two_articles_tied_are_asked_back_however_close_they_are():
    tied = relevance_judge(passages=[passage("a", 0.6, 0.6, 0.5, 0.5), passage("b", 0.6, 0.6, 0.5, 0.5)])
    assert (tied.decision, tied.margin, tied.candidates) == ("clarify", 0.0, (0, 1))


def test_an_article_holding_the_closest_sentence_close_behind_the_first_makes_a_question_back():
    # a: 1.5 / 3.9 = 0.385 ranks first; b: 1.3 / 3.9 = 0.333, 0.051 behind (within 0.08), holds the
    # question's closest sentence (0.6 > 0.5). Without the rival rule a would be answered.
    rivals = [passage("a", 0.5, 0.5, 0.5, 0.5), passage("b", 0.4, 0.6, 0.3, 0.3)]
    judged = relevance_judge(passages=rivals)
    # b is outside the suggestion band (0.05) and offered all the same: the two signals disagree.
    assert (judged.decision, judged.margin, judged.candidates) == ("clarify", round(0.2 / 3.9, 4), (0, 1))
    assert relevance_judge(passages=rivals, gate=replace(EN_GATE, rival_band=0.0)).decision == "answer"
    # The closest sentence in the first article too: no rival.
    agreed = [passage("a", 0.5, 0.5, 0.5, 0.5), passage("b", 0.4, 0.45, 0.3, 0.3)]
    assert relevance_judge(passages=agreed).decision == "answer"
    # The article with the closest sentence too far behind: b 1.1 / 3.9, 0.103 behind (> 0.08).
    far = [passage("a", 0.5, 0.5, 0.5, 0.5), passage("b", 0.3, 0.6, 0.2, 0.2)]
    assert relevance_judge(passages=far).decision == "answer"
    # A first article scoring 0.60 or more is close to the question as a whole: answered.
    # a: 2.45 / 3.9 = 0.628, b: 2.21 / 3.9 = 0.567 with the closer sentence (0.75 > 0.7).
    sure = [passage("a", 0.7, 0.7, 0.6, 0.6, 0.5), passage("b", 0.6, 0.75, 0.5, 0.5, 0.4)]
    assert relevance_judge(passages=sure).decision == "answer"
    # Chinese (multilingual-e5-small's compressed cosines) has the rule off.
    assert ZH_GATE.rival_band == 0.0


def test_a_question_in_words_the_help_center_never_uses_is_not_answered_from_its_nearest_article():
    # The same article, the same cosines: only the share of uncommon words it never uses differs.
    # a: 1.5 / 3.9, b: 1.46 / 3.9; score - 0.2 novelty + 2 margin against 0.40, floor 0.32.
    near = [passage("a", 0.55, 0.6, 0.4, 0.3), passage("b", 0.52, 0.59, 0.4, 0.3)]
    decisions = [relevance_judge(passages=[replace(p, novelty=n) for p in near]).decision
                 for n in (0, 0.2, 0.5)]
    assert decisions == ["answer", "clarify", "handover"]


@pytest.mark.django_db
def test_novelty_counts_uncommon_words_the_help_center_never_uses(demo_kb):
    def novelty(text):
        return search(kb_slug=demo_kb, query=text, k=SEARCH_K, titles=True)[0].novelty

    # Common words, words of the help center, and a typo wordfreq does not know count nothing.
    for paraphrase in ("can I get my money back", "where is my parcel", "my payment got declined",
                       "the trackng page is empty"):
        assert novelty(paraphrase) == 0.0, paraphrase
    # "engrave" is uncommon in English and no article uses it; nor "thread" or "sheets".
    assert novelty("do you engrave") == 1.0
    assert novelty("what thread count are your cotton sheets") == 0.5284
    # A contraction typed without its apostrophe is an everyday word ("whats" weighed 3.1 and was
    # novel); a hyphenated help-center word written solid is the help center's ("pre-order").
    assert novelty("whats your return policy") == 0.0
    assert novelty("why havent my preorder items shipped") == 0.0


def test_below_the_similarity_floor_nothing_else_counts():
    # Words and title in common ("Australia") but no chunk or sentence near in meaning.
    judged = relevance_judge(passages=[passage("a", 0.29, 0.29, heading=0.9, title=0.9, coverage=1.0)])
    assert judged.decision == "handover"


@pytest.mark.django_db
def test_the_old_article_worded_questions_on_the_help_center(demo_kb):
    answered = [q["_id"] for q in load("offtopic_questions.jsonl")
                if grounded(demo_kb, q["text"]).decision != "handover"]
    # OFF40 "What is the stock price of Apple today?" reads like a question about stock (issue 16);
    # OFF28 "How do I file my income tax return?" is asked back (Refunds, How to return an item)
    # since e5's second opinion (retrieval.py SECOND_OPINION_MODEL) and the floor at 0.32.
    assert answered == ["OFF28", "OFF40"]
    tax = next(q["text"] for q in load("offtopic_questions.jsonl") if q["_id"] == "OFF28")
    assert grounded(demo_kb, tax).decision == "clarify"  # asked back, never answered
    right = 0
    for q in load("inscope_questions.jsonl"):
        g = grounded(demo_kb, q["text"])
        right += g.decision == "answer" and g.passages[0].external_id == q["article"]
    # issue 11's gate: 28 of 30. "My lamp arrived broken, what now?" is asked back, offering
    # Damaged or faulty items first and Warranty (its closest sentence) second: the rival rule.
    assert right == 29


@pytest.mark.django_db
def test_the_tune_half_of_the_customers_words_dev_set(demo_kb):
    """The figures the constants were chosen on (relevance.py's docstring)."""
    outcomes = {"right": 0, "wrong": 0, "clarify": 0, "handover": 0}
    for q in load_questions("demo_inscope", half="tune"):
        g = grounded(demo_kb, q["text"])
        if g.decision == "answer":
            outcomes["right" if g.passages[0].external_id in q["articles"] else "wrong"] += 1
        else:
            outcomes[g.decision] += 1
            assert (g.decision == "clarify") == bool(g.suggestions) and len(g.suggestions) <= 3
    # MiniLM alone (SECOND_OPINION_MODEL "", floor 0.34): right 107, wrong 0, clarify 9, handover 4.
    # Tuned at right 110, clarify 7, handover 3. The int8 model's kernels differ by CPU (an AMD
    # EPYC with AVX-512 VNNI asks one of those 110 back: right 109, clarify 8), so one question
    # at a threshold may move between machines; none may be answered from the wrong article.
    assert outcomes in (
        {"right": 110, "wrong": 0, "clarify": 7, "handover": 3},  # the machine it was tuned on
        {"right": 109, "wrong": 0, "clarify": 8, "handover": 3},  # AMD EPYC, AVX-512 VNNI
    )
    off = [grounded(demo_kb, q["text"]).decision for q in load_questions("demo_offtopic", half="tune")]
    assert (len(off), off.count("handover"), off.count("clarify")) == (84, 80, 1)


def misspelt(text):
    """`text` with one word of five letters or more misspelt, chosen by its sha1: two letters
    swapped, one dropped, or one doubled (the typos customers make)."""
    words = list(re.finditer(r"[a-z]{5,}", text))
    if not words:
        return text
    h = int(hashlib.sha1(text.encode()).hexdigest(), 16)
    found = words[h % len(words)]
    w, i = found.group(0), 1 + (h // 7) % (len(found.group(0)) - 2)
    w = [w[:i] + w[i + 1] + w[i] + w[i + 2:], w[:i] + w[i + 1:], w[:i] + w[i] + w[i:]][(h // 97) % 3]
    return text[: found.start()] + w + text[found.end():]


@pytest.mark.django_db
def test_the_tune_half_with_a_misspelt_word_in_every_question(demo_kb, monkeypatch):
    """spelling.py's figures (relevance.py's docstring): the tune half, one word of each question
    misspelt, with and without correcting it to the help center's words."""
    import apps.knowledge.retrieval as retrieval

    assert misspelt("where is my parcel") == "wehre is my parcel"

    def outcomes():
        counts = {"right": 0, "wrong": 0, "other": 0}
        for q in load_questions("demo_inscope", half="tune"):
            g = grounded(demo_kb, misspelt(q["text"]))
            right = g.passages[0].external_id in q["articles"] if g.passages else False
            counts["other" if g.decision != "answer" else "right" if right else "wrong"] += 1
        off = [grounded(demo_kb, misspelt(q["text"])).decision
               for q in load_questions("demo_offtopic", half="tune")]
        return counts, off.count("handover")

    # MiniLM alone (before e5's second opinion): 100 / 0 / 20, 81; without spelling 74 / 1 / 45, 83.
    # (104 and 81 with e5 reading every candidate chunk; 103 and 82 with its LABEL_CHUNKS closest.)
    assert outcomes() == ({"right": 103, "wrong": 0, "other": 17}, 80)
    monkeypatch.setattr(retrieval, "SPELLING", False)
    assert outcomes() == ({"right": 82, "wrong": 3, "other": 35}, 82)


@pytest.mark.django_db(transaction=True)
async def test_an_off_topic_question_through_the_widget_socket_is_declined_with_the_offer_of_a_person(
    chat, customer, settings  # noqa: F811
):
    settings.ASSISTANT_TOKEN_DELAY_S = 0
    await sync_to_async(demo_knowledge_base_load)()  # transactional tests start from an empty database
    socket = await chat(customer)

    await socket.send({"type": "message", "client_msg_id": str(uuid.uuid4()),
                       "text": "What's the capital of Australia?"})
    events = await socket.recv_until("message_end", timeout=60)

    answer = next(e for e in events if e["type"] == "message" and e["message"]["role"] == "assistant")
    assert (answer["message"]["text"], answer["message"]["citations"]) == (DONT_KNOW, [])
    assert (events[-1]["text"], events[-1]["citations"], events[-1]["outcome"]) == (DONT_KNOW, [], "declined")
    assert "talk to a person" in DONT_KNOW

    # The same socket, a question the help center answers: cited, the snippet is what is quoted.
    await socket.send({"type": "message", "client_msg_id": str(uuid.uuid4()),
                       "conversation_id": answer["conversation_id"],
                       "text": "I forgot my password, how do I reset it?"})
    end = (await socket.recv_until("message_end", timeout=60))[-1]
    assert [c["title"] for c in end["citations"]] == ["Password and sign-in problems"]
    assert end["text"] == end["citations"][0]["snippet"] + " [1]"
    assert (end["outcome"], end["suggestions"]) == ("answered", [])


@pytest.mark.django_db(transaction=True)
async def test_a_question_worded_like_an_articles_customers_also_ask_line_is_answered_from_the_article(
    chat, customer, settings  # noqa: F811
):
    # "my order arrived broken" is a line of the Damaged article's "Customers also ask" list: the
    # customer gets the article's own words, cited, never the list read back.
    settings.ASSISTANT_TOKEN_DELAY_S = 0
    await sync_to_async(demo_knowledge_base_load)()
    socket = await chat(customer)
    end = (await ask(socket, "my order arrived broken"))[-1]
    cited = [c["title"] for c in end["citations"]]
    assert (end["outcome"], cited) == ("answered", ["Damaged or faulty items"])
    assert end["text"] == end["citations"][0]["snippet"] + " [1]"
    assert end["text"].startswith("We are sorry when something arrives broken.")
    assert "Customers also ask" not in end["text"] and "arrived broken" not in end["text"]


@pytest.mark.django_db(transaction=True)
async def test_when_another_article_holds_the_closest_sentence_the_customer_is_asked_and_a_tap_answers(
    chat, customer, settings  # noqa: F811
):
    # A tune-half question the gate answered from the wrong article: Payment methods ranks first
    # (it lists Klarna's interest-free instalments), Paying with Klarna holds the closest sentence.
    settings.ASSISTANT_TOKEN_DELAY_S = 0
    await sync_to_async(demo_knowledge_base_load)()
    socket = await chat(customer)
    end = (await ask(socket, "do I pay interest if I split the payment into 3?"))[-1]
    assert (end["outcome"], end["citations"]) == ("clarify", [])
    assert [s["title"] for s in end["suggestions"]] == ["Payment methods", "Paying with Klarna"]

    tapped = (await ask(socket, end["suggestions"][1]["title"], end["conversation_id"]))[-1]
    cited = [c["title"] for c in tapped["citations"]]
    assert (tapped["outcome"], cited) == ("answered", ["Paying with Klarna"])


def test_a_knowledge_base_embedded_with_e5_gets_no_second_opinion_from_e5(monkeypatch):
    # Chinese knowledge bases are embedded with multilingual-e5-small: their signals (and ZH_GATE's
    # calibration) stay e5's alone; the second model is never loaded for them.
    import numpy as np

    import apps.knowledge.retrieval as retrieval

    class OneVector:
        provider, model = "local", "multilingual-e5-small"

        def embed(self, texts):
            return np.ones((len(texts), 2)) / np.sqrt(2)

    def refuse(*args):
        raise AssertionError("the second opinion was asked for")

    monkeypatch.setattr(retrieval, "get_embedder", refuse)
    monkeypatch.setattr(retrieval, "_label_vectors", type(retrieval._label_vectors)())  # fakes' own cache
    row = {"id": 1, "document_id": "a", "text": "Parcels leave within two days.", "heading_path": "Shipping",
           "title": "Delivery", "similarity": 0.5}
    out = retrieval._with_label_similarities([passage("a", 0.5)], {1: row}, OneVector(),
                                             np.ones(2) / np.sqrt(2), query="where is my parcel")
    assert (out[0].sentence_similarity, out[0].heading_similarity, out[0].doc_similarity) == (1.0, 1.0, 0.5)


def test_the_second_opinion_is_the_mean_of_minilm_and_e5_on_minilm_scale(monkeypatch):
    import numpy as np

    import apps.knowledge.retrieval as retrieval

    class Fixed:
        def __init__(self, model, cosine):
            self.provider, self.model, self.cosine = "local", model, cosine

        def embed(self, texts):
            return np.tile([self.cosine, np.sqrt(1 - self.cosine ** 2)], (len(texts), 1))

    # MiniLM: every label at cosine 0.4 to the question; e5: 0.856, mapped to (0.856 - 0.756) / 0.2.
    e5 = Fixed("multilingual-e5-small", 0.856)
    monkeypatch.setattr(retrieval, "get_embedder", lambda provider, model: e5)
    monkeypatch.setattr(retrieval, "_label_vectors", type(retrieval._label_vectors)())
    monkeypatch.setattr(retrieval, "embed_query", lambda embedder, text: np.array([1.0, 0.0]))
    row = {"id": 1, "document_id": "a", "text": "Parcels leave within two days.", "heading_path": "Shipping",
           "title": "Delivery", "similarity": 0.3}
    out = retrieval._with_label_similarities([passage("a", 0.3)], {1: row}, Fixed("all-MiniLM-L6-v2", 0.4),
                                             np.array([1.0, 0.0]), query="where is my parcel")
    assert (out[0].sentence_similarity, out[0].heading_similarity, out[0].title_similarity,
            out[0].doc_similarity) == (0.45, 0.45, 0.45, 0.4)
