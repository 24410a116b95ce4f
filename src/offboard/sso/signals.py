"""The break-glass admin's every password sign-in while SSO is required goes on the record."""

from typing import Any

from django.http import HttpRequest

from offboard.sso import selectors, services


def record_break_glass(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    how = getattr(request, "offboard_sign_in", None) or {"method": "password"}
    if how.get("method") == "sso":
        return
    for config in selectors.break_glass_configs(user):
        services.record_break_glass_sign_in(
            config=config,
            user=user,
            ip=request.META.get("REMOTE_ADDR") if request is not None else None,
            user_agent=(request.headers.get("User-Agent", "")[:300] or None) if request else None,
        )
