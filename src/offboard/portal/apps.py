from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "offboard.portal"
    label = "portal"
