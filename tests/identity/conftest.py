"""The test identity provider (tests/support/oidc_provider) and its people, for tests/identity."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from apps.identity.discovery import provider_cache_clear
from tests.support.oidc_provider.people import NORA, OLGA
from tests.support.oidc_provider.process import Provider, provider_start


@pytest.fixture(autouse=True)
def _fresh_discovery() -> Iterator[None]:
    """Each test's provider listens on a new port: forget the last one's document and keys."""
    provider_cache_clear()
    yield
    provider_cache_clear()


@pytest.fixture
def identity_provider(tmp_path) -> Iterator[Callable[[str], Provider]]:
    """`identity_provider(kefu_url)` -> a running provider whose client redirects to kefu_url."""
    started: list[Provider] = []

    def start(kefu_url: str) -> Provider:
        directory = tmp_path / f"idp-{len(started)}"
        directory.mkdir()
        started.append(provider_start(directory=directory, kefu_url=kefu_url, users=[OLGA, NORA]))
        return started[-1]

    yield start
    for provider in started:
        provider.server.stop()
