from django.apps import AppConfig


class CalendarConfig(AppConfig):
    name = "offboard.calendar"
    label = "calendar"
