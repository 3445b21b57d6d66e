"""Starting the test identity provider (serve.py) in its own process, on a free loopback port."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from apps.devstack.embedded.ports import free_port
from tests.support.process import ServerProcess, server_start

CLIENT_ID = "kefu-console"
CLIENT_SECRET = "kefu-console-test-secret"


@dataclass
class IdpUser:
    username: str
    password: str
    email: str
    first_name: str
    last_name: str
    groups: list[str] = field(default_factory=list)


@dataclass
class Provider:
    server: ServerProcess

    @property
    def url(self) -> str:
        return self.server.http_url

    @property
    def issuer(self) -> str:
        return f"{self.server.http_url}/openid"

    def kefu_env(self, **extra: str) -> dict[str, str]:
        """What a Kefu server needs to use this provider."""
        return {"OIDC_ISSUER": self.issuer, "OIDC_CLIENT_ID": CLIENT_ID, "OIDC_CLIENT_SECRET": CLIENT_SECRET,
                "OIDC_PROVIDER_NAME": "Test IdP", **extra}


def provider_start(*, directory: Path, kefu_url: str, users: list[IdpUser]) -> Provider:
    """Serve a fresh provider whose one client redirects to `kefu_url` (Kefu's origin)."""
    port = free_port()
    seed = {
        "client": {
            "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
            "redirect_uris": [f"{kefu_url}/oidc/callback/"],
            "post_logout_redirect_uris": [f"{kefu_url}/console/login/"],
        },
        "users": [vars(user) for user in users],
    }
    env = {name: value for name, value in os.environ.items() if not name.startswith(("DJANGO_", "OIDC_"))}
    env.update(OIDC_TEST_DB=str(directory / "idp.sqlite3"), OIDC_TEST_URL=f"http://127.0.0.1:{port}",
               OIDC_TEST_SEED=json.dumps(seed), PYTHONUNBUFFERED="1")
    argv = [sys.executable, "-m", "tests.support.oidc_provider.serve", str(port)]
    return Provider(server_start(argv, port=port, log=directory / "idp.log", env=env, timeout=60))
