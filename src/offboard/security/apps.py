from django.apps import AppConfig


class SecurityConfig(AppConfig):
    name = "offboard.security"
    label = "security"
    verbose_name = "Sign-in, sessions and password reset"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed

        from offboard.security import signals

        user_logged_in.connect(signals.signed_in, dispatch_uid="offboard.security.signed_in")
        user_logged_out.connect(signals.signed_out, dispatch_uid="offboard.security.signed_out")
        user_login_failed.connect(
            signals.sign_in_failed, dispatch_uid="offboard.security.sign_in_failed"
        )
