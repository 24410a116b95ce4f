"""`offboard case show` says how each settled register fact is known and when (decision 0008)."""

import datetime as dt
import json

from typer.testing import CliRunner

from offboard.cases.services import update_register_item
from offboard.cli import app
from offboard.cli.case_view import known
from offboard.core import clock


def test_case_show_says_who_recorded_each_fact_and_when_it_happened(case, cast, monkeypatch):
    for name in ("OFFBOARD_ORG", "OFFBOARD_USER"):
        monkeypatch.delenv(name, raising=False)
    item = case.handover_items.order_by("id").first()
    happened = (clock.now() - dt.timedelta(days=5)).replace(second=0, microsecond=0)
    update_register_item(
        actor=cast["alice"],
        item=item,
        values={"status": "handed_over", "method": "Admin moved", "handed_over_at": happened},
    )

    shown = CliRunner().invoke(app, ["case", "show", case.ref, "--json"])
    printed = CliRunner().invoke(app, ["case", "show", case.ref], env={"COLUMNS": "250"})

    assert shown.exit_code == 0 and printed.exit_code == 0
    row = next(
        i for i in json.loads(shown.stdout)["registers"]["handover_items"] if i["id"] == item.pk
    )
    assert row["source"] == "staff" and row["source_detail"] == {"name": "Alice"}
    assert row["recorded_by"] == "alice" and row["occurred_at"] == happened.isoformat()
    assert "How it is known" in printed.stdout
    # What the table's last column says for the row (Rich wraps it to the terminal's width).
    said = known(row)
    assert said.startswith("Handed over — recorded by staff (Alice) · happened ")
    assert f"happened {happened:%Y-%m-%d %H:%M} · recorded " in said
