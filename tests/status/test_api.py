"""The JSON API: public read, editors' write with bearer tokens, errors as JSON, never a 500."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model

from guichet.accounts.models import ApiToken, EditorRole
from guichet.catalog.models import Portal
from guichet.common.actor import Actor
from guichet.journal.models import Entry
from guichet.status import services
from guichet.status.models import Availability, ChangeSet

BASE = "/api/v1"
TOKEN = "tok-editor-0123456789"
OTHER = "tok-other-0123456789"
STRANGER = "tok-stranger-0123456789"


def _ops():
    return [
        {"op": "portal.set", "name": "Maisons-Alfort"},
        {"op": "organisation.set", "slug": "ville", "name": "Ville de Maisons-Alfort"},
        {"op": "service.set", "organisation": "ville", "slug": "affaires-generales", "name": "Affaires générales",
         "name_en": "General affairs"},
        {"op": "procedure.set", "service": "affaires-generales", "slug": "cni", "name": "Carte d'identité et passeport"},
        {"op": "procedure.set", "service": "affaires-generales", "slug": "comedec", "name": "Demandes COMEDEC"},
        {"op": "contact.set", "organisation": "ville", "key": "ag", "service": "affaires-generales",
         "label": "Affaires générales", "kind": "phone", "value": "01 43 96 77 01",
         "hours": [{"days": "mon-fri", "slots": ["08:30-11:00", "13:30-17:00"]}]},
        {"op": "incident.set", "organisation": "ville", "slug": "attaque", "title": "Attaque informatique",
         "started_at": "2022-09-24T08:00:00+02:00"},
        {"op": "availability.set", "incident": "attaque", "service": "affaires-generales", "procedure": "comedec",
         "state": "suspended", "explanation": "Le service ne peut donner suite aux demandes COMEDEC."},
    ]


def _change(state="degraded"):
    return [{"op": "availability.set", "incident": "attaque", "service": "affaires-generales",
             "procedure": "cni", "channel": "counter", "state": state, "contacts": ["ag"],
             "instead": "Sur place sans rendez-vous du lundi au vendredi."}]


def _user(name, raw=None, portal=None, superuser=False):
    user = get_user_model().objects.create_user(username=name, password=None, is_superuser=superuser)
    if raw:
        ApiToken.objects.create(user=user, name="test", digest=ApiToken.hash(raw))
    if portal:
        EditorRole.objects.create(user=user, portal=portal)
    return user


@pytest.fixture
def portal(db):
    services.publish_now(portal_slug="maisons-alfort", operations=_ops(), actor=Actor.cli(), title="Avis")
    p = Portal.objects.get(slug="maisons-alfort")
    _user("editor", TOKEN, p)
    _user("second", OTHER, p)
    _user("stranger", STRANGER)
    return p


def _auth(token=TOKEN, **extra):
    return {"HTTP_AUTHORIZATION": f"Bearer {token}", **extra}


def _post(client, path, body, token=TOKEN, **extra):
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    headers = _auth(token, **extra) if token else extra
    return client.post(BASE + path, data=data, content_type="application/json", **headers)


def _create(client, ops=None, title="Guichet ouvert sur place", **extra):
    return _post(client, "/portals/maisons-alfort/changesets", {"title": title, "operations": ops or _change()}, **extra)


def _errors(response):
    body = response.json()
    assert set(body) == {"errors"}, body
    return {(e["path"], e["message"]) for e in body["errors"]}


# --- Public read ---------------------------------------------------------------------------------


def test_list_portals(client, portal):
    response = client.get(f"{BASE}/portals")
    assert response.status_code == 200
    [p] = response.json()
    assert p["slug"] == "maisons-alfort" and p["name"] == "Maisons-Alfort"
    assert p["status_url"].endswith("/maisons-alfort/status/")
    assert response["Access-Control-Allow-Origin"] == "*"


def test_status_is_the_public_json_document(client, portal):
    api = client.get(f"{BASE}/portals/maisons-alfort/status").json()
    public = client.get("/maisons-alfort/status.json").json()
    from guichet.status.api import StatusDocument

    StatusDocument.model_validate(api)  # the OpenAPI schema describes what is served
    for doc in (api, public):
        doc.pop("generated_at")
        doc.pop("links", None)
    assert api == public
    service = next(s for s in api["services"] if s["slug"] == "affaires-generales")
    assert service["state"] == "suspended"
    assert api["format"] == "guichet-status/1"


def test_one_service(client, portal):
    response = client.get(f"{BASE}/portals/maisons-alfort/services/affaires-generales")
    assert response.status_code == 200
    body = response.json()
    from guichet.status.api import ServiceDocument

    ServiceDocument.model_validate(body)
    assert body["service"]["name_en"] == "General affairs"
    comedec = body["service"]["procedures"][0]
    assert comedec["slug"] == "comedec" and comedec["channels"][0]["state"] == "suspended"
    missing = client.get(f"{BASE}/portals/maisons-alfort/services/piscine")
    assert missing.status_code == 404 and _errors(missing) == {("service", "no service 'piscine' on this portal")}


def test_unknown_portal_is_404(client, portal):
    for path in ["/portals/nowhere/status", "/portals/nowhere/services/x"]:
        response = client.get(BASE + path)
        assert response.status_code == 404
        assert _errors(response) == {("slug", "no portal 'nowhere'")}
    assert _create_on(client, "nowhere").status_code == 404


def _create_on(client, slug):
    return _post(client, f"/portals/{slug}/changesets", {"title": "x", "operations": _change()})


def test_openapi_schema_documents_bodies(client, portal):
    response = client.get(f"{BASE}/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    paths = schema["paths"]
    assert {"/api/v1/portals", "/api/v1/portals/{slug}/status", "/api/v1/portals/{slug}/services/{service}",
            "/api/v1/portals/{slug}/changesets", "/api/v1/portals/{slug}/changesets/{changeset_id}",
            "/api/v1/portals/{slug}/changesets/{changeset_id}/publish"} <= set(paths)
    create = paths["/api/v1/portals/{slug}/changesets"]["post"]
    assert "requestBody" in create
    assert {"201", "401", "403", "422"} <= set(create["responses"])
    assert any(p["name"] == "Idempotency-Key" for p in create["parameters"])
    components = schema["components"]["schemas"]
    assert {"ChangeSetIn", "ChangeSetOut", "ErrorOut", "StatusDocument", "ServiceOut"} <= set(components)
    assert "bearer" in json.dumps(schema["components"].get("securitySchemes", {})).lower()
    assert client.get(f"{BASE}/docs").status_code == 200


# --- Editors ---------------------------------------------------------------------------------------


def test_create_then_publish(client, portal):
    response = _create(client)
    assert response.status_code == 201, response.content
    cs = response.json()
    assert cs["status"] == "draft" and cs["title"] == "Guichet ouvert sur place"
    assert cs["author"].startswith("user:")
    assert not Availability.objects.filter(procedure__slug="cni").exists()  # a draft changes nothing public

    got = client.get(BASE + cs["url"].removeprefix(BASE), **_auth())
    assert got.status_code == 200 and got.json()["id"] == cs["id"]

    published = _post(client, cs["publish_url"].removeprefix(BASE), None)
    assert published.status_code == 200, published.content
    assert published.json()["status"] == "published"
    row = Availability.objects.get(procedure__slug="cni")
    assert row.state == "degraded"
    entry = Entry.objects.filter(operation="status.changeset.publish").last()
    assert entry.channel == "api"

    again = _post(client, cs["publish_url"].removeprefix(BASE), None)  # a double click acts once
    assert again.status_code == 200
    assert Entry.objects.filter(operation="status.changeset.publish").count() == 2  # seed + this one

    status = client.get(f"{BASE}/portals/maisons-alfort/services/affaires-generales").json()
    cni = next(p for p in status["service"]["procedures"] if p["slug"] == "cni")
    assert cni["channels"][0]["state"] == "degraded"
    assert cni["channels"][0]["contacts"][0]["value"] == "01 43 96 77 01"


def test_retry_with_the_same_idempotency_key_acts_once(client, portal):
    first = _create(client, HTTP_IDEMPOTENCY_KEY="b9f3c1de-retry-1")
    second = _create(client, HTTP_IDEMPOTENCY_KEY="b9f3c1de-retry-1")
    assert first.status_code == 201 and second.status_code == 200
    assert first.json()["id"] == second.json()["id"]
    assert ChangeSet.objects.filter(idempotency_key="b9f3c1de-retry-1").count() == 1
    assert Entry.objects.filter(operation="status.changeset.create").count() == 1

    other = _create(client, ops=_change("suspended"), HTTP_IDEMPOTENCY_KEY="b9f3c1de-retry-1")
    assert other.status_code == 422
    assert _errors(other) == {("Idempotency-Key", "already used for a different request")}

    third = _create(client, HTTP_IDEMPOTENCY_KEY="b9f3c1de-retry-2")
    assert third.status_code == 201 and third.json()["id"] != first.json()["id"]
    long_key = _create(client, HTTP_IDEMPOTENCY_KEY="k" * 101)
    assert long_key.status_code == 422 and "Idempotency-Key" in {p for p, _ in _errors(long_key)}


def test_authentication(client, portal):
    body = {"title": "x", "operations": _change()}
    for headers in [{}, {"HTTP_AUTHORIZATION": "Bearer nope"}, {"HTTP_AUTHORIZATION": f"Token {TOKEN}"},
                    {"HTTP_AUTHORIZATION": "Bearer "}, {"HTTP_AUTHORIZATION": "Bearer " + "x" * 5000}]:
        response = client.post(f"{BASE}/portals/maisons-alfort/changesets", data=json.dumps(body),
                               content_type="application/json", **headers)
        assert response.status_code == 401, headers
        assert {p for p, _ in _errors(response)} == {"Authorization"}
        assert response["WWW-Authenticate"].startswith("Bearer")
    assert client.get(f"{BASE}/portals/maisons-alfort/changesets/1").status_code == 401
    ApiToken.objects.filter(digest=ApiToken.hash(TOKEN)).update(revoked_at="2024-01-01T00:00:00Z")
    assert _create(client).status_code == 401
    assert ChangeSet.objects.filter(author__isnull=False).count() == 0


def test_user_without_role_is_403(client, portal):
    response = _create(client, token=STRANGER)
    assert response.status_code == 403
    assert {p for p, _ in _errors(response)} == {"Authorization"}
    cs = _create(client).json()
    assert client.get(f"{BASE}/portals/maisons-alfort/changesets/{cs['id']}", **_auth(STRANGER)).status_code == 403
    assert _post(client, f"/portals/maisons-alfort/changesets/{cs['id']}/publish", None, token=STRANGER).status_code == 403


def test_service_scoped_editor_cannot_touch_another_service(client, portal):
    user = _user("scoped", "tok-scoped-0123456789")
    other = services.publish_now(portal_slug="maisons-alfort", actor=Actor.cli(), title="Enfance", operations=[
        {"op": "service.set", "organisation": "ville", "slug": "enfance", "name": "Enfance-Éducation"},
    ])
    assert other.status == "published"
    from guichet.catalog.models import Service

    EditorRole.objects.create(user=user, portal=portal, service=Service.objects.get(slug="enfance"))
    response = _create(client, token="tok-scoped-0123456789")
    assert response.status_code == 403
    assert _errors(response) == {("operations[0]", "you may not edit this part of the page")}


def test_invalid_operations_list_every_error_with_its_path(client, portal):
    ops = [{"op": "availability.set", "incident": "attaque", "service": "affaires-generales", "procedure": "cni",
            "state": "broken"}, {"op": "nope"}, {"op": "target.set"}]
    response = _create(client, ops=ops)
    assert response.status_code == 422
    errors = _errors(response)
    assert ("operations[0].state", "'broken' is not one of: normal, degraded, suspended") in errors
    assert ("operations[1].op", "unknown operation 'nope'") in errors
    assert ("operations[2].incident", "required") in errors
    assert ChangeSet.objects.count() == 1  # only the seed's


@pytest.mark.parametrize("state", ["suspended", "degraded"])
def test_a_disrupted_row_must_say_what_to_do_instead(client, portal, state):
    before = (ChangeSet.objects.count(), Entry.objects.count())
    for instead in ({}, {"instead": ""}, {"instead": "   "}):
        ops = [{"op": "availability.set", "incident": "attaque", "service": "affaires-generales", "procedure": "cni",
                "state": state, "explanation": "Fermé.", **instead}]
        response = _create(client, ops=ops)
        assert response.status_code == 422
        ((path, message),) = _errors(response)
        assert path == "operations[0].instead" and message.startswith("required when the state is degraded or")
    assert (ChangeSet.objects.count(), Entry.objects.count()) == before
    # A procedure that works normally needs no alternative.
    normal = [{"op": "availability.set", "incident": "attaque", "service": "affaires-generales", "procedure": "cni",
               "state": "normal"}]
    assert _create(client, ops=normal).status_code == 201


def test_unknown_reference_fails_at_publish_with_its_path(client, portal):
    ops = [{"op": "availability.set", "incident": "attaque", "service": "piscine", "procedure": "x", "state": "normal"}]
    cs = _create(client, ops=ops).json()
    response = _post(client, f"/portals/maisons-alfort/changesets/{cs['id']}/publish", None)
    assert response.status_code == 422
    assert _errors(response) == {("operations[0].service", "no service 'piscine' on this page")}
    assert ChangeSet.objects.get(pk=cs["id"]).status == "draft"


@pytest.mark.parametrize("body", [
    "{not json", "", "[]", '"text"', "null", "42",
    {"operations": []},
    {"title": "x"},
    {"title": "", "operations": [{"op": "portal.set", "name": "x"}]},
    {"title": 12, "operations": "not a list"},
    {"title": "x", "operations": ["not an object"]},
    {"title": "x" * 201, "operations": [{"op": "portal.set", "name": "x"}]},
    {"title": "x", "operations": []},
    {"title": "nul\u0000", "operations": [{"op": "portal.set", "name": "a\u0000b"}]},
    {"title": "x", "operations": [{"op": "availability.set", "incident": "attaque", "service": "affaires-generales",
                                   "procedure": "cni", "state": "normal", "position": 10**30}]},
    {"title": "x", "operations": [{"op": "contact.set", "organisation": "ville", "key": "k", "label": "l",
                                   "kind": "phone", "value": "1", "hours": {"weird": [1, {"x": None}]}}]},
])
def test_malformed_bodies_are_clear_errors_never_500(client, portal, body):
    response = _post(client, "/portals/maisons-alfort/changesets", body)
    assert response.status_code in (400, 422), (response.status_code, response.content)
    errors = _errors(response)
    assert errors and all(isinstance(p, str) and m for p, m in errors)
    assert ChangeSet.objects.count() == 1


def test_malformed_json_is_400(client, portal):
    response = _post(client, "/portals/maisons-alfort/changesets", "{not json")
    assert response.status_code == 400
    assert _errors(response) == {("body", "the body is not valid JSON")}


def test_missing_field_names_it(client, portal):
    response = _post(client, "/portals/maisons-alfort/changesets", {"title": "x"})
    assert response.status_code == 422 and ("operations", "required") in _errors(response)


@pytest.mark.parametrize("changeset_id", ["0", "-1", "abc", str(2**70)])
def test_bad_changeset_ids(client, portal, changeset_id):
    response = client.get(f"{BASE}/portals/maisons-alfort/changesets/{changeset_id}", **_auth())
    assert response.status_code in (404, 422)
    assert _errors(response)


def test_unknown_changeset_is_404(client, portal):
    response = client.get(f"{BASE}/portals/maisons-alfort/changesets/999999", **_auth())
    assert response.status_code == 404 and {p for p, _ in _errors(response)} == {"id"}


def test_approval_by_a_second_editor_and_409_on_rejected(client, portal):
    Portal.objects.filter(pk=portal.pk).update(requires_approval=True)
    cs = _create(client).json()
    publish = f"/portals/maisons-alfort/changesets/{cs['id']}/publish"
    submitted = _post(client, publish, None)
    assert submitted.status_code == 200 and submitted.json()["status"] == "pending"
    own = _post(client, publish, None)
    assert own.status_code == 409
    assert _errors(own) == {("status", "a second editor must approve this change")}
    approved = _post(client, publish, None, token=OTHER)
    assert approved.status_code == 200 and approved.json()["status"] == "published"

    rejected = _create(client, ops=_change("suspended"), title="À refuser").json()
    _post(client, f"/portals/maisons-alfort/changesets/{rejected['id']}/publish", None)
    cs_obj = ChangeSet.objects.get(pk=rejected["id"])
    second = get_user_model().objects.get(username="second")
    services.changeset_reject(changeset=cs_obj, user=second, actor=Actor.for_user(second), now=cs_obj.created_at)
    response = _post(client, f"/portals/maisons-alfort/changesets/{rejected['id']}/publish", None, token=OTHER)
    assert response.status_code == 409
    assert {p for p, _ in _errors(response)} == {"status"}
    assert ChangeSet.objects.get(pk=rejected["id"]).status == "rejected"


def test_changeset_of_another_portal_is_404(client, portal):
    services.publish_now(portal_slug="saint-nazaire", operations=[{"op": "portal.set", "name": "Saint-Nazaire"}],
                         actor=Actor.cli(), title="Autre")
    other = ChangeSet.objects.get(portal__slug="saint-nazaire")
    response = client.get(f"{BASE}/portals/maisons-alfort/changesets/{other.pk}", **_auth())
    assert response.status_code == 404
