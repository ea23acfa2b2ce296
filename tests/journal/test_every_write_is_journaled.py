"""Every write of every module goes through the journal (ADR 0002, "Which writes journal").

The service functions are enumerated, not listed: each public function of every
``src/guichet/<app>/services.py`` (``billing``, ``water`` and any app added later included)
must reach ``journal_append`` or ``journal_append_many``, or be named below as a read-only
helper, with the reason (here, or in the module itself as ``JOURNAL_READ_ONLY = {"name":
"reason"}``). Public functions of the other modules that write through the ORM
themselves must journal too. See ``journaling.py`` for what the analysis follows.
"""

import textwrap
from pathlib import Path

import pytest

from .journaling import Index

SRC = Path(__file__).resolve().parents[2] / "src" / "guichet"

# Public functions of a services.py that write nothing: (module, function) -> why.
READ_ONLY = {
    ("guichet.accounts.services", "find_user"): "looks a user up by e-mail address",
    ("guichet.bookings.services", "booking_deadline"): "computes a session's booking deadline",
    ("guichet.bookings.services", "cancellation_deadline"): "computes a session's cancellation deadline",
    ("guichet.bookings.services", "justification_deadline"): "computes until when an absence can be justified",
    ("guichet.bookings.services", "opening_for"): "computes when a window opens for a household",
    ("guichet.bookings.services", "window_for"): "finds the registration window of a session",
    ("guichet.status.services", "check_can_edit"): "permission check, raises or returns",
    ("guichet.status.services", "needs_approval"): "tells whether operations need a second person",
}

# Writes whose journal entry is written later, by design, in another transaction: (module,
# function) -> where it is journaled. Each is a decision recorded in an ADR, not a shortcut.
JOURNALED_LATER = {
    ("guichet.bookings.services", "basket_receive"): (
        "the receipt is only an INSERT under the receipt lock; the drain journals each received "
        "basket ('bookings.basket.receive') before its answer, in receipt order (ADR 0005)"
    ),
    ("guichet.bookings.services", "receipt_batch"): (
        "the receipts of basket_receive, several per statement (ADR 0014): journaled by the drain "
        "as basket_receive's are (ADR 0005)"
    ),
}


@pytest.fixture(scope="module")
def index() -> Index:
    return Index(SRC)


def test_the_enumeration_finds_the_service_functions(index):
    found = {fn.key for fn in index.service_functions()}
    # A few we know, from several apps: the enumeration is real, not empty.
    assert {("guichet.bookings.services", "booking_cancel"), ("guichet.status.services", "changeset_publish"),
            ("guichet.accounts.services", "token_create"), ("guichet.catalog.services", "portal_upsert")} <= found
    assert len(found) >= 25


def read_only(index) -> dict:
    return {**READ_ONLY, **index.declared_read_only()}


def test_every_service_function_journals(index):
    exempt = read_only(index)
    missing = [
        f"{fn.key[0]}.{fn.key[1]} ({fn.path.relative_to(SRC.parent.parent)}:{fn.line})"
        for fn in index.service_functions()
        if not index.journals(fn.key) and fn.key not in exempt and fn.key not in JOURNALED_LATER
    ]
    assert not missing, (
        "these service functions never reach journal_append / journal_append_many: journal the "
        "write in the same transaction, or, if the function writes nothing, declare it in its module "
        "as JOURNAL_READ_ONLY = {\"name\": \"reason\"}:\n  " + "\n  ".join(missing)
    )


def test_read_only_helpers_exist_write_nothing_and_journal_nothing(index):
    for key, reason in read_only(index).items():
        assert key in index.functions, f"{key} is listed as read-only ({reason}) but no longer exists"
        writes = index.reaches_write(key)
        assert not writes, f"{key} is listed as read-only ({reason}) but writes at {writes}"
        assert not index.journals(key), f"{key} journals: remove it from READ_ONLY"


def test_writes_journaled_later_still_exist(index):
    for key in JOURNALED_LATER:
        assert key in index.functions, f"{key} is listed in JOURNALED_LATER but no longer exists"
        assert not index.journals(key), f"{key} now journals itself: remove it from JOURNALED_LATER"


def test_other_modules_journal_their_own_writes(index):
    """``JOURNAL_EXEMPT = {"name": "reason"}`` in a module (not a services.py) exempts a writer
    whose rows are not changes to record (e.g. a log of its own); the reason is reviewed."""
    exempt = index.declared("JOURNAL_EXEMPT")
    missing = [
        f"{fn.key[0]}.{fn.key[1]} writes at line(s) {', '.join(map(str, fn.writes))} of "
        f"{fn.path.relative_to(SRC.parent.parent)}"
        for fn in index.direct_writers()
        if not index.covered(fn.key) and fn.key not in exempt
    ]
    assert not missing, (
        "these public functions write through the ORM, never journal, and are not only called by "
        "functions that journal: move the write into a service function that journals it (or, if "
        "the rows are not changes to record, declare JOURNAL_EXEMPT = {\"name\": \"reason\"} in "
        "the module):\n  " + "\n  ".join(missing)
    )


def test_exemptions_are_not_claimed_by_services(index):
    for (module, name), reason in index.declared("JOURNAL_EXEMPT").items():
        assert not module.endswith(".services"), (
            f"{module}.{name}: a service function cannot be exempted ({reason}); it must journal"
        )


# --- the analysis itself, on a small made-up project -----------------------------------------


def make_project(tmp_path: Path, files: dict[str, str]) -> Index:
    root = tmp_path / "guichet"
    for name, text in {"journal/services.py": "def journal_append(**kw): pass\n"
                       "def journal_append_many(items): pass\n", **files}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        for parent in [path.parent, *path.parent.parents]:
            if parent == root.parent:
                break
            (parent / "__init__.py").touch()
        path.write_text(textwrap.dedent(text))
    return Index(root)


def test_the_analysis_flags_a_service_that_writes_without_journaling(tmp_path):
    index = make_project(tmp_path, {"shop/services.py": """
        from guichet.journal.services import journal_append
        from guichet.shop import helpers
        from .models import Order

        def order_create(*, actor):
            order = Order.objects.create(total=1)
            journal_append(actor=actor, operation="shop.order.create")

        def order_delete(*, order):
            order.delete()

        def order_pay(*, order, actor):
            helpers.record(order, actor)

        def order_refund(*, order, actor):
            return HANDLERS["refund"](order, actor)

        def _refund(order, actor):
            Order.objects.filter(pk=order.pk).update(refunded=True)
            journal_append(actor=actor, operation="shop.order.refund")

        HANDLERS = {"refund": _refund}

        def order_total(order):
            return order.total

        def order_sneaky(order):
            order.save()

        JOURNAL_READ_ONLY = {"order_total": "reads a field", "order_sneaky": "claims to read"}
        """, "shop/helpers.py": """
        from guichet.journal import services as journal

        def record(order, actor):
            order.save()
            journal.journal_append(actor=actor, operation="shop.order.pay")

        def sloppy(order):
            order.save()

        def inside_caller_transaction(order):
            order.save()

        def log_visit(order):
            order.visits.create(at=1)
            order.save()

        JOURNAL_EXEMPT = {"log_visit": "a log of its own"}
        """, "shop/engine.py": """
        from guichet.journal.services import journal_append
        from guichet.shop.helpers import inside_caller_transaction

        def run(order, actor):
            inside_caller_transaction(order)
            journal_append(actor=actor, operation="shop.run")
        """})
    services = {fn.key[1]: index.journals(fn.key) for fn in index.service_functions()}
    assert services == {"order_create": True, "order_delete": False, "order_pay": True,
                        "order_refund": True, "order_total": False, "order_sneaky": False}
    declared = index.declared_read_only()
    assert set(declared) == {("guichet.shop.services", "order_total"), ("guichet.shop.services", "order_sneaky")}
    assert not index.reaches_write(("guichet.shop.services", "order_total"))
    assert index.reaches_write(("guichet.shop.services", "order_sneaky"))  # the test above would refuse it
    assert index.reaches_write(("guichet.shop.services", "order_delete"))
    assert not index.reaches_write(("guichet.shop.services", "order_total"))
    uncovered = [fn.key[1] for fn in index.direct_writers() if not index.covered(fn.key)]
    assert sorted(uncovered) == ["log_visit", "sloppy"]
    assert set(index.declared("JOURNAL_EXEMPT")) == {("guichet.shop.helpers", "log_visit")}
