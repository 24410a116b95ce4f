from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "offboard.core"
    label = "core"
