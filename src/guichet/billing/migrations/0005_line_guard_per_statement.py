"""PostgreSQL: the guard that refuses lines added to a final invoice runs once per INSERT
statement (over its transition table) instead of once per row: a run adds its lines by COPY,
hundreds of thousands at a time. UPDATE and DELETE keep the row-level guard of 0002.

SQLite: 0004 rebuilt the billing_invoiceline table (SQLite cannot alter a column's constraint),
which dropped its triggers: they are created again here. ANY later migration that alters
billing_invoice or billing_invoiceline on SQLite must do the same (see 0002's statements)."""

from django.db import migrations

MESSAGE = "billing: a final invoice and its lines cannot be changed (issue a credit note)"

FORWARD = [
    "DROP TRIGGER IF EXISTS billing_line_final_guard ON billing_invoiceline",
    """CREATE TRIGGER billing_line_final_guard BEFORE UPDATE OR DELETE ON billing_invoiceline
        FOR EACH ROW EXECUTE FUNCTION billing_line_final_guard()""",
    f"""CREATE OR REPLACE FUNCTION billing_line_final_guard_insert() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF EXISTS (SELECT 1 FROM billing_new_lines n JOIN billing_invoice i ON i.id = n.invoice_id
                   WHERE i.status = 'final') THEN
            RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER billing_line_final_guard_insert AFTER INSERT ON billing_invoiceline
        REFERENCING NEW TABLE AS billing_new_lines FOR EACH STATEMENT
        EXECUTE FUNCTION billing_line_final_guard_insert()""",
]
BACKWARD = [
    "DROP TRIGGER IF EXISTS billing_line_final_guard_insert ON billing_invoiceline",
    "DROP FUNCTION IF EXISTS billing_line_final_guard_insert()",
    "DROP TRIGGER IF EXISTS billing_line_final_guard ON billing_invoiceline",
    """CREATE TRIGGER billing_line_final_guard BEFORE INSERT OR UPDATE OR DELETE ON billing_invoiceline
        FOR EACH ROW EXECUTE FUNCTION billing_line_final_guard()""",
]


def _sqlite_triggers():
    from importlib import import_module

    m0002 = import_module("guichet.billing.migrations.0002_final_invoices_immutable")
    return [sql.replace("CREATE TRIGGER", "CREATE TRIGGER IF NOT EXISTS", 1) for sql in m0002.SQLITE]


def _run(statements):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            for sql in statements:
                schema_editor.execute(sql)
        elif schema_editor.connection.vendor == "sqlite" and statements is FORWARD:
            for sql in _sqlite_triggers():
                schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [("billing", "0004_invoice_lines_light_references")]

    operations = [migrations.RunPython(_run(FORWARD), _run(BACKWARD))]
