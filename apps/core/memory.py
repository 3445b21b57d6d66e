"""The garbage collector in a long-running process.

A web process holds millions of objects made at start-up and never freed: Django, the
embedding model and tokenizers, jieba's dictionary, the knowledge bases' vocabularies and label
vectors. Python's full (generation 2) collection walks every one of them; measured here, with
100 customers asking at once, one took 237 ms, and the event loop served nobody meanwhile.
`gc.freeze()` moves what exists into a permanent generation that collections skip; what is
made later is collected as before, and reference counting still frees frozen objects.

What is made later is a lot: each open socket's objects, each conversation it follows. With
Python's thresholds (a young collection every 700 new objects, an older one every 10 of those)
the collections that walk them ran about 150 times in the 6 s after 200 customers asked at once,
0.5–1 s of a saturated web process's CPU, the longest pause 175–265 ms (bench/streaming.py,
three runs). Most young objects are freed by reference counting before a collection sees them:
with a young collection every 50,000 (GC_GEN0_THRESHOLD), 0–1 collections ran in that window.
"""

from __future__ import annotations

import gc
import logging

logger = logging.getLogger(__name__)


def heap_freeze(*, collect: bool = True) -> None:
    """Exempt every object alive now from future collections: once start-up is done, and again
    after more start-up work (the knowledge warm-up thread). `collect` first frees what start-up
    left as garbage; a process already serving skips it, as a full collection would stall it."""
    if collect:
        gc.collect()
    gc.freeze()
    logger.debug("froze %d objects out of the garbage collector's reach", gc.get_freeze_count())


def collector_tune(gen0_threshold: int) -> None:
    """Collect the youngest generation after `gen0_threshold` new objects (0: Python's default);
    the older generations keep their thresholds."""
    if gen0_threshold > 0:
        _, gen1, gen2 = gc.get_threshold()
        gc.set_threshold(gen0_threshold, gen1, gen2)
