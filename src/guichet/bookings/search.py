"""Finding a family file at the counter: by file number, family name, a child's first name or
a guardian's e-mail, whatever the case and the accents ("helene" finds "Hélène", "coeur" finds
"Cœur").

Reads only. The folding (lower case, accents removed, æ and œ spelt out) is done by the same table
for the words typed and for the stored text: in SQL with ``translate()`` on PostgreSQL (the
capitals are in the table, whatever the database's locale makes of ``lower()``), and on SQLite
by the Python function itself, registered on the connection.
No extension and no extra column to keep in sync: one scan of an organisation's households,
children and guardians per search (timed at 20,000 households in ``docs/benchmarks.md``).
"""

from __future__ import annotations

from django.db.models import CharField, Exists, Func, OuterRef, Q, QuerySet
from django.db.models.functions import Lower

from .models import Child, Guardian, Household

MIN_TEXT = 2  # characters needed to search by name or e-mail (a file number needs one)
MAX_QUERY = 100
PAGE_SIZE = 20

# Accented letters and the plain ones they fold to, one to one (as SQL ``translate`` needs).
_ACCENTED = "àáâãäåāçćčèéêëēęěìíîïīñńòóôõöøōùúûüūýÿžźšśł"
_PLAIN = "aaaaaaaccceeeeeeeiiiiinnooooooouuuuuyyzzssl"
_FROM = _ACCENTED + _ACCENTED.upper()
_TO = _PLAIN + _PLAIN
# Ligatures become two letters.
_LIGATURES = {"æ": "ae", "Æ": "ae", "œ": "oe", "Œ": "oe"}
_TABLE = str.maketrans({**dict(zip(_FROM, _TO, strict=True)), **_LIGATURES})


def fold(text: str) -> str:
    """Lower case without accents: ``fold("Hélène ŒDIPE") == "helene oedipe"``."""
    return (text or "").translate(_TABLE).lower()


class Fold(Func):
    """``fold()`` of a text column, in SQL."""

    output_field = CharField()

    def __init__(self, expression, **extra):
        super().__init__(Lower(expression), **extra)

    def _ligatures(self, sql: str) -> str:
        for ligature, letters in _LIGATURES.items():
            sql = f"REPLACE({sql}, '{ligature}', '{letters}')"
        return sql

    def as_sql(self, compiler, connection, **extra):  # PostgreSQL
        sql, params = compiler.compile(self.source_expressions[0])
        return f"TRANSLATE({self._ligatures(sql)}, '{_FROM}', '{_TO}')", params

    def as_sqlite(self, compiler, connection, **extra):
        # SQLite has no translate(): the same Python function, registered on the connection
        # (cheap, idempotent; a new connection gets it at its first search).
        connection.ensure_connection()
        connection.connection.create_function("guichet_fold", 1, _fold_or_null, deterministic=True)
        sql, params = compiler.compile(self.source_expressions[0])
        return f"guichet_fold({sql})", params


def _fold_or_null(text):
    return None if text is None else fold(text)


def households_matching(*, organisations, query: str) -> QuerySet[Household]:
    """The households of ``organisations`` that ``query`` designates, ordered by name: a file
    number starting with it; or, from ``MIN_TEXT`` characters, a family name, a child's first
    name or an e-mail (the household's or a guardian account's) containing it."""
    query = (query or "").strip()[:MAX_QUERY]
    households = Household.objects.filter(organisation__in=organisations)
    if not query:
        return households.none()
    match = Q(reference__istartswith=query)
    term = fold(query)
    if len(term) >= MIN_TEXT:
        children = Child.objects.alias(folded=Fold("first_name")).filter(
            household=OuterRef("pk"), folded__contains=term
        )
        guardians = Guardian.objects.alias(folded=Fold("user__email")).filter(
            household=OuterRef("pk"), folded__contains=term
        )
        households = households.alias(folded_name=Fold("display_name"), folded_email=Fold("email"))
        match |= (
            Q(folded_name__contains=term)
            | Q(folded_email__contains=term)
            | Exists(children)
            | Exists(guardians)
        )
    return households.filter(match).order_by("display_name", "reference", "pk")
