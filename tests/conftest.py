"""The suite's fixtures live in tests/support (one pytest plugin: tests/support/plugin.py)."""

from tests.support.process import REPO  # noqa: F401 (tests/core/test_settings_side_effects.py imports it from here)

pytest_plugins = ["tests.support.plugin"]
