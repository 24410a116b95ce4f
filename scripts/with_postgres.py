"""Run a command with DATABASE_URL pointing at the local PostgreSQL, if it is up.

Locally a missing PostgreSQL skips the run with a visible reason; with
OFFBOARD_REQUIRE_SERVICES=1 (as in .ci/run) it is a failure.
"""

import os
import subprocess
import sys

import psycopg

URL = os.environ.get("OFFBOARD_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/offboard")


def main() -> int:
    try:
        psycopg.connect(URL.rsplit("/", 1)[0] + "/postgres", connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        reason = f"PostgreSQL is not reachable at {URL}: {str(exc).strip().splitlines()[0]}"
        if os.environ.get("OFFBOARD_REQUIRE_SERVICES") == "1":
            print(f"FAILED: {reason} (OFFBOARD_REQUIRE_SERVICES=1)", file=sys.stderr)
            return 1
        print(f"SKIPPED the PostgreSQL run: {reason}", file=sys.stderr)
        return 0
    print(f"== the suite on PostgreSQL ({URL}) ==", flush=True)
    return subprocess.call(sys.argv[1:], env={**os.environ, "DATABASE_URL": URL})


if __name__ == "__main__":
    sys.exit(main())
