from django.apps import AppConfig


class EvidenceConfig(AppConfig):
    name = "offboard.evidence"
    label = "evidence"
