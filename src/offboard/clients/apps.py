from django.apps import AppConfig


class ClientsConfig(AppConfig):
    name = "offboard.clients"
    label = "clients"
