"""An authentication backend placed before ModelBackend: a password is refused for a member of
an organization that requires single sign-on, except its break-glass admin. Raising
PermissionDenied stops Django's `authenticate()` from trying any later backend, so neither
ModelBackend nor a password alone lets them in (the attempt still counts as failed)."""

from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from offboard.sso.selectors import password_barred

# Set on the request when a password was refused for this reason: the login page says so.
SSO_REQUIRED_ATTR = "offboard_sso_required"


class SsoRequiredBackend:
    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> None:
        if not username or password is None:
            return None
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            return None
        config = password_barred(user)
        if config is None:
            return None
        if request is not None:
            setattr(request, SSO_REQUIRED_ATTR, config.org.slug)
        raise PermissionDenied("This organization signs in with single sign-on.")

    # No get_user(): this backend never logs anyone in, so no session names it (and Django's
    # test client's force_login, which takes the first backend with a get_user, skips it).
