"""Admin: knowledge bases, documents with their indexing progress, and a file upload that
indexes through Celery tasks (the worker of `make run`)."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from apps.audit.admin_mixins import AuditedAdminMixin
from apps.audit.services import audit_record

from .forms import DocumentUploadForm
from .ingestion import documents_enqueue
from .models import Chunk, Document, KnowledgeBase
from .selectors import document_counts
from .services import document_reject, document_upsert, knowledge_base_get_or_create, oversize_reason


@admin.register(KnowledgeBase)
class KnowledgeBaseAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = [
        "slug",
        "name",
        "embedding_provider",
        "embedding_model",
        "embedding_dimensions",
        "documents",
    ]
    # The embedding model changes only through `kb_reembed`, which re-embeds every chunk first.
    readonly_fields = [
        "embedding_provider",
        "embedding_model",
        "embedding_dimensions",
        "created_at",
        "updated_at",
    ]

    @admin.display(description="documents (ready/pending/failed)")
    def documents(self, obj: KnowledgeBase) -> str:
        c = document_counts(kb=obj)
        return f"{c['ready']}/{c['pending']}/{c['failed']}"


class ChunkInline(admin.TabularInline):
    model = Chunk
    fields = ["order", "heading_path", "token_count", "text"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Document)
class DocumentAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ["__str__", "knowledge_base", "status", "progress", "status_reason", "updated_at"]
    list_filter = ["knowledge_base", "status"]
    search_fields = ["title", "filename", "external_id"]
    readonly_fields = [
        "knowledge_base",
        "external_id",
        "filename",
        "content_hash",
        "status",
        "status_reason",
        "chunks_done",
        "chunks_total",
        "indexed_at",
        "created_at",
        "updated_at",
    ]
    fields = ["title", "source_url", *readonly_fields]
    inlines = [ChunkInline]
    actions = ["reindex"]
    change_list_template = "admin/knowledge/document/change_list.html"

    def get_queryset(self, request):
        return super().get_queryset(request).defer("source").select_related("knowledge_base")

    def has_add_permission(self, request) -> bool:
        return False  # documents come in through the upload view or kb_ingest

    def has_upload_permission(self, request) -> bool:
        """Uploading adds and replaces documents (re-uploading a name replaces it)."""
        opts = self.opts
        return request.user.has_perms(
            [f"{opts.app_label}.add_{opts.model_name}", f"{opts.app_label}.change_{opts.model_name}"]
        )

    def changelist_view(self, request, extra_context=None):
        context = {**(extra_context or {}), "has_upload_permission": self.has_upload_permission(request)}
        return super().changelist_view(request, context)

    @admin.display(description="progress")
    def progress(self, obj: Document) -> str:
        return f"{obj.chunks_done}/{obj.chunks_total} chunks"

    @admin.action(description="Re-index selected documents", permissions=["change"])
    def reindex(self, request, queryset):
        docs = list(queryset.exclude(source=None))
        with transaction.atomic():
            Document.objects.filter(pk__in=[d.pk for d in docs]).update(
                indexed_signature="", status="pending"
            )
            documents_enqueue(docs)
        self.message_user(request, f"{len(docs)} documents queued for indexing.")

    def get_urls(self):
        upload = path(
            "upload/", self.admin_site.admin_view(self.upload_view), name="knowledge_document_upload"
        )
        return [upload, *super().get_urls()]

    def upload_view(self, request):
        if not self.has_upload_permission(request):
            raise PermissionDenied("Uploading documents needs the add and change document permissions.")
        form = DocumentUploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            kb = form.cleaned_data["knowledge_base"] or knowledge_base_get_or_create(
                slug=settings.KB_DEFAULT_SLUG
            )
            queued = failed = 0
            with transaction.atomic():
                changed = []
                for upload in form.cleaned_data["files"]:
                    external_id = f"upload:{upload.name}"
                    if reason := oversize_reason(filename=upload.name, size=upload.size):
                        document_reject(kb=kb, external_id=external_id, filename=upload.name, reason=reason)
                        failed += 1
                        continue
                    doc, needs = document_upsert(
                        kb=kb, external_id=external_id, filename=upload.name, data=upload.read()
                    )
                    failed += doc.status == "failed"
                    if needs:
                        changed.append(doc)
                queued = len(changed)
                documents_enqueue(changed)
                audit_record(
                    actor=request.user,
                    action="knowledge.document.upload",
                    target=kb,
                    detail={
                        "files": [f.name for f in form.cleaned_data["files"]],
                        "queued": queued,
                        "failed": failed,
                    },
                )
            self.message_user(
                request,
                f"{queued} documents queued for indexing, {failed} failed; a Celery "
                "worker indexes them (progress below).",
                messages.WARNING if failed else messages.SUCCESS,
            )
            return redirect(reverse("admin:knowledge_document_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "form": form,
            "title": "Upload documents",
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/knowledge/document/upload.html", context)
