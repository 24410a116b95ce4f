from django.apps import AppConfig


class RemindersConfig(AppConfig):
    name = "offboard.reminders"
    label = "reminders"
