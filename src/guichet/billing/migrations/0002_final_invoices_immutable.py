"""A final invoice or credit note, and its lines, can no longer be changed: database triggers
refuse it, whatever code tries. Corrections are credit notes.

PostgreSQL also refuses to DELETE them (its test flush uses TRUNCATE, which row triggers do not
see). SQLite refuses UPDATE and adding lines, not DELETE: Django's test flush deletes rows one
table at a time there; the services never delete a final invoice and the PROTECT foreign keys
of billed items, allocations and payments keep them anyway."""

from django.db import migrations

MESSAGE = "billing: a final invoice and its lines cannot be changed (issue a credit note)"

SQLITE = [
    f"""CREATE TRIGGER billing_invoice_final_no_update BEFORE UPDATE ON billing_invoice
        WHEN OLD.status = 'final' BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END""",
    f"""CREATE TRIGGER billing_line_final_no_insert BEFORE INSERT ON billing_invoiceline
        WHEN (SELECT status FROM billing_invoice WHERE id = NEW.invoice_id) = 'final'
        BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END""",
    f"""CREATE TRIGGER billing_line_final_no_update BEFORE UPDATE ON billing_invoiceline
        WHEN (SELECT status FROM billing_invoice WHERE id = OLD.invoice_id) = 'final'
          OR (SELECT status FROM billing_invoice WHERE id = NEW.invoice_id) = 'final'
        BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END""",
]
SQLITE_DROP = [
    f"DROP TRIGGER IF EXISTS {name}" for name in (
        "billing_invoice_final_no_update", "billing_invoice_final_no_delete", "billing_line_final_no_insert",
        "billing_line_final_no_update", "billing_line_final_no_delete")
]

POSTGRES = [
    f"""CREATE OR REPLACE FUNCTION billing_invoice_final_guard() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF OLD.status = 'final' THEN
            RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
        RETURN NEW;
    END $$""",
    """CREATE TRIGGER billing_invoice_final_guard BEFORE UPDATE OR DELETE ON billing_invoice
        FOR EACH ROW EXECUTE FUNCTION billing_invoice_final_guard()""",
    f"""CREATE OR REPLACE FUNCTION billing_line_final_guard() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP IN ('UPDATE', 'DELETE') AND EXISTS (
            SELECT 1 FROM billing_invoice WHERE id = OLD.invoice_id AND status = 'final') THEN
            RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        IF TG_OP IN ('INSERT', 'UPDATE') AND EXISTS (
            SELECT 1 FROM billing_invoice WHERE id = NEW.invoice_id AND status = 'final') THEN
            RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
        RETURN NEW;
    END $$""",
    """CREATE TRIGGER billing_line_final_guard BEFORE INSERT OR UPDATE OR DELETE ON billing_invoiceline
        FOR EACH ROW EXECUTE FUNCTION billing_line_final_guard()""",
]
POSTGRES_DROP = [
    "DROP TRIGGER IF EXISTS billing_line_final_guard ON billing_invoiceline",
    "DROP FUNCTION IF EXISTS billing_line_final_guard()",
    "DROP TRIGGER IF EXISTS billing_invoice_final_guard ON billing_invoice",
    "DROP FUNCTION IF EXISTS billing_invoice_final_guard()",
]


def _run(statements_by_vendor):
    def run(apps, schema_editor):
        statements = statements_by_vendor.get(schema_editor.connection.vendor)
        if statements is None:
            raise RuntimeError(f"no immutability triggers for {schema_editor.connection.vendor}")
        for sql in statements:
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]

    operations = [
        migrations.RunPython(
            _run({"sqlite": SQLITE, "postgresql": POSTGRES}),
            _run({"sqlite": SQLITE_DROP, "postgresql": POSTGRES_DROP}),
        ),
    ]
