"""Console pages for admins: the audit log (search, pages, CSV) and a customer's data
(export, erase). Staff who are not admins get 403; signed-out visitors the login page."""

from __future__ import annotations

import csv
import functools
import json
from collections.abc import Callable, Iterator
from typing import Any
from uuid import UUID

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from apps.audit.selectors import audit_search
from apps.audit.services import audit_record
from apps.console.roles import staff_role
from apps.console.views import staff_required
from apps.conversations.models import Conversation
from apps.customers.models import Customer

from .forms import AuditFilterForm, EraseForm
from .services import CustomerUnknown, customer_erase, customer_export

PAGE_SIZE = 50
CSV_COLUMNS = [
    "at",
    "actor_label",
    "actor_id",
    "action",
    "target_type",
    "target_id",
    "ip",
    "before",
    "after",
    "detail",
]


def admin_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @staff_required
    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if staff_role(request.user) != "admin":
            raise PermissionDenied("The audit log and customers' data are for admins.")
        return view(request, *args, **kwargs)

    return wrapped


@require_GET
@admin_required
def audit_page(request: HttpRequest) -> HttpResponse:
    form = AuditFilterForm(request.GET or None)
    page = Paginator(audit_search(**form.filters()), PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "privacy/audit.html", {"form": form, "page": page, "query": query.urlencode()})


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv_rows(rows: Any) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    for row in rows.iterator(chunk_size=500):
        yield writer.writerow(
            [
                row.at.isoformat(),
                row.actor_label,
                row.actor_id or "",
                row.action,
                row.target_type,
                row.target_id,
                row.ip or "",
                *(
                    json.dumps(v, ensure_ascii=False) if v is not None else ""
                    for v in (row.before, row.after, row.detail)
                ),
            ]
        )


@require_GET
@admin_required
def audit_csv(request: HttpRequest) -> StreamingHttpResponse:
    filters = AuditFilterForm(request.GET or None).filters()
    rows = audit_search(**filters)
    audit_record(
        actor=request.user,
        action="audit.export",
        target=None,
        detail={k: str(v) for k, v in filters.items() if v},
    )
    response = StreamingHttpResponse(_csv_rows(rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="kefu-audit.csv"'
    return response


def _customer(customer_id: UUID) -> Customer:
    customer = Customer.objects.filter(pk=customer_id).first()
    if customer is None:
        raise Http404("No customer has this id (erased customers are gone).")
    return customer


@require_GET
@admin_required
def customer_page(request: HttpRequest, customer_id: UUID) -> HttpResponse:
    customer = _customer(customer_id)
    conversations = Conversation.objects.filter(customer=customer).order_by("-created_at")
    return render(
        request,
        "privacy/customer.html",
        {
            "customer": customer,
            "conversations": conversations[:20],
            "count": conversations.count(),
            "erase_form": EraseForm(),
        },
    )


@require_POST
@admin_required
def customer_export_view(request: HttpRequest, customer_id: UUID) -> HttpResponse:
    try:
        document = customer_export(customer_id=customer_id, actor=request.user)
    except CustomerUnknown as exc:
        raise Http404(str(exc)) from None
    response = HttpResponse(
        json.dumps(document, ensure_ascii=False, indent=2), content_type="application/json; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="kefu-customer-{customer_id}.json"'
    return response


@require_POST
@admin_required
def customer_erase_view(request: HttpRequest, customer_id: UUID) -> HttpResponse:
    form = EraseForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Tick the box to confirm: erasing cannot be undone.")
        return redirect("privacy:customer", customer_id=customer_id)
    try:
        erased = customer_erase(customer_id=customer_id, actor=request.user)
    except CustomerUnknown as exc:
        raise Http404(str(exc)) from None
    messages.success(
        request,
        f"Customer {erased.customer_id} erased: {erased.conversations} conversation(s) kept anonymously.",
    )
    return redirect(f"{reverse('privacy:audit')}?target={erased.customer_id}")
