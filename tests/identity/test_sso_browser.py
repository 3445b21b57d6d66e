"""Single sign-on end to end in Chromium: a real OpenID Connect provider (django-oidc-provider, its
own process and database, PKCE required) and a real Kefu server on loopback.

The login page's screenshot is kept in the test's tmp dir (and copied to KEFU_SCREENS_DIR)."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Page, expect

from apps.console.roles import staff_role
from apps.devstack.embedded.ports import free_port
from apps.identity.models import OidcIdentity
from apps.teams.models import Team
from tests.support.browser import beside_playwright, screenshot
from tests.support.oidc_provider.people import GROUPS_MAP, NORA, OLGA
from tests.support.people import make_user

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def start(web_server, identity_provider, **env: str):
    port = free_port()
    provider = identity_provider(f"http://127.0.0.1:{port}")
    return provider, web_server(port=port, **provider.kefu_env(OIDC_GROUPS_MAP=GROUPS_MAP, **env))


def sign_in_at_provider(page: Page, person) -> None:
    expect(page.get_by_role("heading", name="Test IdP")).to_be_visible()
    page.get_by_label("IdP username").fill(person.username)
    page.get_by_label("IdP password").fill(person.password)
    page.get_by_role("button", name="Log in to Test IdP").click()


def olga_in_kefu() -> dict:
    link = OidcIdentity.objects.select_related("user").get()
    user = link.user
    return {"username": user.username, "staff": user.is_staff, "role": staff_role(user),
            "teams": sorted(user.teams.values_list("slug", flat=True)), "subject": link.subject,
            "issuer": link.issuer}


def test_an_agent_signs_in_with_sso_gets_role_and_team_from_groups_and_signs_out(
    web_server, identity_provider, page, tmp_path
) -> None:
    beside_playwright(Team.objects.create, name="Support", slug="support")
    provider, server = start(web_server, identity_provider)
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))

    page.goto(f"{server.http_url}/console/")
    expect(page).to_have_url(f"{server.http_url}/console/login/?next=/console/")
    sso = page.get_by_role("link", name="Sign in with Test IdP")
    expect(sso).to_be_visible()
    expect(page.get_by_label("Password")).to_be_visible()  # passwords still allowed by default
    screenshot(page, tmp_path, "sso-login")

    sso.click()
    sign_in_at_provider(page, OLGA)
    expect(page).to_have_url(f"{server.http_url}/console/")
    expect(page.locator("#kf-conn")).to_have_text("Live · Olga Oidc")  # the agent socket is open

    authorize = next(url for url in requests if url.startswith(f"{provider.issuer}/authorize?"))
    assert "code_challenge_method=S256" in authorize and "nonce=" in authorize and "state=" in authorize
    assert beside_playwright(olga_in_kefu) == {
        "username": "olga", "staff": True, "role": "agent", "teams": ["support"], "subject": "1",
        "issuer": provider.issuer,
    }

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{server.http_url}/console/login/")
    end_session = [url for url in requests if url.startswith(f"{provider.issuer}/end-session?")]
    assert len(end_session) == 1 and "id_token_hint=" in end_session[0]
    page.goto(f"{server.http_url}/console/")  # the Kefu session is over
    expect(page).to_have_url(f"{server.http_url}/console/login/?next=/console/")
    page.get_by_role("link", name="Sign in with Test IdP").click()  # and so is the provider's
    expect(page.get_by_label("IdP username")).to_be_visible()


def test_someone_whose_groups_map_to_no_role_is_refused(web_server, identity_provider, page) -> None:
    _, server = start(web_server, identity_provider)
    page.goto(f"{server.http_url}/console/login/")
    page.get_by_role("link", name="Sign in with Test IdP").click()
    sign_in_at_provider(page, NORA)
    expect(page.get_by_role("heading", name="You are not signed in")).to_be_visible()
    expect(page.get_by_role("alert")).to_have_text(
        "Your account is in none of the groups that give access to Kefu (agent, supervisor or admin). "
        "Ask your administrator to add you to one, then sign in again."
    )
    assert beside_playwright(OidcIdentity.objects.count) == 0
    page.goto(f"{server.http_url}/console/")
    expect(page).to_have_url(f"{server.http_url}/console/login/?next=/console/")


def test_with_local_login_off_only_sso_signs_in(web_server, identity_provider, page) -> None:
    beside_playwright(make_user, username="alice@example.com", first="Alice", last="Agent")
    _, server = start(web_server, identity_provider, LOCAL_LOGIN_ENABLED="false")

    page.goto(f"{server.http_url}/console/login/")
    expect(page.get_by_role("link", name="Sign in with Test IdP")).to_be_visible()
    expect(page.get_by_label("Password")).to_have_count(0)

    # A password POST all the same (an old tab, a script): the page has no form, so the client
    # brings its own CSRF secret, which Django accepts when cookie and field match.
    secret = "k" * 32
    with httpx.Client(base_url=server.http_url, cookies={"csrftoken": secret}) as client:
        refused = client.post("/console/login/", data={
            "username": "alice@example.com", "password": "pw", "csrfmiddlewaretoken": secret,
        }, headers={"Referer": f"{server.http_url}/console/login/"})
        assert refused.status_code == 403
        assert "Password sign-in is switched off here. Sign in with Test IdP." in refused.text
        assert client.get("/console/").headers["location"] == "/console/login/?next=/console/"
        admin = client.get("/admin/login/?next=/admin/")
        assert (admin.status_code, admin.headers["location"]) == (302, "/console/login/?next=%2Fadmin%2F")

    page.get_by_role("link", name="Sign in with Test IdP").click()
    sign_in_at_provider(page, OLGA)
    expect(page.locator("#kf-conn")).to_have_text("Live · Olga Oidc")
