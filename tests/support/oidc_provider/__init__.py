"""A real OpenID Connect provider for the SSO tests: a small Django project on django-oidc-provider,
run in a process of its own (its own SQLite database and settings) on a loopback port.

`provider_start(...)` (process.py) migrates, seeds an RSA signing key, one confidential client
and users with a `groups` claim, and serves it; the authorization endpoint refuses a request
without a PKCE S256 challenge, so a sign-in that works proves Kefu sent one."""
