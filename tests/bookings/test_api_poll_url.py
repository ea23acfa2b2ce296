"""Every basket answer carries the URL to poll it: the same as Django's ``reverse``, also for a
site served under a path (a script prefix)."""

from __future__ import annotations

import pytest
from django.urls import reverse, set_script_prefix

from guichet.bookings.api import _poll_path


@pytest.fixture
def prefix():
    yield set_script_prefix
    set_script_prefix("/")


@pytest.mark.parametrize("pk", [1, 7, 42, 918273645546372819, 2**62])
def test_the_poll_url_is_the_reversed_one(pk, prefix):
    assert _poll_path(pk) == reverse("api:basket_get", args=[pk])
    prefix("/mairie/")
    assert _poll_path(pk) == reverse("api:basket_get", args=[pk])
    assert _poll_path(pk).startswith("/mairie/api/")
