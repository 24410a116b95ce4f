from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "offboard.jobs"
    label = "jobs"
