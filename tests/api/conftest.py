"""Calling the REST API as a member of the cast: `api("alice").get("/cases")`."""

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from offboard.core.actor import Actor

PREFIX = "/api/v1"


class Api:
    """A test client for /api/v1 that sends one bearer token and speaks JSON by default."""

    def __init__(self, token: str | None) -> None:
        self.token = token
        self.client = Client()

    def _headers(self) -> dict[str, str]:
        return {"HTTP_AUTHORIZATION": f"Bearer {self.token}"} if self.token else {}

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return self.client.get(PREFIX + path, params or {}, **self._headers())

    def post(self, path: str, body: Any = None) -> Any:
        return self.client.post(
            PREFIX + path,
            json.dumps(body if body is not None else {}),
            content_type="application/json",
            **self._headers(),
        )

    def patch(self, path: str, body: Any = None) -> Any:
        return self.client.patch(
            PREFIX + path,
            json.dumps(body if body is not None else {}),
            content_type="application/json",
            **self._headers(),
        )

    def put(self, path: str, body: Any = None) -> Any:
        return self.client.put(
            PREFIX + path,
            json.dumps(body if body is not None else {}),
            content_type="application/json",
            **self._headers(),
        )

    def delete(self, path: str) -> Any:
        return self.client.delete(PREFIX + path, **self._headers())

    def post_raw(self, path: str, data: bytes | str, content_type: str) -> Any:
        return self.client.post(PREFIX + path, data, content_type=content_type, **self._headers())

    def upload(
        self, path: str = "/evidence", content: bytes = b"%PDF-1.4 proof\n", name: str = "proof.pdf"
    ) -> Any:
        return self.client.post(
            PREFIX + path, {"file": SimpleUploadedFile(name, content)}, **self._headers()
        )

    def call(self, method: str, path: str, body: Any = None) -> Any:
        if method == "GET":
            return self.get(path)
        if method == "DELETE":
            return self.delete(path)
        if method == "UPLOAD":
            return self.upload(path)
        return getattr(self, method.lower())(path, body)


def token_for(actor: Actor, name: str = "tests", scopes: list[str] | None = None) -> str:
    """A plain token for `actor`: every scope unless `scopes` says which, the default expiry."""
    from offboard.accounts.services import create_api_token

    return create_api_token(actor=actor, name=name, scopes=scopes)[1]


@pytest.fixture
def api(cast: dict[str, Actor]) -> Callable[[str], Api]:
    """`api("bob")`: a client authenticated as a member of Acme (one token per person, made up
    front so that counting events in a test counts only what the test did)."""
    clients = {name: Api(token_for(actor)) for name, actor in cast.items()}
    return clients.__getitem__


@pytest.fixture
def mallory_api(mallory: Actor) -> Api:
    return Api(token_for(mallory))


def fields_of(response: Any) -> dict[str, list[str]]:
    body = response.json()
    assert "error" in body, body
    return body["error"]["details"].get("fields", {})
