"""The Atom feed and the JSON document of a portal's status."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
import time_machine

from guichet.status.serialize import FORMAT

from .test_public_data import NOW, SLUG, load

ATOM = "{http://www.w3.org/2005/Atom}"


@pytest.fixture
def notice(db):
    load()
    with time_machine.travel(NOW, tick=False):
        yield


def entries(response):
    root = ET.fromstring(response.content)
    assert root.tag == f"{ATOM}feed"
    return root, root.findall(f"{ATOM}entry")


def test_atom_feed_has_one_entry_per_incident_update_and_advisory_newest_first(client, notice):
    r = client.get(f"/{SLUG}/status/feed.atom")
    assert r.status_code == 200
    assert r["Content-Type"].startswith("application/atom+xml")
    assert r["Access-Control-Allow-Origin"] == "*"
    root, items = entries(r)
    assert root.get("{http://www.w3.org/XML/1998/namespace}lang") == "fr"
    titles = [e.findtext(f"{ATOM}title") for e in items]
    assert len(items) == 3
    assert any("Cyberattaque" in t for t in titles)
    assert "Soyez vigilants" in titles
    summaries = [e.findtext(f"{ATOM}summary") for e in items]
    assert "Les audits techniques sont terminés." in summaries
    updated = [e.findtext(f"{ATOM}updated") for e in items]
    assert updated == sorted(updated, reverse=True)
    ids = [e.findtext(f"{ATOM}id") for e in items]
    assert len(set(ids)) == 3 and all(i.startswith("urn:guichet:saint-nazaire:") for i in ids)
    links = [e.find(f"{ATOM}link").get("href") for e in items]
    assert all(link.startswith("http://testserver/saint-nazaire/status/#") for link in links)


def test_english_feed(client, notice):
    root, items = entries(client.get(f"/en/{SLUG}/status/feed.atom"))
    assert root.get("{http://www.w3.org/XML/1998/namespace}lang") == "en"
    titles = [e.findtext(f"{ATOM}title") for e in items]
    assert "Be careful" in titles and any("Cyberattack" in t for t in titles)


def test_json_document(client, notice):
    r = client.get(f"/{SLUG}/status.json")
    assert r.status_code == 200
    assert r["Content-Type"].startswith("application/json")
    assert r["Access-Control-Allow-Origin"] == "*"
    doc = json.loads(r.content)
    assert doc["format"] == FORMAT == "guichet-status/1"
    assert doc["portal"] == {"slug": SLUG, "name": "Saint-Nazaire", "name_en": "Saint-Nazaire"}
    assert doc["not_listed_statement"].startswith("Si un service ne figure pas")
    assert doc["not_listed_statement_en"] == "If a service is not on this page, it works normally."
    assert doc["generated_at"] == "2024-05-22T08:00:00Z"
    assert doc["last_checked_at"] and doc["updated_at"]
    assert [o["slug"] for o in doc["organisations"]] == ["ville", "agglo"]
    assert doc["counts"] == {"normal": 1, "degraded": 1, "suspended": 1}

    (incident,) = doc["incidents"]
    assert incident["title"] == "Cyberattaque" and incident["title_en"] == "Cyberattack"
    assert incident["nature"] == "cyberattack"
    assert incident["updates"][0]["body_en"] == "The technical audits are over."

    services = {s["slug"]: s for s in doc["services"]}
    assert services["bibliotheque"]["listed"] is False and services["bibliotheque"]["state"] == "normal"
    assert services["bibliotheque"]["contacts"][0]["open_now"] is True  # Wednesday 10:00
    water = services["eau"]
    assert water["listed"] and water["state"] == "suspended"
    assert water["affected"][0]["headline_en"] == "No billing possible"
    row = water["procedures"][0]["channels"][0]
    assert row["channel"] == "any" and row["state"] == "suspended" and row["since"] == "2024-04-06"
    assert row["instead"] == "Le règlement se fera lors de la régularisation annuelle."
    assert row["contacts"][0]["value"] == "06 00 00 00 01"
    assert row["contacts"][0]["hours"] == "always" and row["contacts"][0]["open_now"] is True
    (target,) = water["targets"]
    assert target["current"]["text"] == "dans le courant de l’été"
    assert [t["text"] for t in target["history"]] == ["au printemps"]

    children = services["enfance"]["procedures"][0]["channels"]
    assert [(c["channel"], c["label"], c["state"]) for c in children] == [
        ("counter", "Espace Famille", "degraded"), ("online", "Espace Famille", "suspended")]
    desk = children[0]["contacts"][0]
    assert desk["value"] == "02 44 73 43 00" and desk["open_now"] is True
    assert desk["closes_at"] == "2024-05-22T10:00:00Z"
    assert desk["hours_lines_en"] == ["Monday to Friday: 8:30 to 12:00 and 13:30 to 17:00"]

    (advisory,) = doc["advisories"]
    assert advisory["kind"] == "phishing" and advisory["title_en"] == "Be careful"
