"""The SSO endpoints: /oidc/authenticate/ sends the browser to the provider (state, nonce and a
PKCE S256 challenge kept in the session), /oidc/callback/ swaps the code and signs in, or shows
why not. The admin's login page follows LOCAL_LOGIN_ENABLED too."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import admin
from django.core.exceptions import SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.generic import View
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from .backends import REFUSAL_ATTR
from .config import local_login_enabled, oidc_setting, sso_enabled
from .discovery import ProviderUnavailable, provider_metadata
from .services import SignInRefused

# Read by the console's sign-out view (which may not import this app): where to send the browser
# after the Kefu session ends, i.e. the provider's end_session_endpoint.
SIGN_OUT_URL_SESSION_KEY = "sso_sign_out_url"


def _refused(request: HttpRequest, refusal: SignInRefused, status: int) -> HttpResponse:
    context = {"message": refusal.message, "reason": refusal.reason, "provider": settings.OIDC_PROVIDER_NAME}
    return render(request, "identity/refused.html", context, status=status)


class SsoStartView(OIDCAuthenticationRequestView):
    get_settings = staticmethod(oidc_setting)

    def __init__(self, **kwargs: Any) -> None:
        View.__init__(self, **kwargs)  # the endpoint comes from discovery, per request

    def get(self, request: HttpRequest) -> HttpResponse:
        if not sso_enabled():
            raise Http404("single sign-on is not configured")
        try:
            self.OIDC_OP_AUTH_ENDPOINT = provider_metadata()["authorization_endpoint"]
        except ProviderUnavailable:
            refusal = SignInRefused(
                "provider", "The identity provider cannot be reached. Try again in a moment."
            )
            return _refused(request, refusal, status=502)
        self.OIDC_RP_CLIENT_ID = settings.OIDC_CLIENT_ID
        return super().get(request)


class SsoCallbackView(OIDCAuthenticationCallbackView):
    get_settings = staticmethod(oidc_setting)

    def get(self, request: HttpRequest) -> HttpResponse:
        if not sso_enabled():
            raise Http404("single sign-on is not configured")
        try:
            return super().get(request)
        except SuspiciousOperation:  # a state this browser never sent: a replay or a stale tab
            return self.login_failure()

    def login_success(self) -> HttpResponse:
        response = super().login_success()
        id_token = self.request.session.pop("oidc_id_token", None)
        if url := sign_out_url(request=self.request, id_token=id_token):
            self.request.session[SIGN_OUT_URL_SESSION_KEY] = url
        return response

    def login_failure(self) -> HttpResponse:
        refusal = getattr(self.request, REFUSAL_ATTR, None)
        if refusal is None:
            error = self.request.GET.get("error")
            refusal = SignInRefused(
                error or "failed",
                "The identity provider did not sign you in"
                + (f" ({error})." if error else ".") + " Start again from the sign-in page.",
            )
        return _refused(self.request, refusal, status=403)


def sign_out_url(*, request: HttpRequest, id_token: str | None) -> str | None:
    """RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0) at the provider's
    end_session_endpoint, back to the console's sign-in page; None when it has none (Google)."""
    try:
        endpoint = provider_metadata().get("end_session_endpoint")
    except ProviderUnavailable:
        return None
    if not endpoint:
        return None
    params = {"client_id": settings.OIDC_CLIENT_ID,
              "post_logout_redirect_uri": request.build_absolute_uri(reverse("console:login"))}
    if id_token:
        params["id_token_hint"] = id_token
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{urlencode(params)}"


def admin_login(request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
    """/admin/login/: the console's sign-in page (SSO) once passwords are switched off."""
    if not local_login_enabled():
        query = urlencode({"next": request.GET.get("next") or reverse("admin:index")})
        return HttpResponseRedirect(f"{reverse('console:login')}?{query}")
    return admin.site.login(request, extra_context)
