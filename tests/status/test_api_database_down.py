"""While the database cannot be reached, the API answers a JSON 503 with Retry-After, never an
HTML 500 — also when the failure happens in the bearer-token lookup, before any endpoint runs."""

from __future__ import annotations

import logging

import pytest
from django.db import InterfaceError, OperationalError, connection

from .test_api import BASE, TOKEN, _auth, _create, _errors, portal  # noqa: F401 (fixture)


def _database_down(error):
    def refuse(execute, sql, params, many, context):
        raise error("connection to server at \"127.0.0.1\", port 5432 failed: Connection refused")
    return connection.execute_wrapper(refuse)


@pytest.mark.parametrize("error", [OperationalError, InterfaceError])
def test_token_lookup_with_the_database_down_is_a_json_503(client, portal, error, caplog):  # noqa: F811
    with caplog.at_level(logging.WARNING, logger="guichet.status.api"), _database_down(error):
        response = _create(client)
    assert response.status_code == 503
    assert response["Content-Type"].startswith("application/json")
    assert int(response["Retry-After"]) > 0
    assert _errors(response) == {("", "The service is temporarily unavailable; send the same request again "
                                      "in a moment.")}
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and r.name == "guichet.status.api"]
    assert len(warnings) == 1
    assert TOKEN not in warnings[0].getMessage() and "editor" not in warnings[0].getMessage()


def test_public_read_and_the_bookings_api_with_the_database_down(client, portal):  # noqa: F811
    with _database_down(OperationalError):
        for path in ("/portals", "/portals/maisons-alfort/status"):
            response = client.get(BASE + path)
            assert response.status_code == 503, path
            assert response["Retry-After"]
        response = client.get(f"{BASE}/bookings/households/me", **_auth())
        assert response.status_code == 503


def test_the_same_request_works_once_the_database_is_back(client, portal):  # noqa: F811
    with _database_down(OperationalError):
        assert _create(client).status_code == 503
    assert _create(client).status_code == 201
