"""The console's language: the agent's preference (AgentProfile.language), else Django's language
cookie or the browser's Accept-Language (LocaleMiddleware). The switch in the top bar saves the
preference and sets the cookie too, so pages outside `staff_required` (the CRM panel, the login
page after signing out) follow it."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from apps.conversations.language import supported

from .models import AgentProfile


def agent_language_get(*, user_id: int) -> str:
    return AgentProfile.objects.filter(user_id=user_id).values_list("language", flat=True).first() or ""


def agent_language_set(*, user_id: int, language: str) -> str:
    """Save the agent's console language ("" = follow the browser); returns what was saved."""
    code = supported(language) if language else ""
    AgentProfile.objects.update_or_create(user_id=user_id, defaults={"language": code})
    return code


def agent_language_activate(request: HttpRequest) -> None:
    """Render this request in the agent's preferred language, when they chose one."""
    code = agent_language_get(user_id=request.user.pk)
    if code:
        translation.activate(code)
        request.LANGUAGE_CODE = code


@require_POST
def agent_language_view(request: HttpRequest) -> HttpResponse:
    """The top bar's language switch: POST `language` (and `next`)."""
    if not (request.user.is_authenticated and request.user.is_staff):
        return HttpResponse(status=403)
    code = agent_language_set(user_id=request.user.pk, language=request.POST.get("language", ""))
    target = request.POST.get("next") or "/console/"
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = "/console/"
    response = HttpResponseRedirect(target)
    if code:
        response.set_cookie(settings.LANGUAGE_COOKIE_NAME, code, max_age=365 * 24 * 3600, samesite="Lax")
    else:
        response.delete_cookie(settings.LANGUAGE_COOKIE_NAME)
    return response
