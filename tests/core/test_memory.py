"""apps/core/memory.py: the garbage collector of a long-running process."""

import gc

import pytest

from apps.core.memory import collector_tune


@pytest.fixture
def thresholds():
    before = gc.get_threshold()
    yield before
    gc.set_threshold(*before)


def test_collector_tune_sets_the_young_generations_threshold_and_keeps_the_older_ones(thresholds):
    gc.set_threshold(700, 10, 10)

    collector_tune(50_000)

    assert gc.get_threshold() == (50_000, 10, 10)


def test_collector_tune_zero_keeps_pythons_thresholds(thresholds):
    gc.set_threshold(700, 10, 10)

    collector_tune(0)

    assert gc.get_threshold() == (700, 10, 10)


def test_the_web_process_entry_point_tunes_the_collector(thresholds, settings):
    import config.asgi  # noqa: F401  (imported by the test run already, or now)

    assert gc.get_threshold()[0] == settings.GC_GEN0_THRESHOLD
