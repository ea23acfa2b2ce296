"""Hostile input against the whole JSON API: schemathesis generates requests for every operation
of the OpenAPI schema (valid and invalid ones); the server must never answer 5xx.

Bounded in time: ``MAX_EXAMPLES`` generated requests per operation, derandomized (the same
requests on every run, so a failure reproduces). Authenticated as a superuser holding a bearer
token, so that the generated requests reach the code behind the permission checks.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.contrib.auth import get_user_model
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings

from guichet.accounts.services import token_create
from guichet.bookings.models import Guardian
from guichet.common.actor import Actor
from tests.bookings.test_services import World

MAX_EXAMPLES = 12


@pytest.fixture
def api_schema(db):
    # Requests go through the WSGI handler in this thread, on the test's connection: like
    # Django's test client, do not let each request's end close that connection.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield schemathesis.openapi.from_wsgi("/api/v1/openapi.json", get_wsgi_application())
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def token(db):
    world = World(capacity=3)
    world.session()
    household, _children = world.household(children=2)
    root = get_user_model().objects.create_superuser("root@example.org", "root@example.org", "x" * 12)
    Guardian.objects.create(organisation=world.org, household=household, user=root)
    _token, raw = token_create(email="root@example.org", name="fuzz", actor=Actor.cli())
    return raw


def _operations(api_schema):
    for result in api_schema.get_all_operations():
        yield result.ok()


def test_no_operation_answers_a_server_error(api_schema, token):
    # schemathesis' pytest plugin does not run under this pytest; its Hypothesis strategies do.
    operations = list(_operations(api_schema))
    assert len(operations) >= 15  # every operation of the schema, not a few
    failures: list[tuple] = []
    statuses: dict[int, int] = {}
    for operation in operations:
        _fuzz(operation, token, failures, statuses)
    assert not failures, failures
    # The requests reached the application: successes and refusals both came back.
    assert sum(statuses.values()) >= 3 * len(operations), statuses
    assert any(200 <= code < 300 for code in statuses) and any(400 <= code < 500 for code in statuses), statuses


def _fuzz(operation, token: str, failures: list, statuses: dict) -> None:
    @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy())
    def check(case):
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}
        response = case.call()
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        if response.status_code >= 500:
            failures.append((operation.label, response.status_code, case.formatted_path, response.text[:300]))

    check()
