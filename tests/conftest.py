"""The suite's fixtures live in tests/support (one pytest plugin: tests/support/plugin.py)."""

pytest_plugins = ["tests.support.plugin"]
