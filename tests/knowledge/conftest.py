"""Fixtures of the knowledge base tests: real Postgres, the real MiniLM model."""

from __future__ import annotations

from pathlib import Path

import pytest

from apps.knowledge.models import KnowledgeBase
from apps.knowledge.services import knowledge_base_get_or_create
from tests.fixtures import fixture_copy


@pytest.fixture
def kb(db) -> KnowledgeBase:
    return knowledge_base_get_or_create(slug="test-kb")


@pytest.fixture
def beir_folder(tmp_path: Path) -> Path:
    """A tiny BEIR folder: three documents, three queries, one relevant document each."""
    return fixture_copy("knowledge/beir-tiny", tmp_path)
