from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "offboard.webhooks"
    label = "webhooks"

    def ready(self) -> None:
        # Every recorded event is offered to the organization's endpoints, in its transaction.
        from offboard.ledger.recorder import on_record
        from offboard.webhooks.fanout import fan_out

        on_record(fan_out)
