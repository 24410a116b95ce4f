from django.apps import AppConfig


class PlaybooksConfig(AppConfig):
    name = "offboard.playbooks"
    label = "playbooks"
