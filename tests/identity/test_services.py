"""Who a provider account becomes in Kefu (apps/identity/services.py): matched by issuer + `sub`,
created only with a mapped role, its role and mapped teams re-applied at every sign-in."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from apps.audit.models import AuditEntry
from apps.console.roles import staff_role
from apps.identity.config import GroupRule, groups_map_parse
from apps.identity.models import OidcIdentity
from apps.identity.services import SignInRefused, oidc_user_sign_in
from apps.teams.models import Team
from tests.support.people import make_user

pytestmark = pytest.mark.django_db

ISSUER = "https://idp.example.com/realms/staff"
RULES = groups_map_parse(
    "kefu-agents=role:agent, kefu-leads=role:supervisor, kefu-admins=role:admin,"
    "support=team:support, billing=team:billing"
)


@pytest.fixture(autouse=True)
def teams() -> None:
    for slug in ("support", "billing", "tier2"):
        Team.objects.create(name=slug.title(), slug=slug)


def sign_in(sub: str = "u-1", groups: list[str] | None = None, rules: list[GroupRule] = RULES,
            match_email: bool = False, **claims):
    claims = {"sub": sub, "email": "olga@corp.example", "given_name": "Olga", "family_name": "Oidc",
              "preferred_username": "olga", "groups": groups or [], **claims}
    return oidc_user_sign_in(issuer=ISSUER, claims=claims, rules=rules, groups_claim="groups",
                             match_email=match_email)


def team_slugs(user) -> list[str]:
    return sorted(user.teams.values_list("slug", flat=True))


def test_the_groups_map_reads_roles_and_teams_and_names_a_bad_entry() -> None:
    assert groups_map_parse("kefu-supervisors=role:supervisor,support=team:support") == [
        GroupRule("kefu-supervisors", "role", "supervisor"), GroupRule("support", "team", "support"),
    ]
    assert groups_map_parse("") == []
    with pytest.raises(ValueError, match="'ops=role:root': the role must be one of agent, supervisor, admin"):
        groups_map_parse("ops=role:root")
    with pytest.raises(ValueError, match="'ops' is not `group=role:NAME`"):
        groups_map_parse("ops")


def test_a_first_sign_in_creates_a_staff_user_with_the_role_and_teams_of_the_groups_claim() -> None:
    user = sign_in(groups=["kefu-agents", "support", "unrelated"])
    assert (user.username, user.email, user.get_full_name()) == ("olga", "olga@corp.example", "Olga Oidc")
    assert user.is_staff and not user.is_superuser and not user.has_usable_password()
    assert staff_role(user) == "agent"
    assert team_slugs(user) == ["support"]
    assert OidcIdentity.objects.get(user=user).subject == "u-1"


def test_the_groups_are_applied_again_at_every_sign_in() -> None:
    user = sign_in(groups=["kefu-agents", "support"])
    user.teams.add(Team.objects.get(slug="tier2"))  # given by an admin, not by the map
    again = sign_in(groups=["kefu-agents", "kefu-leads", "billing"], given_name="Olga-Maria")
    assert again.pk == user.pk and get_user_model().objects.count() == 1
    assert staff_role(again) == "supervisor"  # the highest mapped role
    assert team_slugs(again) == ["billing", "tier2"]
    assert again.first_name == "Olga-Maria"
    sign_in(groups=["kefu-agents", "kefu-leads", "billing"])  # nothing changes: nothing audited
    changes = AuditEntry.objects.filter(action="identity.access_sync", target_id=str(user.pk)).order_by("at")
    assert [(c.before["roles"], c.after["roles"], c.after["teams"]) for c in changes] == [
        ([], ["agent"], ["support"]),
        (["agent"], ["supervisor"], ["billing", "tier2"]),
    ]


def test_no_mapped_role_is_refused_and_creates_nobody() -> None:
    with pytest.raises(SignInRefused) as refused:
        sign_in(groups=["support", "marketing"])
    assert refused.value.reason == "no_role"
    assert get_user_model().objects.count() == 0 and OidcIdentity.objects.count() == 0


def test_a_user_removed_from_every_mapped_group_loses_the_console() -> None:
    user = sign_in(groups=["kefu-admins", "support"])
    with pytest.raises(SignInRefused):
        sign_in(groups=[])
    user.refresh_from_db()
    assert not user.is_staff and staff_role(user) is None and team_slugs(user) == []


def test_a_deactivated_user_is_refused_whatever_the_groups() -> None:
    user = sign_in(groups=["kefu-agents"])
    type(user).objects.filter(pk=user.pk).update(is_active=False)
    with pytest.raises(SignInRefused) as refused:
        sign_in(groups=["kefu-admins"])
    assert refused.value.reason == "inactive"
    user.refresh_from_db()
    assert staff_role(user) is None  # nothing applied


def test_an_existing_account_is_linked_by_email_only_when_verified_and_allowed() -> None:
    existing = make_user("olga@corp.example", "Olga", "Local")
    not_allowed = sign_in(sub="u-1", groups=["kefu-agents"], email_verified=True)
    assert not_allowed.pk != existing.pk
    assert not_allowed.username.startswith("olga") and not_allowed.username != existing.username

    unverified = sign_in(sub="u-2", groups=["kefu-agents"], preferred_username=None, match_email=True,
                         email_verified=False)
    assert unverified.pk != existing.pk
    assert unverified.username.startswith("olga@corp.example-")  # the owner of the name keeps it

    linked = sign_in(sub="u-3", groups=["kefu-agents"], match_email=True, email_verified="true")
    assert linked.pk == existing.pk
    assert OidcIdentity.objects.get(user=existing).subject == "u-3"


def test_the_same_subject_at_another_issuer_is_another_person() -> None:
    first = sign_in(groups=["kefu-agents"])
    other = oidc_user_sign_in(issuer="https://other.example.com", rules=RULES, groups_claim="groups",
                              claims={"sub": "u-1", "groups": ["kefu-agents"]}, match_email=False)
    assert other.pk != first.pk and other.username == "sso-u-1"


def test_everyone_can_be_mapped_when_the_provider_sends_no_groups() -> None:
    user = sign_in(groups=None, rules=groups_map_parse("*=role:agent,*=team:support"))
    assert staff_role(user) == "agent" and team_slugs(user) == ["support"]
