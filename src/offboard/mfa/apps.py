from django.apps import AppConfig


class MfaConfig(AppConfig):
    name = "offboard.mfa"
    label = "mfa"
    verbose_name = "Second factors"
    default_auto_field = "django.db.models.BigAutoField"
