"""Sessions on Django's asynchronous path (``request.auser``, ``alogin``): the same account, the
same checks, and a session saved there keeps its account beside its data as a synchronous save
does (so that deleting the account deletes it, and its next read takes the account with it)."""

from __future__ import annotations

from asgiref.sync import async_to_sync
from django.contrib.auth import alogin, get_user_model
from django.test import RequestFactory

from guichet.accounts.middleware import AuthenticationMiddleware
from guichet.accounts.models import UserSession
from guichet.accounts.sessions import SessionStore
from tests.accounts.test_sessions import parent, signed_in  # noqa: F401 - fixture


def _request(key: str | None = None):
    request = RequestFactory().get("/")
    request.session = SessionStore(key)
    AuthenticationMiddleware(lambda r: None).process_request(request)
    return request


def test_request_auser_is_the_signed_in_account_and_checks_it(parent):  # noqa: F811
    _client, key = signed_in(parent)
    assert async_to_sync(_request(key).auser)().pk == parent.pk
    get_user_model().objects.filter(pk=parent.pk).update(is_active=False)
    assert not async_to_sync(_request(key).auser)().is_authenticated
    get_user_model().objects.filter(pk=parent.pk).update(is_active=True)
    parent.set_password("another one entirely")
    parent.save()
    assert not async_to_sync(_request(key).auser)().is_authenticated  # the password hash


def test_a_session_signed_in_asynchronously_goes_with_its_account(parent):  # noqa: F811
    request = _request()
    async_to_sync(alogin)(request, parent, backend="guichet.accounts.backends.ModelBackend")
    async_to_sync(request.session.asave)()
    key = request.session.session_key
    assert UserSession.objects.get(session_key=key).user_id == parent.pk
    assert _request(key).user.pk == parent.pk
    parent.delete()
    assert not UserSession.objects.filter(session_key=key).exists()
