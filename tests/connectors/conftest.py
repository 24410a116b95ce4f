import uuid
from collections.abc import Iterator

import pytest

from tests.api.conftest import api, mallory_api
from tests.connectors.peers import FaultProxy, ScimServer

__all__ = ["api", "mallory_api"]  # the API fixtures, for test_api.py


@pytest.fixture(scope="session")
def scim_server() -> Iterator[ScimServer]:
    server = ScimServer().start()
    yield server
    server.stop()


@pytest.fixture
def proxy(scim_server: ScimServer) -> Iterator[FaultProxy]:
    p = FaultProxy(scim_server.port).start()
    yield p
    p.stop()


@pytest.fixture
def domain() -> str:
    """A domain of its own per test: the server is shared by the session."""
    return f"c{uuid.uuid4().hex[:10]}.example"
