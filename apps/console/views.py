"""Console pages: server-rendered, staff only. The socket script (static console/console.js)
makes them live; every action also works as a plain POST form (CSRF-protected) without it."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

from asgiref.sync import async_to_sync
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.contrib.staticfiles import finders
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from apps.conversations.errors import ConversationError
from apps.core.db import db_async, db_async_work
from apps.core.runtime import runtime
from apps.teams.selectors import teams_list

from . import services
from .consumers import turns_stop_signal
from .crm import crm_panel_for_conversation
from .forms import AssignForm, QueueFilterForm, TeamForm, TextForm
from .language import agent_language_activate
from .selectors import (
    agents_list,
    canned_replies,
    conversation_history,
    queue_entry_get,
    queue_entry_to_wire,
    queue_list,
)
from .team_change import conversation_team_set
from .visibility import Viewer, conversation_get_visible, conversation_visible_to, viewer_for


def staff_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Signed-out visitors go to the login page; signed-in non-staff get 403."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), reverse("console:login"))
        if not request.user.is_staff:
            raise PermissionDenied("The console is for staff accounts.")
        agent_language_activate(request)  # the agent's preferred language (language.py)
        return view(request, *args, **kwargs)

    return wrapped


def _queue_context(request: HttpRequest, viewer: Viewer | None = None) -> dict[str, Any]:
    form = QueueFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    conversations = queue_list(
        agent_id=request.user.pk,
        viewer=viewer or viewer_for(user=request.user),  # their teams' only (visibility.py)
        state=filters.get("state") or "",
        assignee=filters.get("assignee") or "",
        search=filters.get("q") or "",
        include_closed=bool(filters.get("closed")),
    )
    return {
        "filter_form": form,
        "filtered": bool(request.GET),
        "queue": [queue_entry_to_wire(c) for c in conversations],
        "agents": agents_list(),
    }


@require_GET
@staff_required
def queue_page(request: HttpRequest) -> HttpResponse:
    return render(request, "console/console.html", {**_queue_context(request), "conversation": None})


@require_GET
@staff_required
def conversation_page(request: HttpRequest, conversation_id: UUID) -> HttpResponse:
    viewer = viewer_for(user=request.user)
    conversation = conversation_get_visible(conversation_id=conversation_id, viewer=viewer)
    if conversation is None:  # none, or another team's: the same 404
        raise Http404("No such conversation.")
    customer = conversation.customer
    services.conversation_read(conversation_id=conversation.pk, seq=conversation.last_seq)  # opened: read
    queue = _queue_context(request, viewer)
    if not any(entry["id"] == str(conversation.pk) for entry in queue["queue"]):  # closed, or filtered out
        entry = queue_entry_get(conversation_id=conversation.pk)
        queue["queue"].append(queue_entry_to_wire(entry))
    context = {
        **queue,
        "conversation": conversation,
        "history": conversation_history(conversation_id=conversation.pk),
        "canned": canned_replies(),
        "assign_form": AssignForm(initial={"agent_id": request.user.pk}),
        "text_form": TextForm(initial={"client_msg_id": uuid4()}),
        "earlier": customer.conversations.filter(viewer.q()).exclude(pk=conversation.pk)[:5],
        "teams": teams_list(),
        "mine": conversation.assignee_id == request.user.pk,
    }
    return render(request, "console/console.html", context)


# CRM calls wait on another system (up to its connector's timeouts) in the answers' thread pool:
# a few panels at a time per event loop, so agents opening pages never starve the answers. One
# semaphore per loop, kept by the runtime: an asyncio.Semaphore belongs to the loop that first
# waits on it (a module-level one fails in a second loop: tests, async_to_sync under WSGI).
CRM_PANELS_AT_ONCE = 2


def _crm_panels() -> asyncio.Semaphore:
    return runtime().loop_get("console.crm_panels", lambda: asyncio.Semaphore(CRM_PANELS_AT_ONCE))


@require_GET
async def conversation_crm(request: HttpRequest, conversation_id: UUID) -> HttpResponse:
    """The customer panel's CRM/ERP part, fetched by the page after it loads (a slow CRM never
    slows the conversation page)."""
    user = await request.auser()
    if not user.is_authenticated:
        return redirect_to_login(request.get_full_path(), reverse("console:login"))
    if not user.is_staff:
        raise PermissionDenied("The console is for staff accounts.")
    if await db_async(conversation_visible_to)(conversation_id=conversation_id, user=user) is None:
        raise Http404("No such conversation.")  # another team's reads no CRM on its behalf
    async with _crm_panels():
        panel = await db_async_work(crm_panel_for_conversation)(conversation_id=conversation_id, user=user)
    if panel is None:
        raise Http404("No such conversation.")
    return render(request, "console/_crm_panel.html", {"panel": panel})


def _act(request: HttpRequest, conversation_id: UUID, action: Callable[[], Any]) -> HttpResponse:
    try:
        result = action()
    except ConversationError as exc:
        messages.error(request, exc.message)
    else:
        stopped = getattr(result, "stopped_turn_ids", None)
        if stopped:
            async_to_sync(turns_stop_signal)(stopped)
    return redirect("console:conversation", conversation_id=conversation_id)


@require_POST
@staff_required
def conversation_action(request: HttpRequest, conversation_id: UUID, action: str) -> HttpResponse:
    agent = request.user
    simple = {
        "claim": services.conversation_claim,
        "release": services.conversation_release,
        "close": services.conversation_close,
    }
    if action in simple:
        return _act(
            request, conversation_id, lambda: simple[action](conversation_id=conversation_id, agent=agent)
        )
    if action == "assign":
        form = AssignForm(request.POST)
        if not form.is_valid():
            messages.error(request, "Choose an agent to assign the conversation to.")
            return redirect("console:conversation", conversation_id=conversation_id)
        agent_id = form.cleaned_data["agent_id"]
        return _act(
            request,
            conversation_id,
            lambda: services.conversation_assign(
                conversation_id=conversation_id, agent_id=agent_id, by=agent
            ),
        )
    if action == "team":
        team_form = TeamForm(request.POST)
        if not team_form.is_valid():
            messages.error(request, "Choose a team from the list.")
            return redirect("console:conversation", conversation_id=conversation_id)
        team_id = team_form.cleaned_data["team_id"]
        return _act(
            request,
            conversation_id,
            lambda: conversation_team_set(conversation_id=conversation_id, team_id=team_id, by=agent),
        )
    if action in ("reply", "note"):
        form = TextForm(request.POST)
        if not form.is_valid():
            messages.error(request, "Write 1 to 4000 characters.")
            return redirect("console:conversation", conversation_id=conversation_id)
        service = services.agent_reply if action == "reply" else services.note_create
        data = form.cleaned_data
        return _act(
            request,
            conversation_id,
            lambda: service(
                conversation_id=conversation_id,
                agent=agent,
                client_msg_id=data["client_msg_id"],
                text=data["text"],
            ),
        )
    raise Http404("Unknown action.")


# The console's own files (public: the login page uses the CSS), served by Django because
# Daphne serves no static files (see apps/widget/assets.py).
ASSETS = {"console.js": "text/javascript; charset=utf-8", "console.css": "text/css; charset=utf-8"}


@require_GET
def asset(request: HttpRequest, name: str) -> HttpResponse:
    content_type = ASSETS.get(name)
    found = finders.find(f"console/{name}") if content_type else None
    if not found:
        raise Http404("No such console file.")
    response = HttpResponse(Path(found).read_bytes(), content_type=content_type)
    response["Cache-Control"] = "private, no-cache"
    return response
