"""The JSON API (``/api/v1/``, OpenAPI schema at ``/api/v1/openapi.json``, docs at ``/api/v1/docs``).

Public read: portals, a portal's status document (the same document as ``<portal>/status.json``)
and one service. Authenticated write for editors (``Authorization: Bearer <token>``): create a
changeset (with an optional ``Idempotency-Key``), publish it, read it back. Every error is a JSON
body ``{"errors": [{"path": ..., "message": ...}]}``; see docs/api.md.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

from django.db import DataError, InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone
from ninja import Field, Header, NinjaAPI, Path, Schema, Status
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.security import HttpBearer
from pydantic import ConfigDict

from guichet.accounts.selectors import editable_portals, user_for_token
from guichet.catalog.models import Portal
from guichet.common.actor import Actor

from . import serialize, services
from .models import ChangeSet
from .operations import OperationsInvalid, validate_operations
from .selectors import page_state

log = logging.getLogger(__name__)

api = NinjaAPI(
    title="Guichet API",
    version="1",
    urls_namespace="api",
    description=(
        "Public read access to the service status of each town, and authenticated write access "
        "for editors. Errors are `{\"errors\": [{\"path\", \"message\"}]}`."
    ),
)

MAX_ID = 2**53
PUBLIC_CORS = {"Access-Control-Allow-Origin": "*"}


# --- Errors: one shape everywhere -----------------------------------------------------------------


class ErrorItem(Schema):
    path: str = Field(description="Which field is wrong, e.g. `operations[2].state`, `title`, `Authorization`.")
    message: str


class ErrorOut(Schema):
    errors: list[ErrorItem]


class ApiError(Exception):
    def __init__(self, status: int, errors: list[tuple[str, str]], headers: dict | None = None):
        super().__init__(errors)
        self.status = status
        self.errors = errors
        self.headers = headers or {}


def _error_response(request, status: int, errors: list[tuple[str, str]], headers: dict | None = None):
    response = api.create_response(
        request, {"errors": [{"path": p, "message": m} for p, m in errors]}, status=status
    )
    for k, v in (headers or {}).items():
        response[k] = v
    return response


@api.exception_handler(ApiError)
def _api_error(request, exc: ApiError):
    return _error_response(request, exc.status, exc.errors, exc.headers)


DB_DOWN_RETRY_AFTER = 5  # seconds: when the database cannot be reached (restart, failover...)


def _database_unavailable(request, exc: Exception):
    """The database cannot be reached (down, restarting, refusing connections) anywhere in the API,
    the bearer-token lookup included: a JSON 503 with ``Retry-After``, never an HTML 500."""
    log.warning("API: database unavailable (%s) on %s %s", type(exc).__name__, request.method,
                request.resolver_match.route if request.resolver_match else "?")
    return _error_response(
        request, 503, [("", "The service is temporarily unavailable; send the same request again in a moment.")],
        {"Retry-After": str(DB_DOWN_RETRY_AFTER)},
    )


api.exception_handler(OperationalError)(_database_unavailable)
api.exception_handler(InterfaceError)(_database_unavailable)


@api.exception_handler(DataError)
def _data_refused(request, exc: DataError):
    """A value the database cannot store (a NUL character in a text, a number out of range):
    bad input, not a server error. The service's transaction was rolled back: nothing changed."""
    log.info("API: value refused by the database (%s) on %s %s", type(exc).__name__, request.method,
             request.resolver_match.route if request.resolver_match else "?")
    return _error_response(
        request, 422, [("body", "a value cannot be stored: text must not contain NUL characters "
                                "and numbers must be within range")],
    )


@api.exception_handler(AuthenticationError)
def _auth_error(request, exc: AuthenticationError):
    return _error_response(
        request, 401, [("Authorization", "a valid bearer token is required (Authorization: Bearer <token>)")],
        {"WWW-Authenticate": 'Bearer realm="guichet"'},
    )


def _loc_path(loc: Any) -> str:
    parts = [p for p in loc if p not in ("body", "payload", "path", "query", "header")]
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += ("." if out else "") + str(p)
    return out or "body"


@api.exception_handler(ValidationError)
def _validation_error(request, exc: ValidationError):
    errors = []
    for e in exc.errors:
        message = e.get("msg", "invalid")
        if e.get("type") == "missing":
            message = "required"
        errors.append((_loc_path(e.get("loc", ())), message))
    return _error_response(request, 422, errors)


@api.exception_handler(HttpError)
def _http_error(request, exc: HttpError):
    if exc.status_code == 400:
        return _error_response(request, 400, [("body", "the body is not valid JSON")])
    return _error_response(request, exc.status_code, [("", str(exc))])


# --- Authentication ------------------------------------------------------------------------------


class BearerToken(HttpBearer):
    """``Authorization: Bearer <token>``: an editor's API token (see ``guichet`` admin)."""

    def __call__(self, request: HttpRequest):
        value = request.headers.get("Authorization", "")
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None  # never log the header: it is a secret
        return self.authenticate(request, token.strip())

    def authenticate(self, request, token: str):
        if len(token) > 200:
            return None
        user = user_for_token(token)
        if user is not None:
            request.user = user
        return user


bearer = BearerToken()


# --- Schemas ---------------------------------------------------------------------------------------


class Open(Schema):
    model_config = ConfigDict(extra="allow")


class PortalOut(Schema):
    slug: str
    name: str
    name_en: str
    status_url: str = Field(description="The public status page.")
    json_url: str = Field(description="The status document (same as `GET /portals/{slug}/status`).")
    api_url: str


class ContactOut(Open):
    key: str
    kind: str = Field(description="phone, email, address or web")
    label: str
    label_en: str
    value: str
    note: str
    note_en: str
    temporary: bool
    valid_until: dt.date | None
    hours: Any = Field(None, description="Opening hours in the notice-file schedule format.")
    hours_lines: list[str]
    hours_lines_en: list[str]
    open_now: bool | None
    closes_at: dt.datetime | None
    next_open_at: dt.datetime | None
    access: str | None


class ChannelOut(Open):
    channel: str
    label: str
    label_en: str
    state: str = Field(description="normal, degraded or suspended")
    explanation: str
    explanation_en: str
    instead: str = Field(description="What to do instead.")
    instead_en: str
    since: dt.date | None
    updated_at: dt.datetime | None
    contacts: list[ContactOut]


class ProcedureOut(Open):
    slug: str
    name: str
    name_en: str
    state: str
    channels: list[ChannelOut]


class TargetValue(Open):
    precision: str = Field(description="exact, period or unknown")
    earliest: dt.date | None
    latest: dt.date | None
    text: str
    text_en: str
    recorded_at: dt.datetime


class TargetOut(Open):
    procedure: str | None
    current: TargetValue
    history: list[TargetValue]


class AffectedOut(Open):
    incident: str
    headline: str
    headline_en: str
    details: str
    details_en: str
    updated_at: dt.datetime | None


class ServiceOut(Open):
    slug: str
    organisation: str
    name: str
    name_en: str
    description: str
    description_en: str
    listed: bool = Field(description="Listed on the page; a service not listed works normally.")
    state: str = Field(description="normal, degraded or suspended (derived from its procedures)")
    updated_at: dt.datetime | None
    affected: list[AffectedOut]
    procedures: list[ProcedureOut]
    targets: list[TargetOut]
    contacts: list[ContactOut]


class UpdateOut(Open):
    key: str
    published_at: dt.datetime
    body: str
    body_en: str


class IncidentOut(Open):
    slug: str
    organisation: str
    title: str
    title_en: str
    nature: str
    summary: str
    summary_en: str
    started_at: dt.datetime
    ended_at: dt.datetime | None
    updated_at: dt.datetime | None
    service_count: int
    updates: list[UpdateOut]


class AdvisoryOut(Open):
    key: str
    organisation: str
    incident: str | None
    kind: str
    audience: str
    title: str
    title_en: str
    body: str
    body_en: str
    published_at: dt.datetime
    expires_at: dt.datetime | None


class StatusDocument(Open):
    """The ``guichet-status/1`` document, as served at ``<portal>/status.json``."""

    format: str
    generated_at: dt.datetime
    updated_at: dt.datetime | None
    last_checked_at: dt.datetime | None
    portal: dict[str, str]
    not_listed_statement: str
    not_listed_statement_en: str
    organisations: list[dict[str, str]]
    counts: dict[str, int]
    incidents: list[IncidentOut]
    past_incidents: list[dict[str, Any]]
    services: list[ServiceOut]
    advisories: list[AdvisoryOut]


class ServiceDocument(Schema):
    portal: str
    generated_at: dt.datetime
    service: ServiceOut


class ChangeSetIn(Schema):
    title: str = Field(min_length=1, max_length=200, description="Shown in the journal and in subscribers' e-mails.")
    operations: list[dict[str, Any]] = Field(
        description="Operations of the notice vocabulary (`{\"op\": \"availability.set\", ...}`); see docs/notice-format.md."
    )


class ChangeSetOut(Schema):
    id: int
    portal: str
    title: str
    status: str = Field(description="draft, pending (awaiting a second editor), published, rejected or discarded")
    author: str
    operations: list[dict[str, Any]]
    created_at: dt.datetime
    submitted_at: dt.datetime | None
    decided_at: dt.datetime | None
    published_at: dt.datetime | None
    idempotency_key: str | None
    url: str
    publish_url: str


# --- Helpers --------------------------------------------------------------------------------------


def _portal(slug: str) -> Portal:
    portal = Portal.objects.filter(slug=slug).first()
    if portal is None:
        raise ApiError(404, [("slug", f"no portal '{slug}'")])
    return portal


def _editor_portal(request, slug: str) -> Portal:
    portal = _portal(slug)
    if portal not in editable_portals(request.auth):
        raise ApiError(403, [("Authorization", "this token's user is not an editor of this portal")])
    return portal


def _changeset(portal: Portal, changeset_id: int) -> ChangeSet:
    cs = ChangeSet.objects.filter(portal=portal, pk=changeset_id).first()
    if cs is None:
        raise ApiError(404, [("id", f"no changeset {changeset_id} on this portal")])
    return cs


def _changeset_out(cs: ChangeSet) -> dict:
    kwargs = {"slug": cs.portal.slug, "changeset_id": cs.pk}
    return {
        "id": cs.pk, "portal": cs.portal.slug, "title": cs.title, "status": cs.status, "author": cs.author_ref,
        "operations": cs.operations, "created_at": cs.created_at, "submitted_at": cs.submitted_at,
        "decided_at": cs.decided_at, "published_at": cs.published_at, "idempotency_key": cs.idempotency_key,
        "url": reverse("api:changeset_get", kwargs=kwargs),
        "publish_url": reverse("api:changeset_publish", kwargs=kwargs),
    }


def _nul_paths(value: Any, path: str) -> list[str]:
    """Paths of strings holding a NUL character (no database stores it in text)."""
    if isinstance(value, str):
        return [path] if "\x00" in value else []
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _nul_paths(k, path) + _nul_paths(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _nul_paths(v, f"{path}[{i}]")]
    return []


def _operations_invalid(e: OperationsInvalid) -> ApiError:
    return ApiError(422, [(err.path, err.message) for err in e.errors])


def _json(doc: dict) -> HttpResponse:
    """The document exactly as ``<portal>/status.json`` writes it (the schemas above describe it)."""
    response = HttpResponse(json.dumps(doc, ensure_ascii=False), content_type="application/json; charset=utf-8")
    _cors(response)
    return response


def _cors(response: HttpResponse) -> None:
    for k, v in PUBLIC_CORS.items():
        response[k] = v


# --- Public read -----------------------------------------------------------------------------------


@api.get("/portals", response=list[PortalOut], tags=["public"], summary="List the portals (one per town)")
def portals_list(request, response: HttpResponse):
    _cors(response)
    return [
        {
            "slug": p.slug, "name": p.name, "name_en": p.name_en,
            "status_url": request.build_absolute_uri(reverse("status:page", kwargs={"portal": p.slug})),
            "json_url": request.build_absolute_uri(reverse("status:json", kwargs={"portal": p.slug})),
            "api_url": request.build_absolute_uri(reverse("api:portal_status", kwargs={"slug": p.slug})),
        }
        for p in Portal.objects.order_by("name", "slug")
    ]


@api.get(
    "/portals/{slug}/status", response={200: StatusDocument, 404: ErrorOut}, tags=["public"],
    summary="The whole public status of a portal", url_name="portal_status",
)
def portal_status(request, response: HttpResponse, slug: str):
    portal = _portal(slug)
    _cors(response)
    now = timezone.now()
    state = page_state(portal, now)
    links = {
        "page": request.build_absolute_uri(reverse("status:page", kwargs={"portal": slug})),
        "atom": request.build_absolute_uri(reverse("status:atom", kwargs={"portal": slug})),
    }
    return _json(serialize.document(state, generated_at=now, links=links))


@api.get(
    "/portals/{slug}/services/{service}", response={200: ServiceDocument, 404: ErrorOut}, tags=["public"],
    summary="One service: its state, procedures, channels, what to do instead, contacts and targets",
)
def service_status(request, response: HttpResponse, slug: str, service: str):
    portal = _portal(slug)
    _cors(response)
    now = timezone.now()
    ss = page_state(portal, now).service(service)
    if ss is None:
        raise ApiError(404, [("service", f"no service '{service}' on this portal")])
    return _json({"portal": portal.slug, "generated_at": serialize._iso(now), "service": serialize.service(ss)})


# --- Editors ---------------------------------------------------------------------------------------


@api.post(
    "/portals/{slug}/changesets", auth=bearer, tags=["editors"], url_name="changeset_create",
    response={200: ChangeSetOut, 201: ChangeSetOut, 400: ErrorOut, 401: ErrorOut, 403: ErrorOut,
              404: ErrorOut, 422: ErrorOut},
    summary="Prepare a change (a draft); retries with the same Idempotency-Key act once",
)
def changeset_create(
    request, slug: str, payload: ChangeSetIn,
    idempotency_key: str | None = Header(
        None, alias="Idempotency-Key", max_length=100,
        description="Any unique string (e.g. a UUID): a retry with the same key returns the first result.",
    ),
):
    portal = _editor_portal(request, slug)
    user = request.auth
    nul = _nul_paths(payload.title, "title") + _nul_paths(payload.operations, "operations")
    if idempotency_key is not None and (not idempotency_key.isprintable() or not idempotency_key.strip()):
        nul.append("Idempotency-Key")
    if nul:
        raise ApiError(422, [(p, "contains a character that is not allowed") for p in nul])
    key = idempotency_key.strip() if idempotency_key else None
    if key:
        existing = ChangeSet.objects.filter(portal=portal, idempotency_key=key).select_related("portal").first()
        if existing is not None:
            cleaned, _errors = validate_operations(payload.operations)
            same = existing.author_id == user.pk and existing.operations == cleaned and existing.title == payload.title.strip()
            if not same:
                raise ApiError(422, [("Idempotency-Key", "already used for a different request")])
            return Status(200, _changeset_out(existing))
    try:
        cs = services.changeset_create(
            portal=portal, user=user, actor=Actor.for_user(user, channel="api"), title=payload.title,
            operations=payload.operations, now=timezone.now(), idempotency_key=key,
        )
    except OperationsInvalid as e:
        raise _operations_invalid(e) from None
    except services.PermissionDenied as e:
        raise ApiError(403, [(e.path or "operations", e.message)]) from None
    return Status(201, _changeset_out(cs))


@api.get(
    "/portals/{slug}/changesets/{changeset_id}", auth=bearer, tags=["editors"], url_name="changeset_get",
    response={200: ChangeSetOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 422: ErrorOut},
    summary="Read a changeset back",
)
def changeset_get(request, slug: str, changeset_id: int = Path(..., ge=1, le=MAX_ID)):
    portal = _editor_portal(request, slug)
    return Status(200, _changeset_out(_changeset(portal, changeset_id)))


@api.post(
    "/portals/{slug}/changesets/{changeset_id}/publish", auth=bearer, tags=["editors"],
    url_name="changeset_publish",
    response={200: ChangeSetOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut},
    summary="Publish a changeset (or submit it for approval when the portal requires a second editor)",
    description=(
        "Publishing twice acts once. When the portal requires approval, the author's call moves the "
        "change to `pending` and another editor's call publishes it. 409 when the change was rejected "
        "or discarded, or when the author tries to approve their own change."
    ),
)
def changeset_publish(request, slug: str, changeset_id: int = Path(..., ge=1, le=MAX_ID)):
    portal = _editor_portal(request, slug)
    cs = _changeset(portal, changeset_id)
    user = request.auth
    try:
        cs = services.changeset_publish(
            changeset=cs, user=user, actor=Actor.for_user(user, channel="api"), now=timezone.now()
        )
    except OperationsInvalid as e:
        raise _operations_invalid(e) from None
    except services.PermissionDenied as e:
        raise ApiError(403, [(e.path or "operations", e.message)]) from None
    except services.StatusError as e:
        raise ApiError(409, [(e.path or "status", e.message)]) from None
    return Status(200, _changeset_out(cs))
