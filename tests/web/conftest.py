"""The portal's fixtures (a case with work delivered, Nina North, an issued link, another
client's case) serve the workspace's Client portal tests too."""

from tests.portal.conftest import (  # noqa: F401
    files,
    issued,
    nina,
    other_case,
    portal_case,
)
