"""Misspelt question words corrected to the knowledge base's own words, before it is searched.

Customers misspell ("trackng", "refnd", "recieve", "adress"); full text then finds no lexeme for
the word, `coverage` counts its information as missing, and the embedding model sees word pieces.
A question word is corrected when all of these hold:
- it has MIN_LETTERS letters or more, and is not written as a name ("the Alder chair") or in
  capitals (an acronym, a product code);
- it is not a word of the knowledge base (its chunks' titles, headings and text, unstemmed);
- it is not common in English (wordfreq Zipf < COMMON_ZIPF: "recieve" 2.75 is a frequent typo,
  "delivery" 4.6 is meant as written);
- a knowledge base word is within `max_edits` of it (optimal string alignment: a swap of two
  letters is one edit, "retrun"): two for a word English does not know at all ("trackng"), one
  for a word it does ("adress"; a rare word of its own, "engrave", is rarely one edit from
  another);
- the nearest wins, the knowledge base's words before other common English words at the same
  distance ("recieve": receive, not relieve); a common English word strictly nearer wins
  ("pakage": package, not the help center's "page");
- the winner is more common in English than the written word: a misspelling is rarer than what
  it misspells ("duvet" is kept, though "duvets" is one edit away).
Measured (tests/assistant/test_relevance.py): the demo dev set's tune half with one word of each
question misspelt, right-article answers 73 -> 99 of 120 (74 -> 100 with the word forms below
and in retrieval.py's `novelty`); TechQA nDCG@10 0.8855 -> 0.8852.
Words the knowledge base uses are never touched, so a help center's product names stay as written.
A word that is a hyphenated word of the knowledge base written solid ("preorder", "signin",
"dropoff" for its "pre-order", "sign-in", "drop-off") is written as the knowledge base writes it,
whatever its frequency, from MIN_LETTERS letters ("ow.ly" is no "o-w"): it is the same word, and
full text and `novelty` (retrieval.py) would otherwise see a word the help center never uses.
TechQA nDCG@10 0.8852 -> 0.8843 with it ("reload()" -> "re-load()", "dropdown" -> "drop-down").
Chinese questions are not corrected (no spaces between words; jieba's words are the vocabulary).

The vocabulary is read once per knowledge base and process (ts_stat over the chunks' 'simple'
tsvector), kept by the runtime (apps/core/runtime.py, `knowledge.vocabulary`) and read again
when a document of the knowledge base is added, re-indexed or removed.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from functools import lru_cache

from django.db import connection

# wordfreq Zipf frequency at or over which a word is meant as written ("colour" 4.5, "untill" 2.97).
COMMON_ZIPF = 3.0
# Shorter words are never corrected: one edit turns most four-letter words into several others
# ("aout": out or about; "neer": need, never, near).
MIN_LETTERS = 5
LONG_WORD = 5  # from this length a word English does not know may be two edits off
_WORD = re.compile(r"[a-z]+")
_HYPHENATED = re.compile(r"[a-z]+(?:-[a-z]+)+")
# Unstemmed words of a knowledge base's chunks; ts_stat's ndoc: how many chunks use each.
_VOCABULARY_SQL = (
    "SELECT word, ndoc FROM ts_stat(format("
    "'SELECT to_tsvector(''simple'', title || '' '' || heading_path || '' '' || text)"
    " FROM knowledge_chunk WHERE knowledge_base_id = %%s', %s::bigint))"
)


@dataclass(frozen=True)
class Vocabulary:
    version: tuple
    words: dict[str, int]  # word -> chunks using it
    listed: tuple[str, ...] = ()  # the same words, for rapidfuzz
    # Its hyphenated words by their letters written solid: "preorder" -> "pre-order".
    joined: dict[str, str] = field(default_factory=dict)


def vocabulary_make(words: dict[str, int], *, version: tuple = ()) -> Vocabulary:
    kept = {w: n for w, n in words.items() if _WORD.fullmatch(w)}
    joined: dict[str, str] = {}
    # The most used hyphenated form first, so it wins when two join alike.
    for w in sorted((w for w in words if _HYPHENATED.fullmatch(w)), key=lambda w: (-words[w], w)):
        joined.setdefault(w.replace("-", ""), w)
    return Vocabulary(version=version, words=kept, listed=tuple(sorted(kept)),
                      joined={solid: w for solid, w in joined.items() if solid not in kept})


def max_edits(word: str, zipf: float) -> int:
    """Two edits for a word of LONG_WORD letters or more that English does not use at all
    ("trackng", "paymnet"), else one: a word English does use ("recieve", "adress", "untill")
    is one edit from what it misspells, or a word of its own."""
    return 2 if zipf == 0 and len(word) >= LONG_WORD else 1


@lru_cache(maxsize=1)
def _english() -> tuple[str, ...]:
    """English words at least COMMON_ZIPF common (about 25,000)."""
    from wordfreq import top_n_list, zipf_frequency

    return tuple(w for w in top_n_list("en", 60000)
                 if _WORD.fullmatch(w) and zipf_frequency(w, "en") >= COMMON_ZIPF)


def spelling_warm_up() -> None:
    """Load the common English words and wordfreq's English list now (about 0.7 s on first use):
    a process's warm-up calls it, so that its first customer with a misspelt word does not wait."""
    _english()


def _nearest(word: str, choices: tuple[str, ...], limit: int) -> list[tuple[str, int]]:
    from rapidfuzz import process
    from rapidfuzz.distance import OSA

    found = process.extract(word, choices, scorer=OSA.distance, score_cutoff=limit, limit=None)
    return [(choice, int(edits)) for choice, edits, _ in found]


def word_correct(word: str, vocabulary: Vocabulary) -> str | None:
    """The word `word` (lower case) misspells (the module docstring), or None."""
    from wordfreq import zipf_frequency

    if len(word) < MIN_LETTERS or word in vocabulary.words:
        return None
    if word in vocabulary.joined:
        return vocabulary.joined[word]
    written = zipf_frequency(word, "en")
    if written >= COMMON_ZIPF:
        return None
    limit = max_edits(word, written)
    found = dict(_nearest(word, vocabulary.listed, limit))
    if not found:
        return None
    # The nearest words, the knowledge base's before other common English words at the same
    # distance ("recieve": receive, not relieve): it is what the customer is asking this help
    # center about. A nearer English word wins ("pakage": package, not the help center's page).
    english = dict(_nearest(word, _english(), min(found.values())))
    nearest = min([*found.values(), *english.values()])
    choices = [w for w, e in {**english, **found}.items() if e == nearest]
    best = max(choices, key=lambda w: (w in vocabulary.words, vocabulary.words.get(w, 0),
                                       zipf_frequency(w, "en"), w))
    return best if zipf_frequency(best, "en") > written else None


# Where a contraction's apostrophe goes, by how the word ends: "whats", "isnt", "havent", "youre".
_CONTRACTED = (("nt", "n't"), ("s", "'s"), ("d", "'d"), ("m", "'m"), ("ll", "'ll"), ("re", "'re"),
               ("ve", "'ve"))


def contraction_of(word: str) -> str | None:
    """The contraction `word` (lower case) writes without its apostrophe ("whats": "what's",
    "havent": "haven't"), when English uses that more than the word as written ("shed" is kept);
    else None. Customers type them so; they are everyday words, never something specific."""
    from wordfreq import zipf_frequency

    written = zipf_frequency(word, "en")
    found = [word[: -len(end)] + mark for end, mark in _CONTRACTED
             if word.endswith(end) and len(word) > len(end)]
    best = max(found, key=lambda w: zipf_frequency(w, "en"), default=None)
    return best if best is not None and zipf_frequency(best, "en") > written else None


def text_correct(text: str, vocabulary: Vocabulary) -> str:
    """`text` with each misspelt word replaced by its knowledge base word. Words written with a
    capital inside a sentence (a name: "the Alder dining chair") or in capitals (an acronym, a
    product code) are kept as written."""
    def fix(match: re.Match[str]) -> str:
        written = match.group(0)
        before = text[: match.start()].rstrip()
        sentence_start = not before or before[-1] in ".!?"
        if (written[0].isupper() and not sentence_start) or (len(written) > 1 and written.isupper()):
            return written
        found = word_correct(written.lower(), vocabulary)
        return found if found is not None else written

    return re.sub(r"[A-Za-z]+", fix, text)


_lock = threading.Lock()


def kb_vocabulary(kb_id: int, version: tuple) -> Vocabulary:
    """The knowledge base's vocabulary as of `version` (retrieval.py's index version), read from
    the database when the cached one is older."""
    from apps.core.runtime import runtime

    cache: dict[int, Vocabulary] = runtime().get("knowledge.vocabulary", dict)
    found = cache.get(kb_id)
    if found is not None and found.version == version:
        return found
    with connection.cursor() as cursor:
        cursor.execute(_VOCABULARY_SQL, [kb_id])
        words = {w: int(n) for w, n in cursor.fetchall()}
    vocabulary = vocabulary_make(words, version=version)
    with _lock:
        cache[kb_id] = vocabulary
    return vocabulary
