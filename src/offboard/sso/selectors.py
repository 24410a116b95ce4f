"""Reading an organization's single sign-on: its configuration, whose password still works."""

from offboard.accounts.models import Membership, Organization, User
from offboard.core.sealing import unseal
from offboard.sso.models import SsoConfig


def config_of(org: Organization) -> SsoConfig | None:
    return SsoConfig.objects.select_related("org", "break_glass").filter(org=org).first()


def config_for_slug(slug: str) -> SsoConfig | None:
    return SsoConfig.objects.select_related("org").filter(org__slug=slug.strip().lower()).first()


def config_for_login(text: str) -> SsoConfig | None:
    """The SSO an organization's slug, or a member's e-mail address, leads to."""
    text = (text or "").strip().lower()
    if "@" not in text:
        return config_for_slug(text) if text else None
    domain = text.rsplit("@", 1)[1]
    for config in SsoConfig.objects.select_related("org").order_by("pk"):
        if domain in config.allowed_domains:
            return config
    return None


def client_secret(config: SsoConfig) -> str:
    return unseal(config.client_secret_sealed, context=config.seal_context).decode()


def password_barred(user: User) -> SsoConfig | None:
    """The SSO that stops this user's password: a membership of an organization that requires
    single sign-on, unless they are its break-glass admin."""
    orgs = Membership.objects.filter(user=user).values_list("org_id", flat=True)
    for config in SsoConfig.objects.select_related("org").filter(
        org_id__in=list(orgs), sso_required=True
    ):
        if config.break_glass_id != user.pk:
            return config
    return None


def break_glass_configs(user: User) -> list[SsoConfig]:
    """The organizations requiring SSO where this user is the break-glass admin."""
    return list(SsoConfig.objects.select_related("org").filter(break_glass=user, sso_required=True))
