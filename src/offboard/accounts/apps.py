from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "offboard.accounts"
    label = "accounts"
