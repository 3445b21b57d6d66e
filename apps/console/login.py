"""The console's sign-in and sign-out pages.

Sign-in offers "Sign in with <OIDC_PROVIDER_NAME>" when single sign-on is configured (OIDC_ISSUER,
apps/identity) and the password form while LOCAL_LOGIN_ENABLED; with passwords off, a password
POST is refused here (and by the password backend, for every other form). Sign-out ends the Kefu
session, then sends an SSO session on to the provider's logout (the URL apps/identity kept in the
session at sign-in; this layer may not import it)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect

SSO_SIGN_OUT_URL_SESSION_KEY = "sso_sign_out_url"  # apps/identity/views.py writes it


class ConsoleLoginView(auth_views.LoginView):
    template_name = "registration/login.html"
    next_page = "console:queue"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["local_login"] = settings.LOCAL_LOGIN_ENABLED
        context["sso_name"] = settings.OIDC_PROVIDER_NAME if settings.OIDC_ISSUER else ""
        return context

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not settings.LOCAL_LOGIN_ENABLED:
            context = self.get_context_data(password_refused=True)
            return self.render_to_response(context, status=403)
        return super().post(request, *args, **kwargs)


class ConsoleLogoutView(auth_views.LogoutView):
    next_page = "console:login"

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        provider_sign_out = request.session.get(SSO_SIGN_OUT_URL_SESSION_KEY)
        response = super().post(request, *args, **kwargs)
        return HttpResponseRedirect(provider_sign_out) if provider_sign_out else response
