from offboard.accounts.management.commands._refused import RefusedCommand


class Command(RefusedCommand):
    help = "Refused: Offboard has no installation superuser; use `offboard user create`."
    refusal = (
        "`createsuperuser` is disabled: Offboard has no installation superuser (there is no "
        "Django admin) and nobody is created without a record."
    )
