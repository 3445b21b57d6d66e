from django.contrib.auth.views import LoginView
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.urls import include, path, re_path
from oidc_provider.views import AuthorizeView

_authorize = AuthorizeView.as_view()


def authorize_with_pkce(request: HttpRequest) -> HttpResponse:
    """The provider's authorize endpoint, refusing a request without an S256 PKCE challenge."""
    if request.method == "GET" and (
        not request.GET.get("code_challenge") or request.GET.get("code_challenge_method") != "S256"
    ):
        return HttpResponseBadRequest("this provider requires PKCE with S256")
    return _authorize(request)


urlpatterns = [
    path("accounts/login/", LoginView.as_view(template_name="idp_login.html"), name="login"),
    re_path(r"^openid/authorize/?$", authorize_with_pkce),
    path("openid/", include("oidc_provider.urls", namespace="oidc_provider")),
]
