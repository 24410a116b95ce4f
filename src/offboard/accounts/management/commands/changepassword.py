from offboard.accounts.management.commands._refused import RefusedCommand


class Command(RefusedCommand):
    help = "Refused: passwords change with `offboard user set-password`, which records an event."
    refusal = "`changepassword` is disabled: it would change a password with no record."
