"""The claims the test provider hands out: the standard profile and e-mail, and `groups` (the
names of the user's Django groups in the provider's own database) for the `groups` scope."""

from typing import Any

from oidc_provider.lib.claims import ScopeClaims


def userinfo(claims: dict[str, Any], user: Any) -> dict[str, Any]:
    claims.update(
        name=f"{user.first_name} {user.last_name}".strip(), given_name=user.first_name,
        family_name=user.last_name, preferred_username=user.username, email=user.email,
        email_verified=True,
    )
    return claims


class GroupsClaims(ScopeClaims):
    info_groups = ("Groups", "The groups you belong to.")

    def scope_groups(self) -> dict[str, Any]:
        return {"groups": sorted(self.user.groups.values_list("name", flat=True))}
