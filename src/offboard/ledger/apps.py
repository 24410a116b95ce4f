from django.apps import AppConfig


class LedgerConfig(AppConfig):
    name = "offboard.ledger"
    label = "ledger"
