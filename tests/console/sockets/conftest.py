"""Socket tests share the chat tests' fixtures: customers, chat sockets, and a fresh channel
layer per test loop (autouse, async: kept out of the browser tests' sync Playwright loop)."""

from tests.realtime.conftest import _isolated_async_state, chat, customer, other_customer  # noqa: F401
