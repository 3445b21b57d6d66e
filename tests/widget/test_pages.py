"""The demo host page and the widget's files, as a browser or a customer's site receives them."""

from __future__ import annotations

import hashlib
import hmac
import re
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from django.test import Client

from apps.customers.services import user_hash_for

STATIC = Path(__file__).resolve().parents[2] / "apps" / "widget" / "static" / "kefu"


def script_tags(html: str) -> list[str]:
    return re.findall(r"<script\b[^>]*>", html)


def test_demo_page_embeds_the_widget_with_one_script_tag(client: Client) -> None:
    response = client.get("/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "<title>Kefu demo shop</title>" in html
    tags = script_tags(html)
    assert len(tags) == 1
    assert 'src="/widget/kefu-widget.js"' in tags[0]
    assert 'data-kefu-url="http://testserver"' in tags[0]
    assert "data-user-id" not in tags[0]
    assert "data-user-hash" not in tags[0]
    assert "Browsing as a guest" in html


def test_demo_page_signs_in_the_demo_customer_with_a_server_computed_hash(client: Client) -> None:
    response = client.get("/", {"as": "demo-customer-1"})

    tag = script_tags(response.content.decode())[0]
    secret = settings.WIDGET_IDENTITY_SECRET.encode()
    expected = hmac.new(secret, b"demo-customer-1", hashlib.sha256).hexdigest()
    assert 'data-user-id="demo-customer-1"' in tag
    assert f'data-user-hash="{expected}"' in tag
    # The hash is the one Kefu's session endpoint verifies.
    assert expected == user_hash_for(user_id="demo-customer-1")
    assert settings.WIDGET_IDENTITY_SECRET not in response.content.decode()


def test_demo_page_ignores_unknown_shoppers(client: Client) -> None:
    tag = script_tags(client.get("/", {"as": "someone-else"}).content.decode())[0]

    assert "data-user-id" not in tag


@pytest.mark.parametrize(
    ("name", "content_type"),
    [("kefu-widget.js", "text/javascript; charset=utf-8"), ("kefu-widget.css", "text/css; charset=utf-8")],
)
def test_widget_files_have_their_content_type_and_revalidate(
    client: Client, name: str, content_type: str
) -> None:
    response = client.get(f"/widget/{name}")

    assert response.status_code == 200
    assert response["Content-Type"] == content_type
    assert response.content == (STATIC / name).read_bytes()
    assert response["Cache-Control"] == "public, max-age=300"
    assert response["Access-Control-Allow-Origin"] == "*"
    assert response["X-Content-Type-Options"] == "nosniff"
    etag = response["ETag"]

    again = client.get(f"/widget/{name}", HTTP_IF_NONE_MATCH=etag)

    assert again.status_code == 304
    assert again.content == b""
    assert again["ETag"] == etag


@pytest.mark.parametrize("name", ["kefu-widget.txt", "..%2Fviews.py", "other.js"])
def test_only_the_widget_files_are_served(client: Client, name: str) -> None:
    assert client.get(f"/widget/{name}").status_code == 404


def test_widget_script_never_builds_html_from_strings() -> None:
    """Message text and citations reach the page only as text nodes (see the XSS browser test)."""
    source = (STATIC / "kefu-widget.js").read_text()

    sinks = (
        ".innerHTML",
        ".outerHTML",
        ".insertAdjacentHTML",
        "setHTMLUnsafe",
        "createContextualFragment",
        "document.write",
        "eval(",
        "new Function",
    )
    for sink in sinks:
        assert sink not in source, sink


@pytest.mark.e2e
def test_the_web_server_serves_the_page_and_the_script(web_server) -> None:
    server = web_server()

    page = httpx.get(f"{server.http_url}/", timeout=10)
    script = httpx.get(f"{server.http_url}/widget/kefu-widget.js", timeout=10)

    assert page.status_code == 200
    assert f'data-kefu-url="{server.http_url}"' in page.text
    assert script.status_code == 200
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    assert script.content == (STATIC / "kefu-widget.js").read_bytes()
