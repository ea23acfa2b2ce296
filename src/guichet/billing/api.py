"""The billing JSON API, mounted at ``/api/v1/billing/`` (OpenAPI schema at
``/api/v1/openapi.json``): deposits and payments taken at a counter or by another system, a
receipt, a household's balance.

Authentication: ``Authorization: Bearer <token>`` (an ``accounts.ApiToken``) or the browser
session (with ``X-CSRFToken`` on writes). The account must hold the ``counter`` or ``finance``
role (``guichet role``) in the organisation; an object of another organisation answers 404.

Writes need an ``Idempotency-Key`` header (1 to 100 characters, unique per operation in the
organisation): sending the same request again with the same key records nothing new and
answers the same receipt (200 instead of 201); the same key with different content is refused
(409 ``key_reused``). Amounts are integer cents.

Errors: ``{"errors": [{"path", "message", "code"}]}``; never a 500 for bad input; 503 with
``Retry-After`` when the database is saturated (send the same request again, same key).
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Literal

from django.db import OperationalError
from django.utils import timezone
from ninja import Field, Header, Query, Router, Schema, Status
from ninja.security import django_auth

from guichet.accounts.selectors import organisations_for
from guichet.bookings.api import ErrorOut, Problem
from guichet.bookings.models import Household
from guichet.catalog.models import Organisation
from guichet.common.actor import Actor
from guichet.status.api import bearer

from . import selectors, services
from .errors import BillingError
from .models import Invoice, Payment

router = Router(tags=["billing"], auth=[bearer, django_auth])

RETRY_AFTER = 2
ERRORS = {400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut, 503: ErrorOut}


def _errors(request, status: int, path: str, message: str, code: str, headers: dict | None = None):
    from guichet.status.api import api

    response = api.create_response(request, {"errors": [{"path": path, "message": str(message), "code": code}]},
                                   status=status)
    for k, v in (headers or {}).items():
        response[k] = v
    return response


FIELD_PATHS = {"amount_cents": "amount_cents", "method": "method", "idempotency_key": "Idempotency-Key",
               "reference": "reference", "invoice": "invoice"}


def handle(fn):
    @functools.wraps(fn)
    def wrapper(request, *args, **kwargs):
        try:
            return fn(request, *args, **kwargs)
        except Problem as exc:
            return _errors(request, exc.status, exc.path, exc.message, exc.code)
        except BillingError as exc:
            status = 409 if exc.code == "key_reused" else 422
            return _errors(request, status, FIELD_PATHS.get(exc.field, exc.field or "body"), exc.message, exc.code)
        except OperationalError:
            return _errors(request, 503, "", "The server is busy; send the same request again in a moment.", "busy",
                           headers={"Retry-After": str(RETRY_AFTER)})

    return wrapper


def _organisation(request, portal: str, organisation: str) -> Organisation:
    """The organisation named, if the caller holds ``counter`` or ``finance`` there."""
    orgs = list(Organisation.objects.filter(portal__slug=portal).select_related("portal"))
    if not orgs:
        raise Problem(404, "portal", f"No page {portal!r}.", "not_found")
    if organisation:
        org = next((o for o in orgs if o.slug == organisation), None)
        if org is None:
            raise Problem(404, "organisation", f"No organisation {organisation!r} on page {portal!r}.", "not_found")
    elif len(orgs) == 1:
        org = orgs[0]
    else:
        raise Problem(422, "organisation", "This page has several organisations: name one.", "required")
    user = request.auth
    if not any(organisations_for(user, kind).filter(pk=org.pk).exists() for kind in ("counter", "finance")):
        raise Problem(403, "Authorization", "This account may not take payments for this organisation "
                                            "(counter or finance role needed).", "forbidden")
    return org


def _key(value: str | None) -> str:
    key = (value or "").strip()
    if not 1 <= len(key) <= 100:
        raise Problem(422, "Idempotency-Key", "The Idempotency-Key header is required (1 to 100 characters).",
                      "invalid_key")
    return key


def _actor(request) -> Actor:
    return Actor.for_user(request.auth, "api")


# --- schemas -------------------------------------------------------------------------------------


class Where(Schema):
    portal: str = Field(description="The town's page (slug), e.g. `maisons-alfort`.", max_length=50)
    organisation: str = Field("", description="The organisation (slug); needed when the page has several.",
                              max_length=50)


class DepositIn(Where):
    household: str = Field(description="The family's file number (household reference).", max_length=30)
    amount_cents: int = Field(description="Amount in cents, 1 to 10,000,000.")
    method: Literal["cash", "cheque", "card"] = Field(description="How the deposit was paid at the counter.")
    reference: str = Field("", description="Cheque number, card slip...", max_length=60)


class PaymentIn(Where):
    invoice: str = Field(description="The issued invoice's number, e.g. `FAC-2024-000123`.", max_length=30)
    amount_cents: int = Field(description="Amount in cents; more than what is due stays as the family's credit.")
    method: Literal["cash", "cheque", "card", "transfer", "direct_debit"]
    reference: str = Field("", max_length=60)


class AllocationOut(Schema):
    invoice: str
    amount_cents: int


class ReceiptOut(Schema):
    receipt_number: str = Field(description="Gapless per organisation and year, e.g. `REC-2024-000042`.")
    kind: str = Field(description="`deposit`, `payment` or `refund`.")
    household: str
    invoice: str | None
    amount_cents: int
    method: str
    reference: str
    received_at: dt.datetime
    applied: list[AllocationOut] = Field(description="Invoices this money settled.")
    available_cents: int = Field(description="What is left of it as the family's credit.")
    balance_cents: int = Field(description="The family's balance after it: > 0 owes, < 0 in credit.")


class BalanceOut(Schema):
    household: str
    balance_cents: int = Field(description="> 0: the family owes it; < 0: in credit.")
    invoiced_cents: int
    credited_cents: int
    received_cents: int
    refunded_cents: int
    due_cents: int = Field(description="What issued invoices still owe.")
    available_credit_cents: int


def _receipt(payment: Payment) -> dict:
    allocations = payment.allocations.filter(invoice__isnull=False).select_related("invoice").order_by("pk")
    household = Household.objects.get(pk=payment.household_id)
    return {
        "receipt_number": payment.receipt_number, "kind": payment.kind, "household": household.reference,
        "invoice": payment.invoice.number if payment.invoice_id else None, "amount_cents": payment.amount_cents,
        "method": payment.method, "reference": payment.reference, "received_at": payment.received_at,
        "applied": [{"invoice": a.invoice.number, "amount_cents": a.amount_cents} for a in allocations],
        "available_cents": selectors.payment_available(payment),
        "balance_cents": selectors.household_balance(household=household).balance,
    }


def _replayed(org: Organisation, key: str) -> bool:
    return Payment.objects.filter(organisation=org, idempotency_key=key).exists()


# --- endpoints -------------------------------------------------------------------------------------


@router.post("/deposits", response={200: ReceiptOut, 201: ReceiptOut, **ERRORS},
             summary="Record a deposit (cash, cheque, card) for a family",
             description="201 with the receipt; the same `Idempotency-Key` again: 200 with the same receipt.")
@handle
def deposit_post(request, payload: DepositIn, idempotency_key: str = Header(
        None, alias="Idempotency-Key", description="1 to 100 characters, unique per operation.")):
    key = _key(idempotency_key)
    org = _organisation(request, payload.portal, payload.organisation)
    household = Household.objects.filter(organisation=org, reference=payload.household).first()
    if household is None:
        raise Problem(404, "household", f"No family file {payload.household!r}.", "not_found")
    again = _replayed(org, key)
    payment = services.deposit_record(household=household, amount_cents=payload.amount_cents, method=payload.method,
                                      actor=_actor(request), now=timezone.now(), idempotency_key=key,
                                      reference=payload.reference)
    return Status(200 if again else 201, _receipt(payment))


@router.post("/payments", response={200: ReceiptOut, 201: ReceiptOut, **ERRORS},
             summary="Record the payment of an issued invoice",
             description="201 with the receipt; the same `Idempotency-Key` again: 200 with the same receipt.")
@handle
def payment_post(request, payload: PaymentIn, idempotency_key: str = Header(
        None, alias="Idempotency-Key", description="1 to 100 characters, unique per operation.")):
    key = _key(idempotency_key)
    org = _organisation(request, payload.portal, payload.organisation)
    invoice = Invoice.objects.filter(organisation=org, number=payload.invoice, kind=Invoice.Kind.INVOICE).first()
    if invoice is None:
        raise Problem(404, "invoice", f"No issued invoice {payload.invoice!r}.", "not_found")
    again = _replayed(org, key)
    payment = services.payment_record(invoice=invoice, amount_cents=payload.amount_cents, method=payload.method,
                                      actor=_actor(request), now=timezone.now(), idempotency_key=key,
                                      reference=payload.reference)
    return Status(200 if again else 201, _receipt(payment))


@router.get("/receipts/{receipt_number}", response={200: ReceiptOut, **ERRORS}, summary="A receipt")
@handle
def receipt_get(request, receipt_number: str, q: Query[Where]):
    org = _organisation(request, q.portal, q.organisation)
    payment = Payment.objects.filter(organisation=org, receipt_number=receipt_number).first()
    if payment is None:
        raise Problem(404, "receipt_number", f"No receipt {receipt_number!r}.", "not_found")
    return Status(200, _receipt(payment))


@router.get("/households/{reference}/balance", response={200: BalanceOut, **ERRORS}, summary="A family's balance")
@handle
def balance_get(request, reference: str, q: Query[Where]):
    org = _organisation(request, q.portal, q.organisation)
    household = Household.objects.filter(organisation=org, reference=reference).first()
    if household is None:
        raise Problem(404, "reference", f"No family file {reference!r}.", "not_found")
    b = selectors.household_balance(household=household)
    return Status(200, {"household": household.reference, "balance_cents": b.balance, "invoiced_cents": b.invoiced,
                        "credited_cents": b.credited, "received_cents": b.received, "refunded_cents": b.refunded,
                        "due_cents": b.due, "available_credit_cents": b.available_credit})
