"""A value the database refuses to store (PostgreSQL: a NUL character in a text field, a number
out of range) is bad input: a JSON 422, nothing written — never an HTML 500. schemathesis found
such 500s on PostgreSQL in endpoints whose schemas let a NUL through; this handler is the
backstop for every endpoint, present and future."""

from __future__ import annotations

import pytest
from django.db import DataError, connection

from guichet.status.models import ChangeSet

from .test_api import _create, _errors, portal  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db


def _database_refuses_inserts():
    def refuse(execute, sql, params, many, context):
        if sql.lstrip().upper().startswith("INSERT"):
            raise DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes")
        return execute(sql, params, many, context)
    return connection.execute_wrapper(refuse)


def test_a_value_the_database_refuses_is_a_json_422_and_changes_nothing(client, portal):  # noqa: F811
    before = ChangeSet.objects.count()
    with _database_refuses_inserts():
        response = _create(client)
    assert response.status_code == 422
    assert response["Content-Type"].startswith("application/json")
    assert _errors(response) == {("body", "a value cannot be stored: text must not contain NUL characters "
                                          "and numbers must be within range")}
    assert ChangeSet.objects.count() == before
    assert _create(client).status_code == 201  # the same request, the database willing: accepted
