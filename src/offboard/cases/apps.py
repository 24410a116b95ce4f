from django.apps import AppConfig


class CasesConfig(AppConfig):
    name = "offboard.cases"
    label = "cases"
