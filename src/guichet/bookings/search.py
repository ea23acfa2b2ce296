"""Finding a family file at the counter: by file number, family name, a child's first name or
a guardian's e-mail, whatever the case and the accents ("helene" finds "Hélène", "coeur" finds
"Cœur").

Reads only. The words typed are folded (lower case, accents removed, æ and œ spelt out) and
turned into a case-insensitive regular expression in which each letter stands for all its
accented forms ("helene" becomes ``[hH][eèéêë…][lL]…``), matched against the stored text with
``__iregex``: PostgreSQL's ``~*`` (its regular-expression engine, no function called per row;
no extension, no extra column to keep in sync), SQLite's ``REGEXP`` (Python's ``re``, which
Django registers). One scan of an organisation's households, children and guardians per search,
timed at 20,000 households in ``docs/benchmarks.md``.
"""

from __future__ import annotations

from django.db.models import Q, QuerySet

from .models import Child, Guardian, Household

MIN_TEXT = 2  # characters needed to search by name or e-mail (a file number needs one)
MAX_QUERY = 100
PAGE_SIZE = 20

# Each plain letter and the accented letters that fold to it.
_ACCENTS = {
    "a": "àáâãäåā", "c": "çćč", "e": "èéêëēęě", "i": "ìíîïī", "n": "ñń", "o": "òóôõöøō",
    "u": "ùúûüū", "y": "ýÿ", "z": "žź", "s": "šś", "l": "ł",
}  # fmt: skip
_LIGATURES = {"æ": "ae", "œ": "oe"}
_TABLE = str.maketrans(
    {accented: plain for plain, forms in _ACCENTS.items() for accented in forms + forms.upper()}
    | {lig: letters for lig, letters in _LIGATURES.items()}
    | {lig.upper(): letters for lig, letters in _LIGATURES.items()}
)
# Characters with a meaning in a regular expression (PostgreSQL's and Python's alike).
_SPECIAL = set(r"\.^$|?*+()[]{}-/")


def fold(text: str) -> str:
    """Lower case without accents: ``fold("Hélène ŒDIPE") == "helene oedipe"``."""
    return (text or "").translate(_TABLE).lower()


def _letter(ch: str) -> str:
    forms = _ACCENTS.get(ch, "")
    if ch.isalpha() and ch.isascii():
        return f"[{ch}{ch.upper()}{forms}{forms.upper()}]"
    return "\\" + ch if ch in _SPECIAL else ch


def pattern(term: str) -> str:
    """A regular expression matching the text whose ``fold`` contains ``fold(term)``."""
    term = fold(term)
    out, i = [], 0
    while i < len(term):
        pair = term[i : i + 2]
        ligature = next((lig for lig, letters in _LIGATURES.items() if letters == pair), None)
        if ligature:  # "oe" also matches "œ"
            out.append(f"(?:{_letter(pair[0])}{_letter(pair[1])}|[{ligature}{ligature.upper()}])")
            i += 2
        else:
            out.append(_letter(term[i]))
            i += 1
    return "".join(out)


def households_matching(*, organisations, query: str) -> QuerySet[Household]:
    """The households of ``organisations`` that ``query`` designates, ordered by name: a file
    number starting with it; or, from ``MIN_TEXT`` characters, a family name, a child's first
    name or an e-mail (the household's or a guardian account's) containing it."""
    query = (query or "").strip()[:MAX_QUERY]
    households = Household.objects.filter(organisation__in=organisations)
    if not query:
        return households.none()
    match = Q(reference__istartswith=query)
    if len(fold(query)) >= MIN_TEXT:
        regex = pattern(query)
        # Uncorrelated subqueries: children and guardians are read once per search (a
        # correlated EXISTS would run once per household).
        children = Child.objects.filter(first_name__iregex=regex).values("household_id")
        guardians = Guardian.objects.filter(user__email__iregex=regex).values("household_id")
        match |= (
            Q(display_name__iregex=regex)
            | Q(email__iregex=regex)
            | Q(pk__in=children)
            | Q(pk__in=guardians)
        )
    return households.filter(match).order_by("display_name", "reference", "pk")
