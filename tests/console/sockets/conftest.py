"""Socket tests get a fresh channel layer per test loop, as chat tests do (autouse, async: kept
out of the browser tests' sync Playwright loop)."""

import pytest


@pytest.fixture(autouse=True)
async def _isolated_async_state(isolated_async_state):
    yield
