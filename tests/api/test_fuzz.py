"""Schemathesis over the whole OpenAPI document, in-process through the WSGI app: every
operation, with an admin's token and with a read-only auditor's, every check (no server
error; every status code, content type, header and body as documented; invalid input
refused; auth not ignored). Bounded and derandomized so that it fits the suite's budget;
what the fuzzer writes is rolled back with each test's transaction.

The admin's run has every phase, the coverage phase included (boundary values: 2**63, the
calendar's edges, empty and oversized strings, missing fields, unexpected methods); the
auditor's has the example and fuzzing phases, which is what a role changes: the answers to
every operation for a token that may only read.

A schema-valid request may still be refused with 422 by a rule a schema cannot state (an id
that does not exist, `from` after `to`, a date the services cannot compute with), so the
positive-data check accepts 422 besides its defaults; `details.fields` names the field.
Unknown query parameters are ignored, as HTTP APIs do (unknown body fields are refused).
"""

import copy
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from offboard.wsgi import application
from tests.api.conftest import token_for

PHASES = ("examples", "coverage", "fuzzing", "stateful")


def _config(*phases: str) -> SchemathesisConfig:
    return SchemathesisConfig.from_dict(
        {
            "phases": {phase: {"enabled": phase in phases} for phase in PHASES},
            "generation": {"allow-extra-parameters": False},
            "checks": {
                "positive_data_acceptance": {
                    "expected-statuses": ["2xx", "3xx", "401", "403", "404", "409", "422", "429"]
                }
            },
        }
    )


admin_schema = schemathesis.openapi.from_wsgi(
    "/api/v1/openapi.json", application, config=_config("examples", "coverage", "fuzzing")
)
auditor_schema = schemathesis.openapi.from_dict(
    copy.deepcopy(admin_schema.raw_schema), config=_config("examples", "fuzzing")
)
auditor_schema.app = application
auditor_schema.location = admin_schema.location

bounded = settings(
    max_examples=6,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(autouse=True)
def _connection_kept_between_requests() -> Iterator[None]:
    """The WSGI handler closes the database connection after each request; Django's test
    client keeps it, and so must we: it holds the test's transaction (PostgreSQL)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def bearer(actor: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for(actor, name='fuzz')}"}


@pytest.fixture
def admin(cast: dict[str, Any]) -> dict[str, str]:
    return bearer(cast["alice"])


@pytest.fixture
def auditor(cast: dict[str, Any]) -> dict[str, str]:
    return bearer(cast["erin"])


# Each token's run takes a minute of the suite: the admin's (every write) runs on PostgreSQL,
# production's database and the stricter one (NUL, integer ranges), the auditor's on SQLite
# (`make run`'s), so each database is fuzzed and `make test` still fuzzes both tokens.
@pytest.mark.one_pass("postgresql")
@admin_schema.parametrize()
@bounded
def test_an_admin_gets_every_answer_as_documented(case: Any, admin: dict[str, str]) -> None:
    case.call_and_validate(headers=admin)


@pytest.mark.one_pass("sqlite")
@auditor_schema.parametrize()
@bounded
def test_a_read_only_auditor_gets_every_answer_as_documented(
    case: Any, auditor: dict[str, str]
) -> None:
    case.call_and_validate(headers=auditor)
