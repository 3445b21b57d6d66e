"""Discovery against the real test provider, the start of the code flow (state, nonce, PKCE S256),
what the pages do with SSO off or passwords off, and the refusals that need no browser."""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth import authenticate
from django.test import RequestFactory

from apps.devstack.embedded.ports import free_port
from apps.identity.discovery import ProviderUnavailable, provider_metadata
from tests.support.oidc_provider.process import CLIENT_ID
from tests.support.people import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def idp(identity_provider, settings):
    provider = identity_provider("http://testserver")
    for name, value in provider.kefu_env().items():
        setattr(settings, name, value)
    return provider


def test_discovery_reads_the_providers_endpoints(idp) -> None:
    metadata = provider_metadata()
    assert metadata["issuer"] == idp.issuer
    assert {name: metadata[name] for name in ("authorization_endpoint", "token_endpoint", "jwks_uri",
                                              "end_session_endpoint")} == {
        "authorization_endpoint": f"{idp.issuer}/authorize", "token_endpoint": f"{idp.issuer}/token",
        "jwks_uri": f"{idp.issuer}/jwks", "end_session_endpoint": f"{idp.issuer}/end-session",
    }


def test_discovery_refuses_a_document_that_names_another_issuer(idp) -> None:
    # The same provider reached as `localhost` still says it is 127.0.0.1: its keys are not ours to trust.
    with pytest.raises(ProviderUnavailable, match="names the issuer 'http://127.0.0.1:"):
        provider_metadata(issuer=idp.issuer.replace("127.0.0.1", "localhost"))
    with pytest.raises(ProviderUnavailable, match="404"):
        provider_metadata(issuer=idp.url)  # no /openid: no document


def test_the_sso_button_starts_the_code_flow_with_state_nonce_and_pkce(idp, client) -> None:
    page = client.get("/console/login/?next=/console/")
    assert 'href="/oidc/authenticate/?next=/console/">Sign in with Test IdP</a>' in page.content.decode()
    response = client.get("/oidc/authenticate/?next=/console/")
    assert response.status_code == 302
    target = urlsplit(response["Location"])
    query = {name: values[0] for name, values in parse_qs(target.query).items()}
    assert f"{target.scheme}://{target.netloc}{target.path}" == f"{idp.issuer}/authorize"
    [(state, stored)] = client.session["oidc_states"].items()
    verifier = stored["code_verifier"]
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    assert query == {
        "response_type": "code", "client_id": CLIENT_ID, "scope": "openid email profile groups",
        "redirect_uri": "http://testserver/oidc/callback/", "state": state, "nonce": stored["nonce"],
        "code_challenge": challenge, "code_challenge_method": "S256",
    }
    assert len(verifier) == 64 and client.session["oidc_login_next"] == "/console/"


def test_a_callback_for_a_sign_in_this_browser_never_started_is_refused(idp, client) -> None:
    client.get("/oidc/authenticate/")
    response = client.get("/oidc/callback/?code=stolen&state=not-ours")
    assert response.status_code == 403
    assert "The identity provider did not sign you in. Start again" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_an_unreachable_provider_gets_a_page_not_an_error(settings, client) -> None:
    settings.OIDC_ISSUER, settings.OIDC_CLIENT_ID = f"http://127.0.0.1:{free_port()}/openid", CLIENT_ID
    response = client.get("/oidc/authenticate/")
    assert response.status_code == 502
    assert "The identity provider cannot be reached. Try again in a moment." in response.content.decode()


def test_without_an_issuer_there_is_no_sso(client) -> None:
    assert "Sign in with" not in client.get("/console/login/").content.decode()
    assert client.get("/oidc/authenticate/").status_code == 404
    assert client.get("/oidc/callback/?code=x&state=y").status_code == 404


def test_with_local_login_off_no_password_is_accepted_anywhere(settings, client) -> None:
    user = make_user("alice@example.com", "Alice", "Agent")
    request = RequestFactory().post("/somewhere/")
    assert authenticate(request, username="alice@example.com", password="pw") == user
    settings.LOCAL_LOGIN_ENABLED = False
    assert authenticate(request, username="alice@example.com", password="pw") is None
    response = client.post("/admin/login/", {"username": "alice@example.com", "password": "pw"})
    assert (response.status_code, response["Location"]) == (302, "/console/login/?next=%2Fadmin%2F")
    assert "_auth_user_id" not in client.session


def test_a_password_session_signs_out_locally(client) -> None:
    client.force_login(make_user("alice@example.com", "Alice", "Agent"))
    response = client.post("/console/logout/")
    assert (response.status_code, response["Location"]) == (302, "/console/login/")
    assert "_auth_user_id" not in client.session
