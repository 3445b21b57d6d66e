"""The test provider's people and the groups map the SSO tests give Kefu."""

from tests.support.oidc_provider.process import IdpUser

OLGA = IdpUser("olga", "olga-idp-pw", "olga@corp.example", "Olga", "Oidc", ["kefu-agents", "support"])
NORA = IdpUser("nora", "nora-idp-pw", "nora@corp.example", "Nora", "Nogroup", ["marketing"])
GROUPS_MAP = "kefu-agents=role:agent,kefu-leads=role:supervisor,support=team:support"
