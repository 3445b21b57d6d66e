"""Knowledge-gap pages of the console (apps/console/gaps.py): the groups of unanswered questions,
one group's questions and agent replies, the article draft, and publishing it.

Every staff member (agent, supervisor, admin) sees the gaps and may draft; publishing changes what
the assistant tells every customer, so it takes a supervisor or an admin (403 otherwise)."""

from __future__ import annotations

import uuid
from typing import Any
from uuid import UUID

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from apps.knowledge.errors import KnowledgeError

from .gaps import (
    GapError,
    GapReport,
    gap_articles_recent,
    gap_draft,
    gap_publish,
    gap_publish_allowed,
    gaps_report,
)
from .views import staff_required


class ArticleForm(forms.Form):
    title = forms.CharField(max_length=200, strip=True)
    body = forms.CharField(max_length=20_000, strip=True, widget=forms.Textarea)


def _question_ids(request: HttpRequest) -> list[UUID]:
    ids = []
    for raw in request.POST.getlist("question"):
        try:
            ids.append(uuid.UUID(raw))
        except ValueError:
            continue
    return ids


def _context(request: HttpRequest, report: GapReport, **extra: Any) -> dict[str, Any]:
    return {
        "report": report,
        "can_publish": gap_publish_allowed(request.user),
        "published": gap_articles_recent(),
        **extra,
    }


@require_GET
@staff_required
def gaps_page(request: HttpRequest, question_id: UUID | None = None) -> HttpResponse:
    report = gaps_report()
    gap = report.find(question_id) if question_id else (report.gaps[0] if report.gaps else None)
    if question_id and gap is None:
        messages.info(request, "That group is no longer open: its questions were resolved or are too old.")
        return redirect("console:gaps")
    return render(request, "console/gaps.html", _context(request, report, gap=gap))


@require_GET
@staff_required
def gap_draft_page(request: HttpRequest, question_id: UUID) -> HttpResponse:
    report = gaps_report()
    gap = report.find(question_id)
    if gap is None:
        messages.info(request, "That group is no longer open: its questions were resolved or are too old.")
        return redirect("console:gaps")
    form = ArticleForm(initial=gap_draft(gap=gap))
    return render(request, "console/gaps.html", _context(request, report, gap=gap, form=form, drafting=True))


def _draft_again(
    request: HttpRequest, question_ids: list[UUID], form: ArticleForm, error: str
) -> HttpResponse:
    """The draft page again with what the agent wrote, and why it was not published."""
    report = gaps_report()
    gap = next((g for q in question_ids if (g := report.find(q))), None)
    if gap is None:
        messages.error(request, error)
        return redirect("console:gaps")
    context = _context(request, report, gap=gap, form=form, drafting=True, error=error)
    return render(request, "console/gaps.html", context, status=400)


@require_POST
@staff_required
def gap_publish_view(request: HttpRequest) -> HttpResponse:
    if not gap_publish_allowed(request.user):
        raise PermissionDenied("Publishing articles needs a supervisor or admin.")
    form = ArticleForm(request.POST)
    question_ids = _question_ids(request)
    if not form.is_valid():
        return _draft_again(
            request, question_ids, form, "Give the article a title (up to 200 characters) and a body."
        )
    try:
        article = gap_publish(question_ids=question_ids, by=request.user, **form.cleaned_data)
    except (GapError, KnowledgeError) as exc:
        return _draft_again(request, question_ids, form, str(exc))
    count = article.questions.count()
    resolved = f"{count} question{'s' if count != 1 else ''} resolved"
    messages.success(request, f"Published “{article.title}” to the help center; {resolved}.")
    return redirect("console:gaps")
