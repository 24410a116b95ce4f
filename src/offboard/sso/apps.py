from django.apps import AppConfig


class SsoConfig(AppConfig):
    name = "offboard.sso"
    label = "sso"
    verbose_name = "Single sign-on"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from offboard.sso.signals import record_break_glass

        user_logged_in.connect(record_break_glass, dispatch_uid="offboard.sso.break_glass")
