from django.apps import AppConfig


class ConnectorsConfig(AppConfig):
    name = "offboard.connectors"
    label = "connectors"
