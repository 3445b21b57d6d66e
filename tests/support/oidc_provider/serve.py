"""`python -m tests.support.oidc_provider.serve PORT`: migrate the provider's SQLite database, seed
it from OIDC_TEST_SEED (JSON: `client` and `users`, see process.py) and serve on 127.0.0.1:PORT.

This process never loads Kefu's settings: it is the company's identity provider, not Kefu."""

from __future__ import annotations

import json
import os
import sys
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        sys.stderr.write(f"idp {format % args}\n")


def seed(data: dict) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from django.contrib.auth.models import Group, User
    from oidc_provider.models import Client, ResponseType, RSAKey

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption()).decode()
    RSAKey.objects.create(key=pem)
    spec = data["client"]
    client = Client.objects.create(
        name="Kefu", client_type="confidential", client_id=spec["client_id"],
        client_secret=spec["client_secret"], jwt_alg="RS256", require_consent=False, reuse_consent=True,
    )
    client.redirect_uris = spec["redirect_uris"]
    client.post_logout_redirect_uris = spec["post_logout_redirect_uris"]
    client.scope = ["openid", "email", "profile", "groups"]
    client.save()
    client.response_types.add(ResponseType.objects.get(value="code"))
    for person in data["users"]:
        user = User.objects.create_user(
            username=person["username"], password=person["password"], email=person["email"],
            first_name=person["first_name"], last_name=person["last_name"],
        )
        for name in person["groups"]:
            user.groups.add(Group.objects.get_or_create(name=name)[0])


def main() -> None:
    port = int(sys.argv[1])
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.support.oidc_provider.settings"
    import django

    django.setup()
    from django.core.management import call_command
    from django.core.wsgi import get_wsgi_application

    call_command("migrate", verbosity=0, interactive=False)
    seed(json.loads(os.environ["OIDC_TEST_SEED"]))
    server = make_server("127.0.0.1", port, get_wsgi_application(),
                         server_class=_ThreadingServer, handler_class=_QuietHandler)
    server.serve_forever()


if __name__ == "__main__":
    main()
