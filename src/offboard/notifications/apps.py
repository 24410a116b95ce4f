from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "offboard.notifications"
    label = "notifications"
