"""Request ids and JSON log lines (offboard.core.request_log)."""

import json
import logging
import re

from django.test import Client

from offboard.core.request_log import JsonFormatter, current_request_id


def test_each_request_gets_an_id_or_keeps_the_proxys_well_formed_one(db, caplog):
    caplog.set_level(logging.INFO, logger="offboard.request")
    fresh = Client().get("/health/live")
    assert re.fullmatch(r"[0-9a-f]{32}", fresh["X-Request-ID"])
    kept = Client().get("/health/live", HTTP_X_REQUEST_ID="lb-2f9c1e77-a1")
    assert kept["X-Request-ID"] == "lb-2f9c1e77-a1"
    for bad in ("short", "x" * 129, "has space in it", "new\nline-injected"):
        answer = Client().get("/health/live", HTTP_X_REQUEST_ID=bad)
        assert answer["X-Request-ID"] != bad and re.fullmatch(
            r"[0-9a-f]{32}", answer["X-Request-ID"]
        )
    records = [r for r in caplog.records if r.name == "offboard.request"]
    assert [r.route for r in records][:2] == ["health-live", "health-live"]
    assert records[1].status == 200 and records[1].method == "GET"
    assert current_request_id() is None  # reset once the request is answered


def test_a_request_for_a_case_logs_the_routes_name_never_its_path(case, cast, caplog):
    caplog.set_level(logging.INFO, logger="offboard.request")
    web = Client()
    web.force_login(cast["alice"].user)
    web.get(f"/cases/{case.ref}/?q=secret-token-in-query")
    (record,) = [r for r in caplog.records if r.name == "offboard.request"]
    line = JsonFormatter().format(record)
    assert case.ref not in line and "secret-token" not in line
    assert json.loads(line)["route"] == "web:case-detail"


def test_the_json_formatter_writes_one_object_with_extras_and_the_traceback():
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = logging.LogRecord(
            "offboard.x", logging.ERROR, __file__, 1, "failed %s", ("job",), sys.exc_info()
        )
    record.job_id = "j-1"
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "failed job" and entry["level"] == "ERROR"
    assert entry["logger"] == "offboard.x" and entry["job_id"] == "j-1"
    assert entry["request_id"] is None and "ValueError: boom" in entry["exception"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["time"])
