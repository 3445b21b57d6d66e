"""`/console/reports/`: the figures of a period as headline numbers, charts (Chart.js, vendored
in static/reports/vendor/) and tables, each table downloadable as CSV with the same filters."""

from __future__ import annotations

import csv
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.views import redirect_to_login
from django.contrib.staticfiles import finders
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_GET

from apps.teams.models import Team

from .access import PERIODS, Viewer, period_bounds, scope_for, viewer_for
from .selectors import Scope
from .tables import TABLES, report_build


class ReportFilterForm(forms.Form):
    period = forms.ChoiceField(choices=list(PERIODS.items()), required=False, initial="7d")
    start = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    team = forms.TypedChoiceField(coerce=int, required=False, empty_value=None)
    agent = forms.TypedChoiceField(coerce=int, required=False, empty_value=None)

    def __init__(self, *args: Any, viewer: Viewer, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        teams = Team.objects.order_by("name")
        if not viewer.lead:
            teams = teams.filter(pk__in=viewer.team_ids)
        self.fields["team"].choices = [("", "All teams"), *teams.values_list("pk", "name")]
        if viewer.lead:
            staff = get_user_model().objects.filter(is_staff=True).order_by("first_name", "username")
            self.fields["agent"].choices = [("", "All agents"),
                                            *((u.pk, u.get_full_name() or u.get_username()) for u in staff)]
        else:
            del self.fields["agent"]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        data["period"] = data.get("period") or "7d"
        if data["period"] == "custom":
            if not data.get("start") or not data.get("end"):
                raise forms.ValidationError("A custom period needs a start and an end date.")
            if data["start"] > data["end"]:
                raise forms.ValidationError("The start date must not be after the end date.")
        return data


def staff_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), reverse("console:login"))
        viewer = viewer_for(request.user)
        if viewer is None:
            raise PermissionDenied("Reports are for staff accounts.")
        return view(request, viewer, *args, **kwargs)

    return wrapped


def _scope(request: HttpRequest, viewer: Viewer) -> tuple[ReportFilterForm, Scope]:
    form = ReportFilterForm(request.GET or None, viewer=viewer)
    form.is_valid()
    # What validated counts (a team an agent may not pick is dropped, the period stays).
    data = dict(getattr(form, "cleaned_data", {}))
    period = data.get("period") or "7d"
    if period == "custom" and not (data.get("start") and data.get("end") and data["start"] <= data["end"]):
        period = "7d"
    data["period"] = period
    team_id, agent_id = data.get("team"), data.get("agent")
    zone = scope_for(viewer, since=timezone.now(), until=timezone.now(), team_id=team_id,
                     agent_id=agent_id).time_zone
    since, until = period_bounds(data["period"], now=timezone.now(), zone=zone,
                                 start=data.get("start"), end=data.get("end"))
    return form, scope_for(viewer, since=since, until=until, team_id=team_id, agent_id=agent_id)


@require_GET
@staff_required
def reports_page(request: HttpRequest, viewer: Viewer) -> HttpResponse:
    form, scope = _scope(request, viewer)
    report = report_build(scope)
    query = request.GET.urlencode()
    tables = [
        {"key": key, "title": TABLES[key], "head": mark_safe(_cells(headers, "th")),  # values escaped
         "body": _body(headers, rows),
         "csv": reverse("reports:csv", args=[key]) + (f"?{query}" if query else "")}
        for key, (headers, rows) in report.tables.items()
    ]
    return render(request, "reports/reports.html", {
        "form": form, "report": report, "tables": tables, "lead": viewer.lead,
        "since": scope.since.astimezone(_tz(scope)), "until": scope.until.astimezone(_tz(scope)),
    })


# The tables' cells are written here rather than by template tags: a 30-day page has ~600 of
# them, and the template engine spent more time on them than the figures' queries took.
def _cells(values: list[Any], tag: str) -> str:
    attrs = ' scope="col"' if tag == "th" else ""
    return "".join(f"<{tag}{attrs}>{escape('—' if v is None else v)}</{tag}>" for v in values)


def _body(headers: list[str], rows: list[list[Any]]) -> SafeString:
    if not rows:
        empty = "No conversations in this period."
        return mark_safe(f'<tr><td colspan="{len(headers)}" class="kf-muted">{empty}</td></tr>')
    return mark_safe("".join(f"<tr>{_cells(row, 'td')}</tr>" for row in rows))  # every value escaped


def _tz(scope: Scope) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(scope.time_zone)


@require_GET
@staff_required
def reports_csv(request: HttpRequest, viewer: Viewer, table: str) -> HttpResponse:
    if table not in TABLES:
        raise Http404("No such table; choose one of " + ", ".join(TABLES) + ".")
    _, scope = _scope(request, viewer)
    headers, rows = report_build(scope).tables[table]
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    day = f"{scope.since.astimezone(_tz(scope)):%Y-%m-%d}"
    response["Content-Disposition"] = f'attachment; filename="kefu-{table}-{day}.csv"'
    writer = csv.writer(response)
    writer.writerow(headers)
    writer.writerows(["" if v is None else v for v in row] for row in rows)
    return response


# Served by Django like the console's own files (Daphne and uvicorn serve no static files).
ASSETS = {
    "reports.js": "text/javascript; charset=utf-8",
    "reports.css": "text/css; charset=utf-8",
    "vendor/chart.umd.min.js": "text/javascript; charset=utf-8",
}


@require_GET
def asset(request: HttpRequest, name: str) -> HttpResponse:
    content_type = ASSETS.get(name)
    found = finders.find(f"reports/{name}") if content_type else None
    if not found:
        raise Http404("No such reports file.")
    response = HttpResponse(Path(found).read_bytes(), content_type=content_type)
    response["Cache-Control"] = "private, max-age=3600" if name.startswith("vendor/") else "private, no-cache"
    return response
