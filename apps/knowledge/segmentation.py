"""Chinese word segmentation for full-text search: Postgres has no Chinese parser, so Chinese text
is cut into words by jieba (in search mode: a long word also yields the words inside it, so
"退货政策" is found by "退货") and indexed as space-separated words with the 'simple' config,
at ingestion and at query time alike."""

from __future__ import annotations

import logging
import re
import threading

ZH_TS_CONFIG = "simple"
_lock = threading.Lock()
_jieba = None
# Words that say nothing about the topic: particles, pronouns, question words, politeness.
STOP_WORDS = frozenset(
    "的 了 吗 呢 吧 啊 呀 么 嘛 哦 是 在 有 我 你 他 她 它 我们 你们 他们 这 那 这个 那个 和 与 及 或 "
    "就 都 也 还 要 会 能 可以 可 请 请问 一下 一个 怎么 怎样 如何 什么 哪 哪里 哪儿 为什么 多少 几 "
    "谢谢 您 好 想 把 被 给 对 从 到 让 得 地 着 过 没 不 没有 自己 呃 嗯 喂 啥 咋 为啥 一些 现在 "
    "已经 如果 但是 然后 因为 所以 还是".split()
)
_KEEP = re.compile(r"\w")


def jieba_module():
    """jieba, its dictionary loaded once per process (about a second, on first use)."""
    global _jieba
    if _jieba is None:
        with _lock:
            if _jieba is None:
                import jieba

                jieba.setLogLevel(logging.WARNING)
                jieba.initialize()
                _jieba = jieba
    return _jieba


def words(text: str) -> list[str]:
    """jieba's search-mode words of `text`, lower-cased, punctuation and spaces dropped."""
    return [w.lower() for w in jieba_module().cut_for_search(text) if _KEEP.search(w)]


def segment(text: str) -> str:
    """`text` as space-separated words, for to_tsvector('simple', ...)."""
    return " ".join(words(text))


def content_words(text: str) -> list[str]:
    """The words of a question worth searching for (stop words dropped), in order, once each."""
    return list(dict.fromkeys(w for w in words(text) if w not in STOP_WORDS))


def has_cjk(text: str) -> bool:
    return bool(re.search(r"[\u3400-\u9fff]", text))
