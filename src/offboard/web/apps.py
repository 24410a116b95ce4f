from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "offboard.web"
    label = "web"
