"""Headless Chromium (Debian's `chromium`) driven by Playwright, against real uvicorn servers:
the `browser` and `page` fixtures and the widget helpers browser tests share."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest
from django.db import connection
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright

T = TypeVar("T")

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Reconnecting waits out a jittered backoff and a server start: give expectations room.
expect.set_options(timeout=30_000)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium).")
    # Playwright's sync API keeps an asyncio loop marked as running in this thread, so Django
    # takes the tests' plain synchronous ORM calls (and the test database's flush) for calls
    # from async code. Nothing async touches the database here: allow it while the browser is up.
    with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser profile (empty localStorage); fails the test on any page script error."""
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert errors == [], f"script errors on the page: {errors}"


def open_widget(page: Page, url: str) -> None:
    page.goto(url)
    page.get_by_role("button", name="Open chat").click()
    expect(page.get_by_role("dialog", name="Kefu demo shop")).to_be_visible()


def send(page: Page, text: str, *, wait_for_ack: bool = True) -> None:
    box = page.get_by_role("textbox", name="Message")
    box.fill(text)
    box.press("Enter")
    if wait_for_ack:  # the server stored it: the bubble is no longer pending
        expect(page.locator(".kefu-pending")).to_have_count(0)


def beside_playwright(fn: Callable[..., T], **kwargs: Any) -> T:
    """Run server-side code (ORM, channel layer) in a thread of its own: Playwright's sync API
    keeps an event loop in this one, where `async_to_sync` broadcasts cannot run."""

    def call() -> T:
        try:
            return fn(**kwargs)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(call).result()


def answers(page: Page) -> Locator:
    """The assistant's answers (not the host page's greeting)."""
    return page.locator(".kefu-from-assistant:not(.kefu-greeting)")


def screenshot(page: Page, tmp_path: Path, name: str, *, full_page: bool = False) -> Path:
    """A screenshot of `page` in the test's tmp dir, copied to KEFU_SCREENS_DIR when set (to look at)."""
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    if target := os.environ.get("KEFU_SCREENS_DIR"):
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / path.name)
    return path


def console_sign_in(page: Page, username: str, password: str = "pw") -> None:
    """Fill and send the console's password sign-in form shown on `page`."""
    page.get_by_label("Username or email").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
