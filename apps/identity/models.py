"""Which identity-provider account (issuer + `sub`) a Kefu user signs in with.

Matched by `sub`, never by e-mail or username: those can be reassigned at the provider, the
subject of one issuer cannot (OpenID Connect Core §5.7)."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class OidcIdentity(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="oidc_identity"
    )
    issuer = models.CharField(max_length=255)
    subject = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)
    last_sign_in_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "single sign-on identity"
        verbose_name_plural = "single sign-on identities"
        constraints = [
            models.UniqueConstraint(fields=["issuer", "subject"], name="identity_issuer_subject_unique")
        ]

    def __str__(self) -> str:
        return f"{self.subject} @ {self.issuer}"
