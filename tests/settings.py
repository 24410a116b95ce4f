"""The test suite's settings: Offboard's own, with debug on as a developer runs them
(production is the default). Subprocesses started by tests inherit OFFBOARD_DEBUG too."""

import os

os.environ.setdefault("OFFBOARD_DEBUG", "true")

from offboard.settings import *  # noqa: F403
