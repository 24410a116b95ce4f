from django.apps import AppConfig


class InboundConfig(AppConfig):
    name = "offboard.inbound"
    label = "inbound"
