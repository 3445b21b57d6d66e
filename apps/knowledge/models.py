"""Knowledge base, its documents and their chunks (text + `vector` embedding + `tsvector`).

The embedding column has one fixed dimension, `EMBEDDING_DIMENSIONS` at migration time: HNSW
indexes need it. A knowledge base records the provider/model/dimension its chunks were embedded
with; ingestion and search refuse a knowledge base whose model differs from the configured one
until `kb_reembed` has run (apps/knowledge/embeddings.py: `embedder_for_kb`).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.db import models
from django.db.models import Case, Value, When
from pgvector.django import HnswIndex, VectorField

from .languages import DEFAULT_LANGUAGE, LANGUAGE_CHOICES
from .segmentation import ZH_TS_CONFIG

# The text-search configuration of English chunks' tsvector and queries. Chinese chunks carry
# their jieba-segmented text in `search_text`, indexed with ZH_TS_CONFIG ('simple').
TS_CONFIG = "english"


class KnowledgeBase(models.Model):
    slug = models.SlugField(max_length=100, unique=True)
    name = models.CharField(max_length=200, blank=True)
    embedding_provider = models.CharField(max_length=20)
    embedding_model = models.CharField(max_length=200)
    embedding_dimensions = models.PositiveIntegerField()
    # The language its documents are written in: which embedding model, which full-text analysis,
    # and which customers it answers (apps/assistant/grounding.py picks by it).
    language = models.CharField(max_length=20, choices=LANGUAGE_CHOICES, default=DEFAULT_LANGUAGE)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class DocumentStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


class Document(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    knowledge_base = models.ForeignKey(KnowledgeBase, on_delete=models.CASCADE, related_name="documents")
    # Identifies the document across re-ingests: a file's absolute path, a BEIR `_id`, "demo:<name>".
    external_id = models.CharField(max_length=500)
    title = models.CharField(max_length=500, blank=True)
    source_url = models.URLField(max_length=1000, blank=True)
    filename = models.CharField(max_length=255, blank=True)
    # The uploaded bytes, kept so a task can (re)index by id and a chunker change can re-chunk.
    source = models.BinaryField(null=True, blank=True, editable=False)
    content_hash = models.CharField(max_length=64, blank=True)
    # Hash + chunker signature of the chunks now live; equal to the wanted one means "unchanged".
    indexed_signature = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=10, choices=DocumentStatus.choices, default=DocumentStatus.PENDING)
    status_reason = models.TextField(blank=True)
    chunks_total = models.PositiveIntegerField(default=0)
    chunks_done = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    indexed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["knowledge_base", "title"]
        constraints = [
            models.UniqueConstraint(
                fields=["knowledge_base", "external_id"], name="knowledge_doc_external_id_uniq"
            )
        ]
        indexes = [models.Index(fields=["knowledge_base", "status"], name="knowledge_doc_kb_status")]

    def __str__(self) -> str:
        return self.title or self.filename or self.external_id


class Chunk(models.Model):
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="chunks")
    # Denormalised so the HNSW scan filters on one column without a join.
    knowledge_base = models.ForeignKey(KnowledgeBase, on_delete=models.CASCADE, related_name="+")
    order = models.PositiveIntegerField()
    title = models.CharField(max_length=500, blank=True)
    heading_path = models.CharField(max_length=1000, blank=True)
    text = models.TextField()
    token_count = models.PositiveIntegerField()
    embedding = VectorField(dimensions=settings.EMBEDDING_DIMENSIONS)
    # Chinese chunks only: title, headings and text cut into words by jieba, space-separated
    # (segmentation.py); "" for English chunks, whose tsvector is made from the columns as before.
    search_text = models.TextField(blank=True, default="")
    search_vector = models.GeneratedField(
        expression=Case(
            When(
                search_text="",
                then=SearchVector("title", weight="A", config=TS_CONFIG)
                + SearchVector("heading_path", weight="B", config=TS_CONFIG)
                + SearchVector("text", weight="C", config=TS_CONFIG),
            ),
            default=SearchVector("search_text", weight="C", config=Value(ZH_TS_CONFIG)),
            output_field=SearchVectorField(),
        ),
        output_field=SearchVectorField(),
        db_persist=True,
    )

    class Meta:
        ordering = ["document", "order"]
        constraints = [
            models.UniqueConstraint(fields=["document", "order"], name="knowledge_chunk_order_uniq")
        ]
        indexes = [
            HnswIndex(
                name="knowledge_chunk_embedding_hnsw",
                fields=["embedding"],
                m=16,
                ef_construction=64,
                opclasses=["vector_cosine_ops"],
            ),
            GinIndex(fields=["search_vector"], name="knowledge_chunk_tsv_gin"),
        ]

    def __str__(self) -> str:
        return f"{self.document_id}#{self.order}"
