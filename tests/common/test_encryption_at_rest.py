"""Sensitive fields and files encrypted at rest (ADR 0011): a dump of the database or a copy of the
uploaded files alone reveals no IBAN, no income, no quotient, no justification; a missing or
wrong key is said by ``guichet check``; rotation re-encrypts everything and loses nothing.

Runs on SQLite and, with DATABASE_URL, on PostgreSQL (the pg_dump test only there)."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.checks import run_checks
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import override_settings

from guichet.billing.models import HouseholdQuotient
from guichet.bookings.models import Booking
from guichet.common import crypto, fieldkeys
from guichet.water.models import Creditor, DebitRun, Mandate
from tests.billing import factories as bf
from tests.bookings.test_views_family import family, world  # noqa: F401 - fixtures
from tests.water.conftest import ACTOR, TARIFF_2023, at, debit_month, monthly_payer, org  # noqa: F401 - org: fixture

# Canaries: values that appear nowhere else, with a valid IBAN checksum.
IBAN = "FR7630004000000003123456702"
QUOTIENT = 73519
RESOURCES = 8765432
REASON = "varicelle-canari, certificat du Dr Canari"  # typed by an agent on a late cancellation
CUSTOMER = "Canari-Visible"  # a name is not encrypted: the control that the dump sees the data
PDF = b"%PDF-1.4 canary medical certificate 5c1e7a"

NO_KEY = {
    "GUICHET_FIELD_KEY_FILE": "",
    "GUICHET_FIELD_KEY": "",
    "GUICHET_FIELD_KEY_INSECURE_DEV": False,
}


def water_org():
    """The water fixture's organisation, made under the key in force (the fixture's is made before)."""
    from guichet.catalog.models import Organisation, Portal
    from guichet.water import services as ws

    portal = Portal.objects.create(slug="agglo-keys", name="Agglo")
    organisation = Organisation.objects.create(
        portal=portal, slug="eau", name="Agglo", kind="agglomeration"
    )
    ws.creditor_set(
        organisation=organisation,
        name="Agglo Eau",
        creditor_id="FR72ZZZ123456",
        iban="FR7630006000000001123456786",
        actor=ACTOR,
        now=at(dt.date(2023, 11, 1)),
    )
    ws.tariff_set(
        organisation=organisation,
        valid_from=dt.date(2023, 1, 1),
        definition=TARIFF_2023,
        actor=ACTOR,
        now=at(dt.date(2023, 11, 1)),
    )
    return organisation


def canaries_written(org):  # noqa: F811
    monthly_payer(org, "C-canary", iban=IBAN)
    from guichet.water.models import Customer

    Customer.objects.filter(reference="C-canary").update(name=CUSTOMER)
    debit_month(org, 1)
    town, site, acts = bf.town()
    household = bf.household(town)
    bf.quotient(household, dt.date(2024, 1, 1), QUOTIENT, resources=RESOURCES, children=2)
    booking = bf.book(
        household.children.get(), bf.session(town, site, acts["mercredis"], dt.date(2024, 1, 10))
    )
    Booking.objects.filter(pk=booking.pk).update(reason=REASON)


def sql_dump() -> str:
    """Every row of every table as text, as a stolen dump would show them."""
    parts = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
            for row in cursor.fetchall():
                for value in row:
                    if isinstance(value, bytes | memoryview):
                        parts.append(bytes(value).decode("latin-1"))
                    else:
                        parts.append(str(value))
    return "\n".join(parts)


def leaked(text: str) -> list[str]:
    iban_spaced = " ".join(IBAN[i : i + 4] for i in range(0, len(IBAN), 4))
    return [
        c
        for c in (IBAN, iban_spaced, IBAN[4:], str(QUOTIENT), str(RESOURCES), "varicelle")
        if c in text
    ]


@pytest.mark.django_db
def test_a_database_dump_reveals_no_iban_quotient_or_income(org):  # noqa: F811
    canaries_written(org)
    # the application reads them back
    assert Mandate.objects.get(reference="RUM-C-canary").iban == IBAN
    assert IBAN.encode() in bytes(DebitRun.objects.get().xml)
    q = HouseholdQuotient.objects.get()
    assert (q.quotient, q.resources_cents) == (QUOTIENT, RESOURCES)
    assert (
        Booking.objects.get(reason__isnull=False, pk__in=Booking.objects.exclude(reason="")).reason
        == REASON
    )
    dump = sql_dump()
    assert CUSTOMER in dump  # control: the dump does see the rows
    assert leaked(dump) == []
    raw = Creditor.objects.values_list("iban", flat=True)
    assert [v for v in raw]  # read through the field: decrypted
    with connection.cursor() as cursor:
        cursor.execute("SELECT iban FROM water_mandate")
        (stored,) = cursor.fetchone()
    assert stored.startswith("gfe1:") and IBAN not in stored


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_pg_dump_of_the_database_reveals_none_of_them(org):  # noqa: F811
    canaries_written(org)
    s = connection.settings_dict
    env = {
        **os.environ,
        "PGHOST": str(s.get("HOST") or "127.0.0.1"),
        "PGPORT": str(s.get("PORT") or 5432),
        "PGUSER": str(s.get("USER") or "postgres"),
    }
    if s.get("PASSWORD"):
        env["PGPASSWORD"] = str(s["PASSWORD"])
    dump = subprocess.run(
        ["pg_dump", "--data-only", "--no-owner", s["NAME"]],
        env=env,
        capture_output=True,
        check=True,
    ).stdout.decode("utf-8", "replace")
    assert CUSTOMER in dump
    assert leaked(dump) == []


@pytest.mark.django_db
def test_uploaded_files_are_encrypted_on_disk_and_read_back_plain(tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path
    name = default_storage.save("justifications/2024/01/certificat.pdf", ContentFile(PDF))
    on_disk = (tmp_path / name).read_bytes()
    assert PDF not in on_disk and b"canary" not in on_disk
    with default_storage.open(name, "rb") as f:
        assert f.read() == PDF
    assert default_storage.size(name) == len(PDF)
    assert default_storage.url(name) == ""  # never a public address


def test_media_url_is_not_served(client, tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path
    (tmp_path / "x.pdf").write_bytes(PDF)
    assert client.get(settings.MEDIA_URL + "x.pdf").status_code == 404


def test_a_ciphertext_moved_to_another_column_or_altered_does_not_decrypt():
    sealed = crypto.encrypt_text("850", "billing.householdquotient.quotient")
    assert crypto.decrypt_text(sealed, "billing.householdquotient.quotient") == "850"
    with pytest.raises(crypto.FieldKeyError, match="altered"):
        crypto.decrypt_text(sealed, "billing.householdquotient.resources_cents")
    tampered = sealed[:-6] + ("A" if sealed[-6] != "A" else "B") + sealed[-5:]
    with pytest.raises(crypto.FieldKeyError, match="altered"):
        crypto.decrypt_text(tampered, "billing.householdquotient.quotient")


def test_lookups_on_an_encrypted_value_are_refused(db):
    from django.core.exceptions import FieldError

    with pytest.raises(FieldError):
        list(Mandate.objects.filter(iban=IBAN))
    assert list(HouseholdQuotient.objects.filter(resources_cents__isnull=True)) == []
    assert (
        list(Mandate.objects.filter(bic="")) == []
    )  # the empty string is stored empty: comparable
    with pytest.raises(FieldError, match="compared with '' only"):
        list(Mandate.objects.exclude(bic="X"))


# --- keys: missing, wrong, rotation -------------------------------------------------------------


def key_file(tmp_path, name="field.key") -> Path:
    path = tmp_path / name
    fieldkeys.generate_key_file(path)
    return path


def check_messages() -> list[str]:
    return [f"{m.id}: {m.msg}" for m in run_checks() if m.id and m.id.startswith("guichet.")]


def test_no_key_outside_development_is_a_check_error_naming_what_to_set(db):
    with override_settings(**NO_KEY):
        messages = check_messages()
    assert any(m.startswith("guichet.E101") and "GUICHET_FIELD_KEY_FILE" in m for m in messages), (
        messages
    )


def test_a_key_file_that_is_not_a_key_is_said(db, tmp_path):
    bad = tmp_path / "bad.key"
    bad.write_text("not a key\n")
    with override_settings(**{**NO_KEY, "GUICHET_FIELD_KEY_FILE": str(bad)}):
        messages = check_messages()
    assert any("not a field key" in m for m in messages), messages
    with override_settings(**{**NO_KEY, "GUICHET_FIELD_KEY_FILE": str(tmp_path / "missing.key")}):
        assert any("not found" in m for m in check_messages())


@pytest.mark.django_db
def test_data_under_another_key_is_a_check_error_not_a_server_error_later(tmp_path):
    with override_settings(
        **{**NO_KEY, "GUICHET_FIELD_KEY_FILE": str(key_file(tmp_path, "a.key"))}
    ):
        canaries_written(water_org())
        assert check_messages() == []
    with override_settings(
        **{**NO_KEY, "GUICHET_FIELD_KEY_FILE": str(key_file(tmp_path, "b.key"))}
    ):
        messages = check_messages()
        assert any(m.startswith("guichet.E102") and "water.mandate.iban" in m for m in messages), (
            messages
        )
        assert any("billing.householdquotient.quotient" in m for m in messages), messages


def test_guichet_check_says_it_plainly_without_traceback(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GUICHET_FIELD_KEY", "DEBUG"))}
    env.update(
        {
            "SECRET_KEY": "x" * 50,
            "GUICHET_DATA_DIR": str(tmp_path),
            "DATABASE_URL": f"sqlite:///{tmp_path}/db",
        }
    )
    env.pop("GUICHET_INSECURE_DEV_KEY", None)
    result = subprocess.run(
        [sys.executable, "-m", "guichet.cli", "check"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "guichet.E101" in result.stderr and "GUICHET_FIELD_KEY_FILE" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.django_db
def test_rotation_reencrypts_everything_and_the_old_key_can_then_go(tmp_path, settings, capsys):
    settings.MEDIA_ROOT = tmp_path / "media"
    path = key_file(tmp_path)
    with override_settings(**{**NO_KEY, "GUICHET_FIELD_KEY_FILE": str(path)}):
        canaries_written(water_org())
        name = default_storage.save("justifications/c.pdf", ContentFile(PDF))
        (old_id,) = fieldkeys.status().key_ids
        call_command("fieldkey", "rotate", "--key-file", str(path))
        report = fieldkeys.status()
        new_id = report.key_ids[0]
        assert report.key_ids == [new_id, old_id] and new_id != old_id
        assert report.old_keys_in_use() == set()
        assert report.columns["water.mandate.iban"] == {new_id: 1}
        assert "everything is under the current key" in capsys.readouterr().out
    # the old key removed from the file: everything still reads
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:2]) + "\n")  # comment + current key
    with override_settings(**{**NO_KEY, "GUICHET_FIELD_KEY_FILE": str(path)}):
        assert fieldkeys.status().key_ids == [new_id]
        assert Mandate.objects.get(reference="RUM-C-canary").iban == IBAN
        assert HouseholdQuotient.objects.get().quotient == QUOTIENT
        assert IBAN.encode() in bytes(DebitRun.objects.get().xml)
        with default_storage.open(name) as f:
            assert f.read() == PDF
        assert check_messages() == []


@pytest.mark.django_db
def test_reencrypt_encrypts_files_kept_before_and_journals_counts_only(tmp_path, settings):
    from guichet.journal.models import Entry

    settings.MEDIA_ROOT = tmp_path
    (tmp_path / "old.pdf").write_bytes(PDF)
    with pytest.raises(crypto.FieldKeyError, match="not encrypted"):
        default_storage.open("old.pdf")
    (tmp_path / "other-key.pdf").write_bytes(
        crypto.encrypt_file_bytes(PDF, crypto.make_key(b"k" * 32))
    )
    with pytest.raises(CommandError, match="1 file.s. left as they were.*other-key.pdf"):
        call_command("fieldkey", "reencrypt", stdout=open(os.devnull, "w"))  # noqa: SIM115
    assert PDF not in (tmp_path / "old.pdf").read_bytes()
    assert default_storage.open("old.pdf").read() == PDF
    entry = Entry.objects.filter(operation="common.fieldkey.reencrypt").get()
    assert entry.details["files"] == 1


@pytest.mark.django_db
def test_the_migration_encrypts_clear_values_and_its_reverse_restores_them(org):  # noqa: F811
    monthly_payer(org, "C-m", iban=IBAN)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE water_mandate SET iban = %s", [IBAN])  # as before the migration
    assert (
        check_messages() == []
    )  # a clear value is what migrate encrypts: no reason to stop migrate
    forward, backward = crypto.migration_encrypt(("water_mandate", "iban", "water.mandate.iban"))

    class Editor:
        pass

    editor = Editor()
    editor.connection = connection
    forward(None, editor)
    assert IBAN not in sql_dump()
    assert Mandate.objects.get(reference="RUM-C-m").iban == IBAN
    backward(None, editor)
    with connection.cursor() as cursor:
        cursor.execute("SELECT iban FROM water_mandate WHERE reference = %s", ["RUM-C-m"])
        assert cursor.fetchone()[0] == IBAN


def test_key_generation_never_overwrites_and_is_private(tmp_path):
    path = key_file(tmp_path)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    with pytest.raises(FileExistsError):
        fieldkeys.generate_key_file(path)
    assert len(crypto.parse_keys(path.read_text(), "t")) == 1


def test_the_quotient_journal_payload_is_a_keyed_digest(db):
    from guichet.common.canonical import digest
    from guichet.journal.models import Entry

    town, _site, _acts = bf.town()
    bf.quotient(bf.household(town), dt.date(2024, 1, 1), QUOTIENT)
    entry = Entry.objects.get(operation="billing.quotient.record")
    guesses = {digest({"quotient": QUOTIENT, "resources_cents": None, "children": None})}
    assert entry.payload_digest not in guesses and str(QUOTIENT) not in str(entry.details)


def test_a_justification_uploaded_by_a_family_is_encrypted_on_disk_and_downloaded_plain(
    world,  # noqa: F811 - fixture
    family,  # noqa: F811 - fixture
    tmp_path,
    settings,
):
    import time_machine
    from django.core.files.uploadedfile import SimpleUploadedFile

    from guichet.bookings.models import Booking, Justification
    from tests.bookings.test_views_family import BEFORE, LATE, book

    settings.MEDIA_ROOT = tmp_path
    pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\n% canary certificate 5c1e7a\ntrailer<<>>\n%%EOF\n"
    session = world.session()
    with time_machine.travel(BEFORE, tick=False):
        book(family, session)
    booking = Booking.objects.get()
    with time_machine.travel(LATE, tick=False):
        family.client.post(family.url(f"reservations/{booking.pk}/annuler/"))
        r = family.client.post(
            family.url(f"reservations/{booking.pk}/justificatif/"),
            {"kind": "medical", "document": SimpleUploadedFile("certificat.pdf", pdf)},
        )
        assert r.status_code == 200
        j = Justification.objects.get()
        got = family.client.get(family.url(f"justificatifs/{j.pk}/document/"))
    assert b"".join(got.streaming_content) == pdf
    on_disk = (tmp_path / j.document.name).read_bytes()
    assert on_disk.startswith(crypto.FILE_MAGIC) and b"canary" not in on_disk


@pytest.mark.django_db
def test_data_of_a_development_install_moves_to_a_real_key_as_the_message_says(tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    town, _site, _acts = bf.town()
    bf.quotient(bf.household(town), dt.date(2024, 1, 1), QUOTIENT)  # under the development key
    path = key_file(tmp_path)
    with override_settings(**{**NO_KEY, "GUICHET_FIELD_KEY_FILE": str(path)}):
        (message,) = [m for m in check_messages() if m.startswith("guichet.E102")]
        assert "public development key" in message
        line = message.split("add the line '")[1].split("'")[0]
        path.write_text(path.read_text() + line + "\n")
        call_command("fieldkey", "reencrypt", stdout=open(os.devnull, "w"))  # noqa: SIM115
        assert fieldkey_ids_in_use() == {fieldkeys.status().key_ids[0]}
        assert HouseholdQuotient.objects.get().quotient == QUOTIENT


def fieldkey_ids_in_use() -> set[str]:
    return {k for counts in fieldkeys.status().columns.values() for k in counts}


def test_a_running_process_reads_a_key_added_to_the_file_since_it_started(tmp_path):
    path = key_file(tmp_path)
    with override_settings(**{**NO_KEY, "GUICHET_FIELD_KEY_FILE": str(path)}):
        old = crypto.keyring().current.id  # read once, as a server process does
        new_id, _ = fieldkeys.add_key_to_file(path)  # another process rotates
        (new_master,) = crypto.parse_keys(path.read_text().splitlines()[1], "new")
        sealed = crypto.encrypt_text("FR76…", "water.mandate.iban", crypto.make_key(new_master))
        assert crypto.decrypt_text(sealed, "water.mandate.iban") == "FR76…"
        assert [k.id for k in crypto.keyring().keys] == [new_id, old]


@pytest.mark.django_db(transaction=True)
def test_a_backup_archive_with_its_backup_key_still_reveals_none_of_them(tmp_path, settings):
    """A restore needs both keys: the archive decrypted with the backup key holds the database and
    the files as they are at rest, encrypted under the field key."""
    import io
    import tarfile

    from guichet.journal.crypto import DecryptingReader, load_key_file

    if connection.vendor != "sqlite":
        pytest.skip("pg_dump's custom format is compressed: searched through pg_dump above instead")
    settings.MEDIA_ROOT = tmp_path / "media"
    canaries_written(water_org())
    default_storage.save("justifications/certificat.pdf", ContentFile(PDF))
    key = tmp_path / "backup.key"
    call_command("backup", "keygen", str(key), stdout=io.StringIO())
    archive = tmp_path / "a.gbak"
    call_command("backup", "create", str(archive), "--key-file", str(key), stdout=io.StringIO())
    with archive.open("rb") as src:
        plain = DecryptingReader(src, load_key_file(key)).read()
    with tarfile.open(fileobj=io.BytesIO(plain)) as tar:
        names = tar.getnames()
    assert any(n.endswith("certificat.pdf") for n in names)  # control: the file is in the archive
    assert CUSTOMER.encode() in plain  # control: the database is in clear inside the archive
    assert leaked(plain.decode("latin-1")) == [] and b"5c1e7a" not in plain
