"""The demo help center's dev set (apps/assistant/evalsets): its files and the hash split."""

from collections import Counter

import pytest

from apps.assistant.evalsets import half_of, load_questions
from apps.knowledge.demo import ARTICLES_DIR

ARTICLES = {f"demo:{p.stem}" for p in ARTICLES_DIR.glob("*.md")}


def test_half_of_is_a_fixed_function_of_the_id():
    # sha1 parity of the first byte: the same on every machine and run, whatever the file order.
    assert [half_of(i) for i in ("DIN001", "DIN002", "DOUT001", "DOUT002", "T5", "O2")] == [
        "tune", "report", "report", "tune", "report", "tune"]


@pytest.mark.parametrize(("name", "at_least"), [("demo_inscope", 170), ("demo_offtopic", 170)])
def test_each_set_is_large_unique_and_split_roughly_in_half(name, at_least):
    rows = load_questions(name)
    assert len(rows) >= at_least
    assert len({r["_id"] for r in rows}) == len(rows) == len({r["text"].lower() for r in rows})
    halves = Counter(half_of(r["_id"]) for r in rows)
    assert set(halves) == {"tune", "report"} and min(halves.values()) >= 0.4 * len(rows)
    tune, report = load_questions(name, half="tune"), load_questions(name, half="report")
    assert sorted(r["_id"] for r in tune + report) == sorted(r["_id"] for r in rows)
    assert {half_of(r["_id"]) for r in report} == {"report"}


def test_every_article_has_in_scope_questions_in_both_halves():
    rows = load_questions("demo_inscope")
    assert {a for r in rows for a in r["articles"]} <= ARTICLES  # only articles that exist
    assert all(r["articles"] and len(set(r["articles"])) == len(r["articles"]) for r in rows)
    by_half = {half: Counter(r["articles"][0] for r in rows if half_of(r["_id"]) == half)
               for half in ("tune", "report")}
    assert set(by_half["tune"]) == set(by_half["report"]) == ARTICLES


def test_off_topic_questions_come_from_both_sources():
    sources = Counter(r["source"] for r in load_questions("demo_offtopic"))
    assert sources == {"written": 70, "clinc150": 100}


def test_an_unknown_half_is_an_error():
    with pytest.raises(ValueError, match="half must be one of"):
        load_questions("demo_inscope", half="both")
